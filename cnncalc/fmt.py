"""Formatting, the leaf every other module may import: shapes, exact counts, SI units and
byte sizes, all from integers so that huge numbers print without float noise."""

from __future__ import annotations

from .errors import CnnCalcError


def shape(dims) -> str:
    """(224, 224, 3) → '224x224x3'; a formula gets parentheses when it has spaces."""
    return "x".join(f"({v})" if " " in str(v) else str(v) for v in dims)


def symbolic(v) -> bool:
    """An open size as a formula (see ``analysis.symbolic.Sym``)."""
    return getattr(v, "symbolic", False)


def count(v) -> str:
    """12345 → '12,345'; zero as '--'; formulas as they are."""
    if symbolic(v):
        return str(v)
    return f"{v:,}" if v else "--"


def _decimal(v: int, size: int, digits: int) -> str:
    """v / size rounded half up to ``digits`` decimals, in integer arithmetic."""
    scale = 10 ** digits
    q = (v * scale * 2 + size) // (size * 2)
    whole, frac = divmod(q, scale)
    return f"{whole:,}.{frac:0{digits}d}" if digits else f"{whole:,}"


def _scaled(v, steps, digits: int, small: str) -> str:
    if symbolic(v):
        return str(v)
    v = int(v)
    for unit, size in steps:
        if v >= size:
            return f"{_decimal(v, size, digits)} {unit}"
    return small.format(v) if v else "--"


_SI = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))
_BIN = (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
        ("KiB", 2**10))


def si(v) -> str:
    """15470264320 → '15.47 G'; below a thousand the number itself; zero as '--'."""
    return _scaled(v, _SI, 2, "{}")


def nbytes(v) -> str:
    """553430176 → '527.8 MiB'."""
    return _scaled(v, _BIN, 1, "{} B")


def per(v) -> str:
    """A count before a unit: '15.47 G' + 'MACs', '576 ' + 'MACs', '0 ' + 'MACs'."""
    text = si(v) if v else "0"
    return text if text[-1].isalpha() else text + " "


def exact(v):
    """A Fraction as JSON: an int when whole, else a float (formulas as they are)."""
    if v is None or symbolic(v):
        return v
    return int(v) if v == int(v) else float(v)


def ratio(v) -> str:
    """A jump or start: '2', '1/2' for fractions."""
    if symbolic(v) or v is None:
        return str(v)
    from fractions import Fraction
    v = Fraction(v)
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def axes(values) -> str:
    """One number when every axis agrees ('2'), else '2x1'."""
    return str(values[0]) if len(set(map(str, values))) == 1 else shape(values)


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "k": 10**3,
          "m": 10**6, "g": 10**9, "t": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str, option: str = "--memory") -> int:
    """'16GiB' → 17179869184. A bare number is refused: 16 could mean bytes or GiB."""
    import re
    text = str(text)
    if len(text) > 40:  # a size is a few digits and a unit; Fraction would crawl on more
        raise CnnCalcError(f"{option} {text[:20]}...: a size is a number and a unit, e.g. "
                           "16GiB (this one has " + f"{len(text):,} characters)")
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]{1,3})?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        why = "a size needs a unit" if match and not unit else "cannot read it as a size"
        raise CnnCalcError(f"{option} {text}: {why}; write e.g. 16GiB, 512MiB, 80GB or "
                           "1000000B")
    from fractions import Fraction

    from .limits import MAX_BYTES_TEXT
    size = int(Fraction(match.group(1)) * _UNITS[unit])
    if size > MAX_BYTES_TEXT:
        raise CnnCalcError(f"{option} {text}: larger than any memory (at most 1YiB, 2^80 bytes)")
    return size


def where(layer) -> str:
    """'line 5', or 'line 5, from the block called on line 12'."""
    text = f"line {layer.line}"
    called = getattr(layer, "called", None)
    if called and called != layer.line:
        text += f", from {layer.origin or 'the block'} called on line {called}"
    return text
