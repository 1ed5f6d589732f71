"""Text → statements. The Lark parser is built once (and cached on disk by Lark);
the Transformer turns each alias into a small record. Expansion of ``repeat``,
``def`` and ``$params`` into the network model happens in ``build``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Union

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .errors import CnnCalcError, SpecSyntaxError, context_line

# Options each statement kind accepts, beside ``name=`` (the grammar takes any, so that a
# misplaced one gets a clear message from ``build``).
OPTIONS = {
    "conv": {"valid", "same", "pad", "stride", "dilation", "groups", "nobias", "act", "kernel"},
    "deconv": {"valid", "same", "stride", "dilation", "nobias", "act"},
    "maxpool": {"valid", "same", "pad", "stride", "ceil"},
    "avgpool": {"valid", "same", "pad", "stride", "ceil"},
    "dense": {"nobias", "act"},
    "concat_ref": {"crop"},
}
_OPTION_WORDS = {"VALID", "SAME", "PAD", "STRIDE", "DILATION", "GROUPS", "NOBIAS", "CEIL", "CROP",
                 "NAME", "KERNEL", "ACT"}

KEYWORDS = ("network", "input", "conv", "deconv", "maxpool", "avgpool", "globalavgpool",
            "globalmaxpool", "flatten", "dense", "dropout", "batchnorm", "zeropad", "upsample",
            "relu", "sigmoid", "tanh", "softmax", "leakyrelu", "gelu", "linear", "add", "concat",
            "repeat", "branch", "def", "valid", "same", "pad", "stride", "dilation", "groups",
            "nobias", "ceil", "crop", "name", "kernel")


@dataclass(frozen=True)
class Param:
    """``$name``: a parameter of a ``def``, bound when the block is called."""
    name: str
    line: int
    column: int


@dataclass(frozen=True)
class Open:
    """An open input size: ``?`` or a name such as ``H``."""
    name: str


Atom = Union[int, Param, Open]


# The records made for every token (Dims, Opt, Stmt) use slots and plain __init__: a frozen
# dataclass sets each field through object.__setattr__, which made the Transformer a third
# of the parse.
@dataclass(slots=True)
class Dims:
    """A size written as ``5x5x6``: its atoms and where it stood."""
    atoms: tuple
    text: str
    line: int
    column: int


@dataclass(slots=True)
class Opt:
    name: str
    value: object
    line: int
    column: int


@dataclass(slots=True)
class Stmt:
    kind: str
    args: list
    opts: list
    line: int
    column: int


@dataclass
class Block:
    kind: str  # add, concat, repeat
    branches: list  # list of bodies (lists of statements); repeat has one
    line: int
    column: int
    count: object = None  # repeat's Dims


@dataclass
class Def:
    name: str
    params: list
    body: list
    line: int
    column: int


@dataclass
class Call:
    name: str
    args: list
    line: int
    column: int


@dataclass
class Spec:
    statements: list
    defs: dict = field(default_factory=dict)


def _dims(tok: Token) -> Dims:
    text = str(tok)
    if text.isdigit():  # the common case: one number
        return Dims((int(text),), text, tok.line, tok.column)
    atoms = []
    col = tok.column
    for part in text.split("x"):
        if part.isdigit():
            atoms.append(int(part))
        elif part.startswith("$"):
            atoms.append(Param(part[1:], tok.line, col))
        else:
            atoms.append(Open(part))
        col += len(part) + 1
    return Dims(tuple(atoms), text, tok.line, tok.column)


_VALUES = {"DIMS", "ID", "FLOAT", "NUMBER", "ACT"}


def _split(children):
    """(line, column) of the statement's first token (its keyword, or the name of a call),
    and its values without the punctuation and keywords that ``keep_all_tokens`` leaves in."""
    first = children[0]
    vals = [c for c in children if not isinstance(c, Token) or c.type in _VALUES]
    return first.line, first.column, vals


def _value(tok):
    if not isinstance(tok, Token):
        return tok
    if tok.type == "DIMS":
        return _dims(tok)
    return float(tok) if tok.type == "FLOAT" else str(tok)


def _opt(name):
    def method(self, children):
        line, column, vals = _split(children)
        return Opt(name, _value(vals[0]) if vals else True, line, column)
    return method


def _layer(kind):
    def method(self, children):
        line, column, vals = _split(children)
        args, opts = [], []
        for v in vals:
            if isinstance(v, Opt):
                opts.append(v)
            else:
                args.append(_value(v))
        return Stmt(kind, args, opts, line, column)
    return method


class _ToStatements(Transformer):
    """Runs inline while Lark parses (no tree is built); positions come from tokens."""
    for _k in ("conv", "deconv", "maxpool", "avgpool", "globalavgpool", "globalmaxpool", "flatten",
               "dense", "dropout", "batchnorm", "zeropad", "upsample", "activation", "add_ref",
               "concat_ref"):
        locals()[_k] = _layer(_k)
    for _k in ("valid", "same", "pad", "stride", "dilation", "groups", "nobias", "ceil", "crop",
               "act", "name", "kernel"):
        locals()[_k] = _opt(_k)
    del _k

    def start(self, children):
        return [c for c in children if not isinstance(c, Token)]

    body = start

    def network(self, children):
        line, column, vals = _split(children)
        return Stmt("network", [str(vals[0])], [], line, column)

    def input(self, children):
        line, column, vals = _split(children)
        return Stmt("input", [_dims(vals[0])], [], line, column)

    def branch(self, children):
        return next(c for c in children if isinstance(c, list))

    def _block(self, kind, children):
        line, column, vals = _split(children)
        return Block(kind, [v for v in vals if isinstance(v, list)], line, column)

    def add(self, children):
        return self._block("add", children)

    def concat(self, children):
        return self._block("concat", children)

    def repeat(self, children):
        line, column, vals = _split(children)
        return Block("repeat", [vals[1]], line, column, count=_dims(vals[0]))

    def def_(self, children):
        line, column, vals = _split(children)
        name, *params, body = vals
        return Def(str(name), [str(p) for p in params if p is not None], body, line, column)

    def call(self, children):
        line, column, vals = _split(children)
        name, *args = vals
        return Call(str(name), [_dims(a) for a in args if a is not None], line, column)

    def array(self, children):
        return tuple(float(c) if isinstance(c, Token) else c for c in children
                     if c is not None and (not isinstance(c, Token) or c.type == "NUMBER"))


_GRAMMAR_PLACES = (Path(__file__).parent / "grammar" / "cnncalc.lark",   # installed wheel
                   Path(__file__).parent.parent / "grammar" / "cnncalc.lark")  # source tree


@lru_cache(maxsize=1)
def _lark() -> Lark:
    # The Transformer runs inline while parsing: no tree is built, which halves the time.
    path = next(p for p in _GRAMMAR_PLACES if p.exists())
    return Lark(path.read_text(), parser="lalr", keep_all_tokens=True, cache=True,
                maybe_placeholders=True, transformer=_ToStatements())


# How the grammar's terminal names read to a person.
_TERMINALS = {"DIMS": "a size such as 3x3x64", "ID": "a name", "FLOAT": "a number",
              "NUMBER": "a number", "ACT": "an activation",
              "_SEP": "a new line or '|'",
              "$END": "end of the spec", "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('",
              "RPAR": "')'", "COMMA": "','", "LSQB": "'['",
              "RSQB": "']'"}


def _readable(expected) -> list[str]:
    out = set()
    for name in expected:
        if name in _TERMINALS:
            out.add(_TERMINALS[name])
        elif name in ("NAME", "KERNEL"):
            out.add(f"'{name.lower()}='")
        elif name.isupper() and name.lower() in KEYWORDS:
            out.add(repr(name.lower()))
        else:
            out.add(name.lower())
    return sorted(out)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"


def _word_at(text: str, line: int, column: int) -> str:
    src = text.split("\n")[line - 1] if line and line <= len(text.split("\n")) else ""
    i = column - 1
    j = i
    while j < len(src) and (src[j].isalnum() or src[j] in "_-"):
        j += 1
    return src[i:j]


def _statement_head(text: str, line: int, column: int) -> tuple[str, int]:
    """The first word of the statement holding ``column`` and its column."""
    src = text.split("\n")[line - 1] if 0 < line <= len(text.split("\n")) else ""
    start = max(src.rfind("|", 0, column - 1), src.rfind("{", 0, column - 1)) + 1
    while start < len(src) and src[start] in " \t":
        start += 1
    return _word_at(text, line, start + 1), start + 1


def _syntax_error(e: UnexpectedInput, text: str, file: str | None, known: set) -> SpecSyntaxError:
    import difflib  # only a spec with a mistake pays for it
    line, column = getattr(e, "line", None), getattr(e, "column", None)
    at_end = isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END")
    if at_end or line is None or line < 1:
        lines = text.rstrip().split("\n") or [""]
        line, column = len(lines), len(lines[-1].split("#")[0].rstrip()) + 1
    expected = getattr(e, "expected", None) or getattr(e, "allowed", None) or set()
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        got = "end of the spec"
    elif isinstance(e, UnexpectedToken):
        got = repr(str(e.token)) if e.token.type != "_SEP" else (
            "'|'" if e.token.startswith("|") else "end of line")
    else:
        lines = text.split("\n")
        src = lines[line - 1] if 0 < line <= len(lines) else ""
        got = repr(src[column - 1]) if 0 < column <= len(src) else "end of line"
    if not at_end:  # inside a word ('samee' lexes as 'same' + 'e'): report the whole word
        lines = text.split("\n")
        src = lines[line - 1] if 0 < line <= len(lines) else ""
        start = column - 1
        while 0 < start < len(src) and _is_word(src[start - 1]) and _is_word(src[start]):
            start -= 1
        if start < column - 1:
            column = start + 1
            got = repr(_word_at(text, line, column))
            expected = set()  # what was expected after the keyword it began with: misleading
    head, head_col = _statement_head(text, line, column)
    hint = None
    if head and head not in KEYWORDS and head not in known:
        close = difflib.get_close_matches(head, KEYWORDS + tuple(known), n=1, cutoff=0.6)
        message = f"unknown layer or statement {head!r}"
        hint = f"did you mean {close[0]!r}?" if close else "see 'cnncalc summary --help' for the layer kinds"
        column = head_col
    else:
        word = _word_at(text, line, column)
        message = f"unexpected {got}" if expected or at_end else f"unknown word {got}"
        if head in KEYWORDS:  # only the options this kind of statement takes
            kind = {"add": "add_ref", "concat": "concat_ref"}.get(head, head)
            allowed = {w.upper() for w in OPTIONS.get(kind, ())} | {"NAME"}
            expected = {t for t in expected if t not in _OPTION_WORDS or t in allowed}
        if expected:
            message += f"; expected {', '.join(_readable(expected))}"
        if word and word not in KEYWORDS:
            close = difflib.get_close_matches(word, KEYWORDS, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
    return SpecSyntaxError(message, file=file, line=line, column=column,
                           context=context_line(text, line, column), hint=hint)


def _known_defs(text: str) -> set:
    import re
    return set(re.findall(r"\bdef\s+([A-Za-z_][A-Za-z0-9_\-]*)", text))


def parse(text: str, file: str | None = None) -> list:
    """Parse spec text into a list of statements (see ``build`` for the model)."""
    try:
        return _lark().parse(text)
    except VisitError as e:  # an error raised inside the Transformer
        if isinstance(e.orig_exc, CnnCalcError):
            e.orig_exc.file = e.orig_exc.file or file
            raise e.orig_exc from None
        raise
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file, _known_defs(text)) from None
