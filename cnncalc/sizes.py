"""Which input sizes a design accepts: the calculator's own rules run on numpy arrays
of sizes, one vectorised pass for a whole range (``cnncalc sizes``).

An input size is *valid* when every layer's output is at least 1 and every add or
concat sees equal sizes; it is *exact* when, in addition, no floor leaves input rows
unused (a valid convolution or pooling whose windows do not tile the input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import model as m
from .calc import RULES, RuleError
from .errors import SpecDesignError


@dataclass
class Axis:
    name: str        # the open size's name ("H", or "?" with its position)
    values: np.ndarray
    valid: np.ndarray
    exact: np.ndarray
    output: np.ndarray | None  # the output size along this axis; None if the output is flat


class _Sweep:
    def __init__(self, rank: int, n: int):
        self.valid = [np.ones(n, bool) for _ in range(rank)]
        self.exact = [np.ones(n, bool) for _ in range(rank)]
        self.saved = {}

    def equal(self, a, b):
        if len(a) != len(b):
            return
        for i in range(min(len(a) - 1, len(self.valid))):
            self.valid[i] &= np.asarray(a[i] == b[i])

    def seq(self, nodes, x):
        for node in nodes:
            x = self.node(node, x)
            self.saved[node.name] = x
        return x

    def node(self, node, x):
        if isinstance(node, (m.Add, m.Concat)):
            outs = [self.seq(b, x) for b in node.branches]
            for y in outs[1:]:
                self.equal(outs[0], y)
            if isinstance(node, m.Add):
                return outs[0]
            return (*outs[0][:-1], sum(y[-1] for y in outs))
        if isinstance(node, (m.AddRef, m.ConcatRef)):
            y = self.saved.get(node.ref)
            if y is None:
                raise SpecDesignError(f"{node.ref!r} is not the name of an earlier layer",
                                      layer=node.name, line=node.line, column=node.column)
            if getattr(node, "crop", False):
                for i in range(len(x) - 1):
                    self.valid[i] &= np.asarray(y[i] >= x[i])
            else:
                self.equal(x, y)
            return x if isinstance(node, m.AddRef) else (*x[:-1], x[-1] + y[-1])
        try:
            out = RULES[type(node)](node, x, None)
        except RuleError as e:
            raise SpecDesignError(str(e), layer=node.name, line=node.line,
                                  column=node.column) from None
        if len(out.shape) > 1:
            for i in range(len(out.shape) - 1):
                self.valid[i] &= np.asarray(out.shape[i] >= 1)
        if out.geometry and "dropped" in out.geometry:
            for i, d in enumerate(out.geometry["dropped"]):
                self.exact[i] &= np.asarray(d == 0)
        if len(x) > 1:  # sizes below 1 would go on as nonsense: clamp, they are invalid anyway
            out.shape = tuple(np.maximum(v, 1) if i < len(out.shape) - 1 else v
                              for i, v in enumerate(out.shape))
        return out.shape


def sweep(network: m.Network, lo: int, hi: int) -> list[Axis]:
    """Valid and exact sizes, and output sizes, for every open axis over lo..hi."""
    spatial = network.input.shape[:-1]
    values = np.arange(lo, hi + 1, dtype=np.int64)
    open_axes = [i for i, v in enumerate(spatial) if isinstance(v, str)]
    if not open_axes:
        raise SpecDesignError("the input has no open size; write e.g. 'input ?x?x3' or "
                              "'input HxWx3'", line=network.input.line, column=network.input.column)
    x = tuple(values if isinstance(v, str) else np.full(len(values), v, np.int64) for v in spatial)
    sw = _Sweep(len(spatial), len(values))
    out = sw.seq(network.layers, (*x, network.input.shape[-1]))
    result = []
    for i in open_axes:
        final = np.asarray(out[i]) if len(out) - 1 == len(spatial) else None
        valid = sw.valid[i]
        result.append(Axis(f"{spatial[i]} (axis {i + 1} of {'x'.join(map(str, network.input.shape))})",
                           values, valid, valid & sw.exact[i], final))
    return result


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
