"""Text → statements. The parser is generated from ``grammar/cnncalc.lark`` by Lark's
standalone tool (``make grammar``), so a shape query does not import Lark; a test checks
that the generated module matches the grammar. The Transformer runs while parsing and
turns each rule into a small record; a layer's words are read later by its kind."""

from __future__ import annotations

import re
from functools import lru_cache

from . import _lark
from . import expr
from ..errors import CnnCalcError, SpecSyntaxError


from .records import (Arg, Block, Call, Def, Float, Kernel, Knob, Named, Param, Stmt,
                      Value, Word)

Token = _lark.Token


class _ToStatements(_lark.Transformer):
    """One short method per rule; positions come from the tokens."""

    def start(self, children):
        return children

    body = start

    def statement(self, c):
        head = c[0]
        return Stmt(str(head), c[1:], head.line, head.column)

    def block(self, c):
        head = c[0]
        return Block(str(head), c[1:-1], c[-1], head.line, head.column)

    def call(self, c):
        name = c[0]
        args = [a for a in c[1:] if isinstance(a, Arg)]
        items = [i for i in c[1:] if i is not None and not isinstance(i, Arg)]
        return Call(str(name), args, items, name.line, name.column)

    def def_(self, c):
        name = c[0]
        return Def(str(name), [p for p in c[1:-1] if p is not None], c[-1], name.line,
                   name.column)

    def param(self, c):
        return Param(str(c[0]), c[1], c[0].line, c[0].column)

    def knob(self, c):
        return Knob(str(c[0]), c[1], c[0].line, c[0].column)

    def arg(self, c):
        return Arg(None if c[0] is None else str(c[0]), c[1])

    def value(self, c):
        first = c[0]
        parts = [(str(t), t.line, t.column) for t in c]
        text = " ".join(p[0] for p in parts)
        return Value(expr.parse(parts), text, first.line, first.column)

    def word(self, c):
        t = c[0]
        return Word(str(t), t.line, t.column)

    def named(self, c):
        return Named(str(c[1]), c[0].line, c[0].column)

    def kernel(self, c):
        return Kernel(c[1], c[0].line, c[0].column)

    def array(self, c):
        return tuple(v for v in c if v is not None)

    def number(self, c):
        sign, value = c
        text = value.text if isinstance(value, Float) else str(value)
        if sign is not None and str(sign) not in "+-":
            raise SpecSyntaxError(f"unexpected {str(sign)!r} in an array; expected numbers "
                                  "such as -1.5", line=sign.line, column=sign.column)
        try:
            number = float(text)
        except ValueError:
            raise SpecSyntaxError(f"{text!r} is not a number", line=value.line,
                                  column=value.column) from None
        return -number if sign is not None and str(sign) == "-" else number

    def FLOAT(self, t):
        return Float(float(t), str(t), t.line, t.column)


@lru_cache(maxsize=1)
def _parser():
    return _lark.Lark_StandAlone(transformer=_ToStatements())


# a spec this long is read line by line, each distinct line parsed once: long generated specs
# repeat their lines (an imported one but for its names, which are read apart), and the
# token loop was most of their time
FLAT_LINES = 200


def parse(text: str, file: str | None = None) -> list:
    """Spec text → a list of statements; a syntax error carries the position."""
    if text.count("\n") >= FLAT_LINES and "\r" not in text:
        flat = _by_line(text)
        if flat is not None:
            return flat
    try:
        return _parser().parse(text)
    except (_lark.VisitError, CnnCalcError) as e:  # raised inside the Transformer
        err = getattr(e, "orig_exc", e)  # a tree transformer wraps it, the inline one not
        if not isinstance(err, CnnCalcError):
            raise
        err.file = err.file or file
        if err.line and not err.context:
            from ..errors import context_line
            err.context = context_line(text, err.line, err.column or 1)
        if err.line and err.column and not err.hint:
            from .syntax import python_hint
            err.hint = python_hint(text.split("\n")[err.line - 1][:err.column - 1])
        raise err from None
    except _lark.UnexpectedInput as e:
        from .syntax import syntax_error  # only a spec with a mistake pays for it
        raise syntax_error(e, text, file) from None


# a name at a line's end that the lexer reads whole as the name (a word, a number, an
# nn.Sequential index path), so the line without it parses alone and is cached
_LAST_NAME = re.compile(r" name=([A-Za-z_][A-Za-z0-9_.\-]*|\d+|\d+(?:\.\d+)*\.[A-Za-z_]"
                        r"[\w\-]*(?:\.[\w\-]+)*)$")


def _by_line(text: str) -> list | None:
    """The statements of a spec parsed line by line, each distinct line once. Lines are
    independent (a statement ends at the line's end) but for braces: a line that ends with
    '{' opens a block, one that is only '}' closes it, 'head { }' is an empty block. None
    for anything else (a brace elsewhere, a def): the whole text's parse then reads it and
    says where any mistake is, as always."""
    seen: dict = {}
    out: list = []
    outer: list = []  # the lists that the open blocks' bodies were opened from
    for n, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        if "{" not in line and "}" not in line:
            got = _line(line, n, seen)
            if got is None:
                return None
            out.extend(got)
        elif line.strip() == "}" and outer:
            out = outer.pop()
        else:
            block = _opener(line, n, seen)
            if block is None:
                return None
            out.append(block)
            if not line.rstrip().endswith("{ }"):
                outer.append(out)
                out = block.body
    return None if outer else out


def _opener(line: str, n: int, seen: dict):
    """'head items {' or 'head items { }' as a block with an empty body, else None."""
    bare = line.strip()
    if "#" in line or bare.count("{") != 1 or "}" in bare[:-1] or \
            not (bare.endswith("{") or bare.endswith("{ }")):
        return None
    head = _line(line[:line.rindex("{")].rstrip(), n, seen)
    # a head in lower case is a word to the lexer; 'H {' would be a size, not a block
    if head is None or len(head) != 1 or type(head[0]) is not Stmt or \
            not (head[0].head[:1].islower() or head[0].head[:1] == "_"):
        return None
    s = head[0]
    return Block(s.head, list(s.items), [], s.line, s.column)


def _line(line: str, n: int, seen: dict) -> list | None:
    """One line's statements on line ``n``, its parse shared with each equal line; a name
    at its end is read apart, so lines differing only by their names share a parse."""
    m = None if "#" in line else _LAST_NAME.search(line)
    key = line[:m.start()] if m else line
    got = seen.get(key)
    if got is None:
        try:
            got = seen[key] = _parser().parse(key)
        except (_lark.VisitError, _lark.UnexpectedInput, CnnCalcError):
            return None
    got = [_at_line(r, n) for r in got]
    if m:  # the name belongs to the line's last statement or call: 'stage(8) name=layer1'
        if not got or type(got[-1]) not in (Stmt, Call):
            return None
        last = got[-1]
        last.items = [*last.items, Named(m.group(1), n, m.start() + 2)]
    return got


_SHARED = frozenset((int, float, str, bool, type(None)))


def _at_line(o, n: int):
    """A copy of a record (and the records and expressions inside it) on line ``n``."""
    t = type(o)
    if t in _SHARED:
        return o
    if t is list or t is tuple:
        return t([x if type(x) in _SHARED else _at_line(x, n) for x in o])
    slots = getattr(t, "__slots__", None)
    if slots is None:
        return o
    new = object.__new__(t)
    for k in slots:
        v = getattr(o, k)
        setattr(new, k, n if k == "line" else v if type(v) in _SHARED else _at_line(v, n))
    return new
