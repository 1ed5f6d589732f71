"""Which input sizes a design accepts: the calculator's own walk run on numpy arrays of
sizes, one vectorised pass for a whole range (``cnncalc sizes``).

An input size is *valid* when every layer's output is at least 1 and every merge sees
sizes that agree; it is *exact* when, in addition, no floor leaves input rows unused (a
valid convolution or pooling whose windows do not tile the input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecDesignError, context_line
from ..limits import SIZES_CHUNK
from .walk import Walk


@dataclass
class Axis:
    name: str        # the open size's name ("H") with its place in the input
    values: np.ndarray
    valid: np.ndarray
    exact: np.ndarray
    output: np.ndarray | None  # the output size along this axis; None if the output is flat


class _Masks:
    """The sweep's side of the walk: per spatial axis, which sizes stay valid and exact."""

    def __init__(self, rank: int, n: int):
        self.valid = [np.ones(n, bool) for _ in range(rank)]
        self.exact = [np.ones(n, bool) for _ in range(rank)]

    def check(self, condition, axis=None):
        holds = np.asarray(condition)
        if axis is not None and axis < len(self.valid) and holds.ndim:
            self.valid[axis] &= holds
            return True
        return bool(np.all(holds))

    def after(self, row, out):
        shape = row.output
        if len(shape) > 1 and len(row.input) > 1:
            clamped = list(shape)
            for i in range(len(shape) - 1):
                if np.min(shape[i]) < 1:  # most layers shrink no size below 1: skip the copies
                    self.valid[i] &= np.asarray(shape[i] >= 1)
                    # sizes below 1 would go on as nonsense: clamp, they are invalid anyway
                    clamped[i] = np.maximum(shape[i], 1)
            row.output = tuple(clamped)
        if out.geometry and "dropped" in out.geometry:
            for i, d in enumerate(out.geometry["dropped"]):
                self.exact[i] &= np.asarray(d == 0)


def check_range(lo: int, hi: int, said: str):
    """The sizes to try: 1 <= lo <= hi <= 10^18, and at most MAX_SIZES of them (the answer
    itself is arrays this long); ``said`` is how the user gave them, for the message."""
    from ..errors import CnnCalcError
    from ..limits import MAX_SIZE, MAX_SIZES
    if not 1 <= lo <= hi <= MAX_SIZE:
        raise CnnCalcError(f"{said}: expected LO:HI with 1 <= LO <= HI <= 10^18, e.g. 1:4096")
    if hi - lo >= MAX_SIZES:
        raise CnnCalcError(f"{said}: at most {MAX_SIZES:,} sizes at once")


def sweep(network, lo: int, hi: int) -> list[Axis]:
    """Valid and exact sizes, and output sizes, for every open axis over lo..hi."""
    spatial = network.input.shape[:-1]
    values = np.arange(lo, hi + 1, dtype=np.int64)
    open_axes = [i for i, v in enumerate(spatial) if isinstance(v, str)]
    if not open_axes:
        inp = network.input
        raise SpecDesignError("the input has no open size; write e.g. 'input ?x?x3', or open "
                              "the sizes of this spec with --open", file=network.file,
                              line=inp.line, column=inp.column, context=context_line(
                                  network.text, inp.line, inp.column) if network.text else None)
    # in chunks, each walk letting go of its rows' arrays: memory stays bounded at any range
    parts = [_chunk(network, values[i:i + SIZES_CHUNK], open_axes)
             for i in range(0, len(values), SIZES_CHUNK)]
    result = []
    shape = "x".join(map(str, network.input.shape))
    for k, i in enumerate(open_axes):
        valid = np.concatenate([p[k][0] for p in parts])
        exact = np.concatenate([p[k][1] for p in parts])
        final = None if parts[0][k][2] is None else np.concatenate([p[k][2] for p in parts])
        result.append(Axis(f"{spatial[i]} (axis {i + 1} of {shape})", values, valid,
                           valid & exact, final))
    return result


def _chunk(network, values, open_axes) -> list:
    """(valid, exact, output) per open axis for these input sizes."""
    spatial = network.input.shape[:-1]
    x = tuple(values if isinstance(v, str) else np.full(len(values), v, np.int64) for v in spatial)
    masks = _Masks(len(spatial), len(values))
    walk = Walk(check=masks.check, after=masks.after, fields=False, lean=True)
    _, out = walk.run(network, (*x, network.input.shape[-1]))
    # an adaptive pool's output is one number whatever the input: as many as the inputs
    return [(masks.valid[i], masks.exact[i],
             np.broadcast_to(np.asarray(out[i]), values.shape).copy()
             if len(out) - 1 == len(spatial) else None) for i in open_axes]


def describe_set(values: np.ndarray) -> str:
    """A compact text for a set of sizes: '32 to 4096, every 32' or a short list."""
    if len(values) == 0:
        return "none"
    if len(values) == 1:
        return str(values[0])
    steps = np.diff(values)
    if np.all(steps == steps[0]):
        step = "" if steps[0] == 1 else f", every {steps[0]}"
        return f"{values[0]} to {values[-1]}{step} ({len(values):,} sizes)"
    head = ", ".join(map(str, values[:8]))
    return f"{head}, ... ({len(values):,} sizes)" if len(values) > 8 else head
