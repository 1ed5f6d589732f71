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


def parse(text: str, file: str | None = None) -> list:
    """Spec text → a list of statements; a syntax error carries the position."""
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
