"""Values in a spec: a size such as ``3x3x64`` is one expression per axis, joined by ``x``.
An expression is integers, ``$name`` parameters, ``+ - * // /``, parentheses and
``min``/``max``; open sizes (``?``, ``H``) stand only in the input. Parsed once with the
statement, evaluated when a ``def`` or ``repeat`` is expanded."""

from __future__ import annotations

import re

from ..errors import SpecSyntaxError
from ..limits import MAX_INTERMEDIATE, MAX_TERMS, power
from .rounding import ROUNDING, rounded


class ExprError(SpecSyntaxError):
    """An expression that cannot be read or evaluated; ``column`` points into it. Read
    with the statement, it is a syntax error; the expander turns a value that cannot be
    evaluated into a design error at the same place."""


class WordValue(str):
    """A parameter bound to a word (an activation, say): ``def f(act=relu)``."""


class Param:
    __slots__ = ("name", "line", "column")

    def __init__(self, name, line, column):
        self.name, self.line, self.column = name, line, column


class Open:
    """An open input size: ``?`` or a capital letter such as ``H``."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class Op:
    __slots__ = ("op", "left", "right", "line", "column")

    def __init__(self, op, left, right, line, column):
        self.op, self.left, self.right, self.line, self.column = op, left, right, line, column


class Func:
    __slots__ = ("name", "args", "line", "column")

    def __init__(self, name, args, line, column):
        self.name, self.args, self.line, self.column = name, args, line, column


_ATOM = r"\s*(?:(\d+)|(\$\{[A-Za-z_]\w*\})|(\$[A-Za-z_]\w*)|(min|max|ceil|floor|round|div8)(?=\()|([A-Z]\d*)|(\?)|(\()|(\$\w*|\S))"
_AFTER = r"\s*(?:([xX])|(//|[-+*/])|(\))|(,)|(\S))"


def _tokens(parts):
    """(kind, text, line, column) from the value's tokens: SIZE texts and OP tokens.
    Atoms and what follows them alternate, so 'X' after an atom joins and before one names."""
    atom, after = re.compile(_ATOM), re.compile(_AFTER)  # (re caches them)
    out = []
    for text, line, col in parts:
        i, want_atom = 0, not out or out[-1][0] in ("op", "x", "(", ",", "func")
        while i < len(text):
            m = (atom if want_atom else after).match(text, i)
            if m is None:  # only blanks left
                break
            j = m.lastindex
            at = col + m.start(j)
            if want_atom:
                kind = ("num", "param", "param", "func", "open", "open", "(", "bad")[j - 1]
                out.append((kind, m.group(j), line, at))
                want_atom = kind in ("(", "func")
            else:
                kind = ("x", "op", ")", ",", "bad")[j - 1]
                out.append((kind, m.group(j), line, at))
                want_atom = kind != ")"
            i = m.end()
    return out


class _Reader:
    def __init__(self, toks, where):
        self.toks, self.i, self.where = toks, 0, where

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "", *self.where)

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def fail(self, t, expected):
        got = "the end of the value" if t[0] == "end" else repr(t[1])
        hint = ""
        if t[1].startswith("$"):
            hint = " (a parameter is $name or ${name})"
        raise ExprError(f"unexpected {got} in a value; expected {expected}{hint}",
                        line=t[2], column=t[3])

    def dims(self):
        out = [self.sum()]
        while self.peek()[0] == "x":
            self.take()
            out.append(self.sum())
        if self.peek()[0] != "end":
            self.fail(self.peek(), "an operator, 'x' or the end of the value")
        return tuple(out)

    def sum(self):
        left = self.product()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            _, op, line, col = self.take()
            left = Op(op, left, self.product(), line, col)
        return left

    def product(self):
        left = self.atom()
        while self.peek()[1] in ("*", "//", "/") and self.peek()[0] == "op":
            _, op, line, col = self.take()
            left = Op(op, left, self.atom(), line, col)
        return left

    def atom(self):
        kind, text, line, col = t = self.take()
        if kind == "num":
            return _literal(text, line, col)
        if kind == "param":
            return Param(text.strip("${}"), line, col)
        if kind == "open":
            return Open(text)
        if kind == "(":
            inner = self.sum()  # (the grammar lets parentheses nest three deep)
            if self.take()[0] != ")":
                self.fail(self.toks[self.i - 1], "')'")
            return inner
        if kind == "func":
            if self.take()[0] != "(":
                self.fail(self.toks[self.i - 1], "'('")
            args = [self.sum()]
            while self.peek()[0] == ",":
                self.take()
                args.append(self.sum())
            if self.take()[0] != ")":
                self.fail(self.toks[self.i - 1], "')' or ','")
            return Func(text, tuple(args), line, col)
        self.fail(t, "a number, $name, '(' or min/max")


def _literal(text: str, line, column) -> int:
    """A number as written; more digits than any size needs is refused before int() reads
    them (Python reads at most 4,300)."""
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_INTERMEDIATE)) or int(digits) > MAX_INTERMEDIATE:
        shown = text if len(text) <= 24 else f"{text[:12]}...({len(text):,} digits)"
        raise ExprError(f"the number {shown} is too large; sizes are at most 10^18",
                        line=line, column=column)
    return int(digits)


def parse(parts) -> tuple:
    """The axes of a value from its tokens [(text, line, column)]; plain integers for the
    common case of a size of numbers."""
    if len(parts) == 1:
        axes = parts[0][0].replace("X", "x").split("x")
        if all(a.isdigit() and len(a) < 19 for a in axes):  # the common case, without a regex
            return tuple(int(a) for a in axes)
    toks = _tokens(parts)
    operators = sum(1 for t in toks if t[0] == "op")
    if operators > MAX_TERMS:
        t = [t for t in toks if t[0] == "op"][MAX_TERMS]
        raise ExprError(f"a value may have at most {MAX_TERMS} operators; this one has "
                        f"{operators}", line=t[2], column=t[3])
    last = parts[-1]
    return _Reader(toks, (last[1], last[2] + len(last[0]))).dims()


# --- evaluation ---------------------------------------------------------------------------

def _show(node) -> str:
    if isinstance(node, int):
        return str(node)
    if isinstance(node, Param):
        return f"${node.name}"
    if isinstance(node, Open):
        return node.name
    if isinstance(node, Func):
        return f"{node.name}({', '.join(map(_show, node.args))})"
    inner = f"{_show(node.left)} {node.op} {_show(node.right)}"
    return inner


def _num(v) -> str:
    """A knob's fraction as it was written (1.1), other values as they are."""
    return f"{float(v):g}" if hasattr(v, "denominator") and v.denominator != 1 else str(v)


def _bindings(node, env, out):
    if isinstance(node, Param) and node.name in env:
        out[node.name] = env[node.name]
    elif isinstance(node, Op):
        _bindings(node.left, env, out)
        _bindings(node.right, env, out)
    elif isinstance(node, Func):
        for a in node.args:
            _bindings(a, env, out)
    return out


def _with(node, env) -> str:
    """'$w // 16 with w = 200' for messages."""
    b = _bindings(node, env, {})
    values = ", ".join(f"{k} = {'x'.join(map(str, v)) if isinstance(v, tuple) else _num(v)}"
                       for k, v in b.items())
    return _show(node) + (f" with {values}" if values else "")


def scalar(node, env, top=None):
    """One integer (or a tuple when a parameter bound to a size stands alone)."""
    if isinstance(node, int):
        return node
    if isinstance(node, Param):
        if node.name not in env:
            known = ", ".join(f"${k}" for k in env) or "none here: parameters exist inside a def"
            raise ExprError(f"unknown parameter '${node.name}' (parameters: {known})",
                            line=node.line, column=node.column)
        v = env[node.name]
        return v[0] if isinstance(v, tuple) and len(v) == 1 else v
    if isinstance(node, Open):
        return node.name
    top = top or node
    if isinstance(node, Func):
        return _call(node, [_number(scalar(a, env, top), a, env) for a in node.args])
    a = _number(scalar(node.left, env, top), node.left, env)
    b = _number(scalar(node.right, env, top), node.right, env)
    if node.op in "+-*":
        v = a + b if node.op == "+" else a - b if node.op == "-" else a * b
        if _beyond(v, a, b):
            raise ExprError(f"{_show(top)}: a step of it passes {power(MAX_INTERMEDIATE)}; "
                            "sizes are at most 10^18", line=node.line, column=node.column)
        return v
    return _divide(node, a, b, top, env)


def _call(node, args):
    """min(), max() and the rounding functions (of lanes too)."""
    if node.name in ROUNDING:
        if len(args) != 1:
            raise ExprError(f"{node.name}() takes one value, received {len(args)}",
                            line=node.line, column=node.column)
        if _lanes(args[0]):
            return rounded(node.name, args[0])
        return ROUNDING[node.name](args[0])
    if any(_lanes(a) for a in args):
        import numpy as np
        return (np.minimum if node.name == "min" else np.maximum).reduce(
            np.broadcast_arrays(*args))
    return min(args) if node.name == "min" else max(args)


def _divide(node, a, b, top, env):
    """'//' rounds down; '/' must divide exactly."""
    if _any(b == 0):
        raise ExprError(f"{_with(top, env)}: division by zero", line=node.line,
                        column=node.column)
    if node.op == "//":
        return a // b
    if _any(a % b):
        raise ExprError(f"{_with(top, env)} is {_ratio(a, b)}, not a whole number: '/' must divide "
                        "exactly (use // to round down)", line=node.line, column=node.column)
    return a // b


def _ratio(a: int, b: int) -> str:
    """a / b for a message, without float overflow: 2.5, or 1.43e+20."""
    from fractions import Fraction
    q = Fraction(a, b)
    return f"{float(q):g}" if abs(q) < 10**300 else f"about 10^{len(str(abs(a // b))) - 1}"


def _number(v, node, env):
    # a whole number, a knob's fraction, or a sweep's lanes of them
    if isinstance(v, int) or hasattr(v, "denominator") or _lanes(v):
        return v
    what = f"the word {v!r}" if isinstance(v, WordValue) else "an open size" \
        if isinstance(v, str) else f"the size {'x'.join(map(str, v))}"
    raise ExprError(f"{_show(node)} is {what}; arithmetic needs a single number",
                    line=getattr(node, "line", None), column=getattr(node, "column", None))


def evaluate(dims: tuple, env: dict) -> tuple:
    """The value's numbers: a parameter bound to a size (``3x3``) splices its axes in."""
    out = []
    for node in dims:
        v = node if isinstance(node, int) else scalar(node, env)
        if isinstance(v, WordValue):
            raise ExprError(f"{_show(node)} is the word {v!r}; a number is needed here",
                            line=getattr(node, "line", None), column=getattr(node, "column", None))
        if isinstance(v, tuple):
            out.extend(v)
        elif _lanes(v):
            out.append(_whole_lanes(v, node, env))
        elif hasattr(v, "denominator") and not isinstance(v, int):  # a knob's fraction
            out.append(_whole(v, node, env))
        else:
            out.append(v)
    return tuple(out)


def _whole(v, node, env) -> int:
    """A fraction that is a size must be whole, or say how to round it."""
    if v.denominator == 1:
        return v.numerator
    raise ExprError(f"{_with(node, env)} is {float(v):g}, not a whole number: a size computed "
                    "from a fraction says how it rounds: ceil(), floor(), round() or div8()",
                    line=getattr(node, "line", None), column=getattr(node, "column", None))


def word(dims: tuple, env: dict):
    """The word a value stands for, when it is a lone parameter bound to one ('$act')."""
    if len(dims) == 1 and isinstance(dims[0], Param):
        v = env.get(dims[0].name)
        if isinstance(v, WordValue):
            return v
    return None


def describe(dims: tuple) -> str:
    return "x".join(_show(d) if not isinstance(d, Op) else f"({_show(d)})" for d in dims) \
        if len(dims) > 1 else _show(dims[0])


# --- lanes: a sweep evaluates one expression for many variants at once, each knob a numpy
# array (``analysis/lanes.py``); numpy is imported only when one is met

class Structural(ExprError):
    """A knob's lanes reached a place that shapes the network (a repeat count): the sweep
    groups variants by that knob instead."""


def _lanes(v) -> bool:
    return hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0


def _any(v) -> bool:
    return bool(v.any()) if _lanes(v) else bool(v)


def _beyond(v, a, b) -> bool:
    """A step past the expression limit; for int64 lanes, also any step int64 cannot hold
    (a bound on the operands, since numpy wraps silently)."""
    if not _lanes(v):
        return abs(v) > MAX_INTERMEDIATE
    import numpy as np
    if v.dtype == np.int64:
        big = float(np.abs(a).max()) if _lanes(a) else abs(a)
        other = float(np.abs(b).max()) if _lanes(b) else abs(b)
        if big * other >= 2.0 ** 62 or big + other >= 2.0 ** 62:
            return True
    return bool((abs(v) > MAX_INTERMEDIATE).any())


def _whole_lanes(v, node, env):
    import numpy as np
    if v.dtype == object:
        whole = np.array([getattr(x, "denominator", 1) == 1 for x in v])
        if not whole.all():
            raise ExprError(f"{_show(node)} is not a whole number for every variant: a size "
                            "computed from a fraction says how it rounds", line=getattr(
                                node, "line", None), column=getattr(node, "column", None))
        return np.array([int(x) for x in v], dtype=np.int64)
    return v
