"""Text → statements. The parser is generated from ``grammar/cnncalc.lark`` by Lark's
standalone tool (``make grammar``), so a shape query does not import Lark; a test checks
that the generated module matches the grammar. The Transformer runs while parsing and
turns each rule into a small record; a layer's words are read later by its kind."""

from __future__ import annotations

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


# a spec this long without braces is read line by line, each distinct line parsed once: long
# generated specs repeat their lines, and the token loop was most of their time
FLAT_LINES = 200


def parse(text: str, file: str | None = None) -> list:
    """Spec text → a list of statements; a syntax error carries the position."""
    if text.count("\n") >= FLAT_LINES and not any(c in text for c in "{}\r"):
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


def _by_line(text: str) -> list | None:
    """The statements of a spec without blocks, parsing each distinct line once (lines of
    such a spec are independent: a statement ends at the line's end). None when a line does
    not parse alone: the whole text's parse then says where, as always."""
    parser, seen, out = _parser(), {}, []
    for n, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        got = seen.get(line)
        if got is None:
            try:
                got = seen[line] = parser.parse(line)
            except (_lark.VisitError, _lark.UnexpectedInput, CnnCalcError):
                return None
        out.extend(_at_line(r, n) for r in got)
    return out


def _at_line(o, n: int):
    """A copy of a record (and the records and expressions inside it) on line ``n``."""
    if type(o) in (list, tuple):
        return o if all(type(x) is int for x in o) else type(o)(_at_line(x, n) for x in o)
    slots = getattr(type(o), "__slots__", None)
    if not slots:  # ints, floats, text: shared
        return o
    new = object.__new__(type(o))
    for k in slots:
        setattr(new, k, n if k == "line" else _at_line(getattr(o, k), n))
    return new
