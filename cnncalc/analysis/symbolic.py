"""Open input sizes as formulas (``input HxWx3``): a small integer expression type that
the calculator's own rules run on, so ``summary`` can show ``floor((H - 4) / 2) + 1``.

An expression is ``a * core + b`` with ``core`` a size name or ``floor``/``ceil`` of an
expression over a number; anything else (a product of two sizes, a remainder, a
comparison) becomes an opaque formula, which is still printed, never evaluated."""

from __future__ import annotations


class Sym:
    symbolic = True  # how the calculator tells a formula from a number, without importing this
    __slots__ = ("a", "core", "b")

    def __init__(self, core, a: int = 1, b: int = 0):
        self.core, self.a, self.b = core, a, b

    # --- arithmetic, folding what can be folded -----------------------------------------
    def __add__(self, other):
        if isinstance(other, int):
            return Sym(self.core, self.a, self.b + other)
        if isinstance(other, Sym) and _same(self.core, other.core):
            a = self.a + other.a
            return self.b + other.b if a == 0 else Sym(self.core, a, self.b + other.b)
        if isinstance(other, Sym):
            return _opaque(f"{self} + {other}")
        return NotImplemented

    __radd__ = __add__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        if isinstance(other, Sym) and not _same(self.core, other.core):  # nothing to fold
            return _opaque(f"{self} - {_term(other)}")
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, k):
        if isinstance(k, Sym):
            return Sym(("product", f"{_factor(self)} x {_factor(k)}"))
        if not isinstance(k, int):
            return NotImplemented
        if k == 0:
            return 0
        if k < 0 and isinstance(self.core, tuple) and self.core[0] in ("floor", "ceil"):
            # -floor(x / d) = ceil(-x / d), so formulas keep a readable sign
            kind, inner, d = self.core
            flipped = ("ceil" if kind == "floor" else "floor", -inner, d)
            return Sym(flipped, self.a * -k, self.b * k)
        return Sym(self.core, self.a * k, self.b * k)

    __rmul__ = __mul__

    def __floordiv__(self, d):
        if not isinstance(d, int):
            return NotImplemented
        if d == 1:
            return self
        if d < 1:  # (no rule divides by a negative number; kept exact if one ever does)
            return Sym(("floor", self, d))
        if self.a % d == 0 and self.b % d == 0:
            return Sym(self.core, self.a // d, self.b // d)
        q = self.b // d  # floor((x + b) / d) = floor((x + b mod d) / d) + b div d
        if q:
            return (self - q * d) // d + q
        core = self.core
        if self.a == 1 and isinstance(core, tuple) and core[0] == "floor":
            # floor((floor(y / d1) + b) / d) = floor((y + b d1) / (d1 d)): a U-Net's four
            # pools are one floor of W / 16, not four nested ones
            return (core[1] + self.b * core[2]) // (core[2] * d)
        return Sym(("floor", self, d))

    def __mod__(self, d):
        if isinstance(d, int) and self.a % d == 0 and self.b % d == 0:
            return 0
        return _opaque(f"({self}) mod {d}")

    def relu(self):
        return _opaque(f"max({self}, 0)")

    # --- comparison: formulas are equal when they print the same ------------------------
    def __eq__(self, other):
        return isinstance(other, Sym) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __str__(self):
        core = self.core
        if isinstance(core, tuple) and core[0] in ("floor", "ceil"):
            text = f"{core[0]}({_paren(core[1])} / {core[2]})"
        else:
            text = core[1] if isinstance(core, tuple) else core  # opaque or a name
        if self.a != 1:
            inner = text if isinstance(core, tuple) and core[0] == "product" else _paren_text(text)
            text = f"{self.a} x {inner}" if self.a != -1 else f"-({text})"
        if self.b:
            text += f" + {self.b}" if self.b > 0 else f" - {-self.b}"
        return text

    __repr__ = __str__

    def __format__(self, spec):
        return str(self)


def _same(x, y):
    return x == y if not isinstance(x, tuple) else str(Sym(x)) == str(Sym(y))


def _opaque(text):
    return Sym(("opaque", text))


def _paren(s: Sym):
    text = str(s)
    return f"({text})" if (s.b or s.a != 1) else text


def _paren_text(text):
    """Parentheses for a sum inside a product."""
    return f"({text})" if " + " in text or " - " in text else text


def _term(v: Sym) -> str:
    """A formula after a minus: a sum needs parentheses, one function or name does not."""
    single = v.a == 1 and not v.b and (not isinstance(v.core, tuple) or v.core[0] != "opaque")
    return str(v) if single else _paren_text(str(v))


def _factor(v) -> str:
    """A factor of a product: a product itself needs no parentheses (x is associative)."""
    if isinstance(v, Sym) and isinstance(v.core, tuple) and v.core[0] == "product" \
            and v.a == 1 and not v.b:
        return str(v)
    return _paren_text(str(v))
