"""The calculator's one walk: pure Python, never torch. It runs each layer's rule on the
shape before it and returns a tree of rows: a merge's row holds its branches' rows, a
reference's row names the row it takes. Every consumer (renderers, memory, the backend,
draw, check) reads this tree; none re-derives a rule.

The same walk runs on integers, on formulas of open sizes (``analysis.symbolic``) and on
numpy arrays of sizes (``analysis.sizes``): only ``check``, which tests a condition on
sizes (two merged sizes agree), differs between them."""

from __future__ import annotations

from .. import fmt
from ..errors import SpecDesignError, context_line, paused_gc
from ..layers import Network, RuleError, referenced
from ..layers.base import anywhere
from ..limits import MAX_SIZE
from .summary import Row, Summary


def receptive(rf, window, up):
    """Per axis (size, jump, start) after a layer, from the one before. ``None`` means
    every output sees the whole input (after a dense layer on a vector)."""
    if window == "all" or rf is None:
        return None
    if window is None:
        return rf
    new = []
    for (r, j, start), (k, s, p) in zip(rf, window):
        if up:  # an output sees ceil(k / s) inputs; the grid gets s times finer
            from fractions import (
                Fraction,  # thirds and fifths: only upsampling needs them
            )
            grow = r + (-(-k // s) - 1) * j
            if start is None or fmt.symbolic(p) or fmt.symbolic(k):
                new.append((grow, Fraction(j) / s, None))
            else:
                new.append((grow, Fraction(j) / s, start + Fraction(2 * p - k + 1, 2 * s) * j))
        elif fmt.symbolic(p) or fmt.symbolic(k) or start is None:  # it depends on an open size
            new.append((r + (k - 1) * j, j * s, None))
        else:
            # twice the shift of the centre: an int stays one; a half is exact as a float
            half = (k - 1 - 2 * p) * j
            if hasattr(half, "dtype"):  # a sweep's lanes: starts as floats (no metric reads them)
                new.append((r + (k - 1) * j, j * s, start + half / 2))
            else:
                new.append((r + (k - 1) * j, j * s,
                            start + (half // 2 if half % 2 == 0 else half / 2)))
    return tuple(new)


def merge_rf(rfs):
    """Inputs joined: the largest field over the paths; False if the centres differ."""
    if any(r is None for r in rfs):
        return None, True
    if len({len(r) for r in rfs}) > 1:  # a broadcast flat vector: its field is the whole map
        return None, True
    if any(hasattr(v, "dtype") for rf in rfs for r in rf for v in r):  # a sweep's lanes
        return _merge_lanes(rfs)
    merged = tuple(max(axis, key=lambda a: a[0]) for axis in zip(*rfs))
    # a start left open by open sizes is unknown, not different: no note for it
    aligned = all(len({r[2] for r in axis}) == 1 or any(r[2] is None for r in axis)
                  for axis in zip(*rfs))
    return merged, aligned


def _merge_lanes(rfs):
    """merge_rf for a sweep's lanes: per lane, the path with the largest field."""
    import numpy as np
    merged, aligned = [], True
    for axis in zip(*rfs):
        unknown = any(r[2] is None for r in axis)  # a start left open: unknown, not different
        best = axis[0]
        for r in axis[1:]:
            wider = np.asarray(r[0] > best[0])
            best = tuple(None if a is None else np.where(wider, a, b) for a, b in zip(r, best))
        merged.append(best[:2] + (None,) if unknown else best)
        aligned = aligned and (unknown or all(bool(np.all(r[2] == axis[0][2])) for r in axis))
    return tuple(merged), aligned


def _check(condition, axis=None) -> bool:
    return bool(condition)


class Walk:
    """One pass over a network. ``check(condition, axis)`` tests a condition on sizes; the
    sizes sweep replaces it to record, per input size, whether it holds."""

    def __init__(self, explain: bool = False, check=_check, after=None, fields=True,
                 lean=False):
        self.fields = fields  # receptive fields (not for arrays of sizes)
        self.lean = lean  # let go of each row's sizes once read (arrays of a million sizes)
        self.network = None
        self.rows: list[Row] = []
        self.saved: dict = {}
        self.named: dict = {}  # every row by its name ('shares ID')
        self.keep: set = set()
        self.explain = explain
        self.check = check
        self.after = after  # called with each row's outcome (the sizes sweep)

    def run(self, network: Network, shape: tuple) -> tuple:
        self.network = network
        self.keep = referenced(network.layers)
        rf = tuple((1, 1, 0) for _ in shape[:-1]) if self.fields else None
        with paused_gc():
            tree, out, _ = self.seq(network.layers, shape, rf, 0, "")
        if tree and tree[-1].input is not None:
            last = tree[-1]
            last.note = last.note or last.layer.last_note(last)
        return tree, out

    def seq(self, layers, x, rf, depth, prefix):
        rows = []
        for i, layer in enumerate(layers, 1):
            row = self.node(layer, x, rf, depth, f"{prefix}{i}")
            x, rf = row.output, row.rf
            if layer.name in self.keep:
                self.saved[layer.name] = row
            elif self.lean:
                row.input = row.output = row.geometry = row.window = None
                row.macs = row.ops = row.weights = row.biases = row.non_trainable = 0
            rows.append(row)
        return rows, x, rf

    def fail(self, row: Row, message: str):
        row.error = message
        if row not in self.rows:
            self.rows.append(row)
        layer = row.layer
        called = getattr(layer, "called", None)
        if called and called != layer.line:
            message += f" (in the block called on line {called})"
        net = self.network
        context = context_line(net.text, layer.line, layer.column) if net.text and layer.line \
            else None
        raise SpecDesignError(message, index=row.index, layer=layer.name, line=layer.line,
                              column=layer.column, rows=self.rows, file=net.file,
                              context=context)

    def share(self, row, out):
        """'shares ID': ID's weights, so the same kind and the same counts; counted there."""
        ref = row.layer.shares
        source = self.named.get(ref)
        if source is None or source is row:
            known = [r.name for r in self.rows[:-1]][-8:]
            raise RuleError(f"shares {ref}: {ref!r} is not the name of an earlier layer"
                            + (f" (earlier: {', '.join(known)})" if known else ""))
        if source.layer.shares is not None:
            raise RuleError(f"shares {ref}: {ref!r} shares {source.layer.shares!r}'s weights; "
                            f"write 'shares {source.layer.shares}'")
        if source.layer.frozen != row.layer.frozen:
            raise RuleError(f"shares {ref}: {'this layer' if row.layer.frozen else repr(ref)} "
                            "is frozen and the other is not; shared weights are both or neither")
        if source.kind != row.kind:
            raise RuleError(f"shares {ref}: {ref!r} is a {source.kind}, this layer a {row.kind}")
        mine = (out.weights, out.biases, out.buffers)
        theirs = (source.weights, source.biases, source.non_trainable)
        if any(anywhere(a != b) for a, b in zip(mine, theirs)):
            raise RuleError(f"shares {ref}: its weights do not fit: {ref!r} has "
                            f"{_counts(theirs)}, this layer would have {_counts(mine)}")
        out.weights = out.biases = out.buffers = 0
        row.shared = source
        if row.explain is not None:
            row.explain.append(f"weights: {ref}'s, counted there (shares {ref})")

    def node(self, layer, x, rf, depth, path):
        row = Row(len(self.rows) + 1, path, depth, layer, x, x,
                  explain=[] if self.explain else None)
        self.rows.append(row)
        self.named[layer.name] = row
        try:
            if layer.branches is not None:
                out, rf = self.block(row, layer, x, rf, depth, path)
            elif layer.ref is not None:
                out, rf = self.reference(row, layer, x, rf)
            else:
                out = layer.rule(x, row.explain)
                if layer.frozen:
                    _freeze(out, row.explain)
                if layer.shares is not None:
                    self.share(row, out)
                rf = receptive(rf, out.window, out.up) if self.fields else None
                row.note = out.note
        except RuleError as e:
            self.fail(row, str(e))
        if any(type(v) is int and v > MAX_SIZE for v in out.shape):
            self.fail(row, f"its output {fmt.shape(out.shape)} passes 10^18, the largest size "
                           "cnncalc computes")
        row.output, row.weights, row.biases = out.shape, out.weights, out.biases
        row.non_trainable, row.macs, row.ops = out.buffers, out.macs, out.ops
        row.geometry, row.window, row.up, row.rf = out.geometry, out.window, out.up, rf
        row.note = row.note or out.note
        if self.after is not None:
            self.after(row, out)
        return row

    def block(self, row, layer, x, rf, depth, path):
        """A merge block: each branch walked from its input, then combined; the receptive
        fields merged (a head's flow goes on from the block's input)."""
        row.branches, shapes, rfs = [], [], []
        inputs = layer.inputs(x, len(layer.branches))
        for j, (branch, xj) in enumerate(zip(layer.branches, inputs), 1):
            rows, y, yrf = self.seq(branch, xj, rf, depth + 1, f"{path}.{layer.kind}.{j}.")
            row.branches.append(rows)
            shapes.append(y)
            rfs.append(yrf)
        out = layer.combine(shapes, self.check, row.explain,
                            [f"branch {j}" for j in range(1, len(shapes) + 1)], x)
        if layer.marks_output:
            return out, rf
        rf, aligned = merge_rf(rfs) if self.fields else (None, True)
        if not aligned:
            row.note = "receptive-field centres of the branches differ"
            row.misaligned = True
        return out, rf

    def reference(self, row, layer, x, rf):
        """A layer that reads a saved tensor ('add ID', 'from ID'): combined with the
        current one, or (a jump) taken instead of it."""
        source = self.saved.get(layer.ref)
        if source is None:
            known = [r.name for r in self.rows[:-1]][-8:]
            raise RuleError(f"{layer.ref!r} is not the name of an earlier layer"
                            + (f" (earlier: {', '.join(known)})" if known else ""))
        row.source = source
        out = layer.combine([x, source.output], self.check, row.explain,
                            ["the current tensor", repr(layer.ref)])
        src = source.rf
        offsets = (out.geometry or {}).get("offsets")
        if src and offsets:  # 'concat ID crop' reads ID from its offset on
            # (an offset of open sizes leaves the start open, as a padding of them does)
            src = tuple((r, j, None if s is None or fmt.symbolic(o) else s + o * j)
                        for (r, j, s), o in zip(src, offsets))
        rf, aligned = (src, True) if layer.jump else \
            merge_rf([rf, src]) if self.fields else (None, True)
        if not aligned:
            row.note = f"receptive-field centres of {layer.ref!r} and the current " \
                       "tensor differ"
            row.misaligned = True
        return out, rf


def _freeze(out, ex):
    """'frozen': the weights and biases are kept, not trained: counted with the buffers."""
    out.buffers += out.weights + out.biases
    out.weights = out.biases = 0
    if ex is not None:
        ex.append("frozen: its weights and biases are not trained (non-trainable)")


def _counts(counts) -> str:
    w, b, n = counts
    return f"{fmt.count(w)} weights, {fmt.count(b)} biases" + (
        f", {fmt.count(n)} buffers" if anywhere(n) else "")


def open_shape(shape) -> tuple:
    """The input with its open sizes as formulas (``input HxWx3``)."""
    from .symbolic import Sym
    return tuple(Sym(v) if isinstance(v, str) else v for v in shape)


def analyse(network: Network, explain: bool = False, open_sizes: bool = False) -> Summary:
    """Every layer's output shape and counts. Raises SpecDesignError at the first layer
    that cannot be built; the error carries the rows computed so far. With ``open_sizes``,
    open input sizes (``input HxWx3``) run through the rules as formulas."""
    shape = network.input.shape
    if any(isinstance(v, str) for v in shape):
        if not open_sizes:
            raise SpecDesignError("the input has open sizes (" + fmt.shape(shape) + "); this "
                                  "needs numbers: give them with --input (or see 'cnncalc sizes')",
                                  line=network.input.line, column=network.input.column,
                                  file=network.file)
        shape = open_shape(shape)
    walk = Walk(explain)
    tree, out = walk.run(network, shape)
    return Summary(network, walk.rows, out, shape, tree)

