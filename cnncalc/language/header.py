"""The statements before the layers: 'param' knobs (declared, or given from outside with
--set) and the input's sizes, open ones named."""


from __future__ import annotations

from .. import layers as L
from ..errors import (
    CnnCalcError,
)
from ..limits import MAX_SIZE
from .records import Float, Stmt, Value


def set_knobs(st, declared: list, given: dict):
    """'param width = 64' in order (a knob's value may use the ones before it); ``given``
    ('--set width=48') replaces declared values and names only declared knobs."""
    names = [k.name for k in declared]
    for name in given:
        if name not in names:
            raise CnnCalcError(f"--set {name}: the spec has no 'param {name}'" + (
                f"; its params: {', '.join(names)}" if names else "; it declares none (write "
                f"'param {name} = ...' at the top)"), file=st.file)
    for k in declared:
        if k.name in st.knobs:
            raise st.error(f"param {k.name!r} is declared twice", k)
        if k.name in given and hasattr(given[k.name], "dtype"):  # a sweep's lanes, checked there
            st.knobs[k.name] = given[k.name]
        elif k.name in given:
            st.knobs[k.name] = _knob_value(st, k.name, given[k.name])
        elif isinstance(k.value, Float):
            st.knobs[k.name] = _fraction(k.value.text)
        else:
            v = st.evaluate(k.value, st.knobs)
            if len(v) != 1 or isinstance(v[0], str):
                raise st.error(f"param {k.name}: expected one number, received {k.value.text}",
                               k.value)
            st.knobs[k.name] = v[0]


def _fraction(text: str):
    from fractions import Fraction  # only a spec with a fractional knob pays for it
    v = Fraction(text)
    return v.numerator if v.denominator == 1 else v


def _knob_value(st, name, value):
    """A knob's value given from outside: a number, or text such as '48' or '1.1'."""
    try:
        v = _fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise CnnCalcError(f"--set {name}={value}: expected a number such as 48 or 1.1",
                           file=st.file) from None
    if not 0 < v <= MAX_SIZE:
        raise CnnCalcError(f"--set {name}={value}: expected a number above 0", file=st.file)
    return v


def input_statement(st, s: Stmt):
    if len(s.items) != 1 or not isinstance(s.items[0], Value):
        raise st.error("input needs its sizes, e.g. 'input 224x224x3'", s)
    value = s.items[0]
    shape = list(st.evaluate(value, st.knobs))
    if len(shape) > 4:
        raise st.error(f"input {value.text}: expected up to 3 spatial sizes then the channels "
                       "(e.g. 100 for a vector, 100x16, 224x224x3, 16x64x64x1)", value)
    if isinstance(shape[-1], str):
        raise st.error(f"input {value.text}: the number of channels must be a number", value)
    for v in shape:
        if isinstance(v, int) and not 1 <= v <= MAX_SIZE:
            raise st.error(f"input {value.text}: sizes must be between 1 and 10^18, received "
                           f"{v}", value)
    _name_open(shape)
    opens = [v for v in shape if isinstance(v, str)]
    if len(set(opens)) != len(opens):
        raise st.error(f"input {value.text}: each open size needs its own name (HxWx3); one "
                       "name for two axes would tie them together", value)
    return L.Input(tuple(shape), s.line, s.column), _channels_first_warning(value, shape)


def _name_open(shape):
    """Each open axis ('?') gets its own name: ?x?x3 is WxHx3, Hx?x3 is HxWx3."""
    letters = {0: (), 1: ("L",), 2: ("W", "H"), 3: ("D", "W", "H")}[len(shape) - 1]
    taken = {v for v in shape if isinstance(v, str) and v != "?"}
    for i, v in enumerate(shape[:-1]):
        if isinstance(v, str) and v == "?":
            free = [c for c in (letters[i], *letters, *"ABCEFGIJKMNOPQRSTUVXYZ") if c not in taken]
            shape[i] = free[0]
            taken.add(free[0])


def _channels_first_warning(value, shape) -> tuple:
    """'input 3x224x224' reads as 3 wide with 224 channels: say so."""
    spatial = shape[:-1]
    if len(spatial) >= 2 and isinstance(spatial[0], int) and spatial[0] <= 4 and \
            isinstance(shape[-1], int) and shape[-1] >= 16:
        return (f"input {value.text} reads as {spatial[0]} wide with {shape[-1]} channels; "
                "channels come last, as in Keras: did you mean "
                f"{'x'.join(map(str, (*shape[1:], shape[0])))}?",)
    return ()
