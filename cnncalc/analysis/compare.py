"""Two summaries side by side, layer for layer: a spec against the model it describes (its
import). Each layer is compared by what it computes (output shape, trainable parameters,
buffers, MACs), not by how it is written, so 'conv 3x3x64 same relu' matches a Conv2d with
padding 1 then a ReLU. A fused activation counts as its own step; the branches of an add
or multiply may come in either order, a concat's may not."""

from __future__ import annotations

from .. import fmt
from ..layers.activations import IDENTITY

class Step:
    __slots__ = ("row", "what", "key")

    def __init__(self, row, what, key):
        self.row, self.what, self.key = row, what, key

    def describe(self) -> str:
        if self.what == "act":
            return f"{self.key[1]} on {fmt.shape(self.key[2])}"
        if getattr(self.row.layer, "merge", False):
            return f"{self.what} to {fmt.shape(self.key[1])}"
        out, trainable, frozen, macs = self.key[1:]
        return (f"{fmt.shape(out)}, {trainable:,} params" + (f" + {frozen:,} buffers" if frozen
                                                            else "") + f", {macs:,} MACs")


def steps(rows) -> list:
    """The comparable steps of a row tree, depth first, a merge after its branches."""
    out = []
    for row in rows:
        kind = row.kind
        if kind == "input" or row.layer.transparent:
            continue
        if row.branches is not None:
            branches = [steps(b) for b in row.branches]
            if getattr(row.layer, "commutative", False):
                branches.sort(key=lambda b: [s.key for s in b])
            for b in branches:
                out += b
            out.append(Step(row, kind, (kind, _canon(row.output))))
        elif row.source is not None:
            out.append(Step(row, kind, (kind, _canon(row.output))))
        else:
            out += _layer_steps(row, kind)
    return out


def _layer_steps(row, kind) -> list:
    """A layer's steps: itself (none for an identity), then its activation."""
    act = getattr(row.layer, "activation", None)
    if act is not None and act == kind:  # an activation as its own layer
        return [Step(row, "act", ("act", act, _canon(row.output)))]
    trainable = row.weights + row.biases
    if trainable == 0 and row.macs == 0 and _canon(row.input or ()) == _canon(row.output) \
            and all(w[0] == 1 for w in row.window or ()):
        return []  # an identity: a flatten of 1x1xC, a pool whose windows are one pixel
    out = [Step(row, kind, ("layer", _canon(row.output), trainable, row.non_trainable,
                            row.macs))]
    if act and act != IDENTITY:
        out.append(Step(row, "act", ("act", act, _canon(row.output))))
    return out


class Comparison:
    def __init__(self, spec, model, where: str):
        self.spec, self.model, self.where = spec, model, where
        self.mine = steps(_top(spec.rows))
        self.theirs = steps(_top(model.rows))
        self.first = next((i for i, (a, b) in enumerate(zip(self.mine, self.theirs))
                           if a.key != b.key), None)
        if self.first is None and len(self.mine) != len(self.theirs):
            self.first = min(len(self.mine), len(self.theirs))

    @property
    def ok(self) -> bool:
        return self.first is None

    def __str__(self):
        n = len(self.mine)
        if self.ok:
            return (f"{self.spec.network.name} and {self.where} agree: {n} steps compared "
                    "(each layer's output shape, params, buffers and MACs; activations; merges)"
                    f"; outputs {', '.join(fmt.shape(s) for _, s in self.spec.outputs)}\n")
        i = self.first
        lines = [f"{self.spec.network.name} and {self.where} differ at step {i + 1} of {n}:"]
        if i < len(self.mine):
            a = self.mine[i]
            line = f" ({fmt.where(a.row.layer)})" if getattr(a.row.layer, "line", None) else ""
            lines.append(f"  spec:  layer '{a.row.name}'{line}, {a.row.layer.describe()}: "
                         f"{a.describe()}")
        else:
            lines.append("  spec:  (ends here)")
        if i < len(self.theirs):
            b = self.theirs[i]
            lines.append(f"  model: '{b.row.name}', {b.row.layer.describe()}: {b.describe()}")
        else:
            lines.append("  model: (ends here)")
        agreed = list(dict.fromkeys(s.row.name for s in self.mine[max(0, i - 4):i]))
        if agreed:
            lines.append(f"  (the steps before agree: ... {', '.join(agreed)})")
        return "\n".join(lines) + "\n"


def _canon(shape) -> tuple:
    """1x1x64 and 64 are the same values (a global pool, then a flatten or not)."""
    shape = tuple(shape)
    return shape[-1:] if shape and all(d == 1 for d in shape[:-1]) else shape


def _top(rows):
    return [r for r in rows if r.depth == 0]


def compare(spec, model, where: str = "the model") -> Comparison:
    return Comparison(spec, model, where)
