"""The calculator's one walk: pure Python, never torch. It runs each layer's rule on the
shape before it and returns a tree of rows: a merge's row holds its branches' rows, a
reference's row names the row it takes. Every consumer (renderers, memory, the backend,
draw, check) reads this tree; none re-derives a rule.

The same walk runs on integers, on formulas of open sizes (``analysis.symbolic``) and on
numpy arrays of sizes (``analysis.sizes``): only ``check``, which tests a condition on
sizes (two merged sizes agree), differs between them."""

from __future__ import annotations

from math import prod

from .. import fmt
from ..errors import SpecDesignError, context_line, paused_gc
from ..layers import Network, RuleError, referenced
from ..layers.base import anywhere
from ..limits import MAX_SIZE


class Row:
    """One layer's answer. ``rf``: per axis (size, jump, start), exact, or None for the whole
    input (at a merge, the largest over the paths; ``misaligned`` when their centres
    differ, so that the largest is not the union); ``branches``: a merge block's branches' rows; ``source``: the row whose output a
    reference merge ('add ID') takes."""
    __slots__ = ("index", "path", "depth", "layer", "input", "output", "weights", "biases",
                 "non_trainable", "macs", "ops", "geometry", "window", "up", "rf", "explain",
                 "error", "note", "branches", "source", "misaligned", "shared", "_units")

    def __init__(self, index, path, depth, layer, input, output, explain=None):
        self.index, self.path, self.depth, self.layer = index, path, depth, layer
        self.input, self.output, self.explain = input, output, explain
        self.weights = self.biases = self.non_trainable = self.macs = self.ops = 0
        self.geometry = self.window = self.rf = self.error = self.note = None
        self.branches = self.source = self.shared = None  # shared: the row 'shares ID' names
        self.up = self.misaligned = False
        self._units = (None, 0)

    def __repr__(self):
        return f"<Row {self.index} {self.name}: {fmt.shape(self.output)}>"

    @property
    def flops(self) -> int:
        """2 x MACs plus the element-wise operations (README, 'Conventions')."""
        return 2 * self.macs + self.ops

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def trainable(self) -> int:
        return self.weights + self.biases

    @property
    def learns(self):
        """Trainable values whose gradients it computes: its own, or those of the layer it
        shares (counted there)."""
        return self.trainable if self.shared is None else self.shared.trainable

    @property
    def params(self) -> int:
        return self.weights + self.biases + self.non_trainable

    @property
    def units(self) -> int:
        """The number of values in the output, one example (kept while the output is the
        same: memory and totals read it many times, a sweep on arrays of a million lanes)."""
        shape, n = self._units
        if shape is not self.output:
            n = prod(self.output)
            self._units = (self.output, n)
        return n

    @property
    def field(self) -> tuple | None:
        """The receptive field as reported: per axis (size, jump, start). The size is the
        largest number of input pixels one output sees, an integer: after upsampling the
        exact extent can be fractional, and it is rounded up."""
        if self.rf is None:
            return None
        return tuple((r if fmt.symbolic(r) or r == int(r) else -(-r.numerator // r.denominator),
                      j, s) for r, j, s in self.rf)


def _marked(row) -> tuple:
    """(name, shape) of what an 'output' row marks: a head's last layer, a saved layer, or
    the current tensor."""
    if row.branches is not None:
        head = row.branches[0]
        return (head[-1].name, head[-1].output) if head else (row.name, row.input)
    target = row.source or row
    return target.name, target.output


class Totals:
    """The sums of the rows: ``summary.totals.params``."""
    FIELDS = ("weights", "biases", "params", "trainable", "non_trainable", "units", "macs",
              "flops")

    def __init__(self, rows):
        # the five sums the others derive from (a sweep sums arrays of a million lanes)
        w, b, n, self.units, self.macs, ops = (sum(getattr(r, f) for r in rows) for f in (
            "weights", "biases", "non_trainable", "units", "macs", "ops"))
        self.weights, self.biases, self.non_trainable = w, b, n
        self.trainable, self.params, self.flops = w + b, w + b + n, 2 * self.macs + ops

    def __repr__(self):
        return "Totals(" + ", ".join(f"{f}={getattr(self, f):,}" for f in self.FIELDS) + ")"


class Summary:
    """The calculator's answer for a network: ``rows`` in order (a merge's row before its
    branches'), ``output`` the last top-level row's, ``input`` as the rules saw it (numbers,
    or formulas of open sizes), ``tree`` the top-level rows with their branches."""

    def __init__(self, network: Network, rows=None, output=(), input=(), tree=None):
        self.network, self.rows, self.output = network, rows or [], output
        self.input, self.tree = input, tree or []
        self._totals = None

    def total(self, attr: str) -> int:
        return sum(getattr(r, attr) for r in self.rows)

    @property
    def outputs(self) -> list:
        """The network's outputs, in order: (name, shape) of each 'output' and of the last
        layer (when it is not one already)."""
        marked = [_marked(r) for r in self.rows if r.kind == "output"]
        last = self.tree[-1] if self.tree else None
        if last is None:
            return marked
        if last.kind != "output":
            marked.append((last.name, last.output))
        return marked

    @property
    def totals(self) -> Totals:
        if self._totals is None:  # (the rows are final once the walk has made them)
            self._totals = Totals(self.rows)
        return self._totals

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        """A row by its position in ``rows`` or by its layer's name."""
        if isinstance(key, str):
            for r in self.rows:
                if r.name == key:
                    return r
            raise KeyError(key)
        return self.rows[key]

    def table(self, format: str = "table", columns=None, batch: int = 1,
              dtype: str = "float32", optimizer: str = "adam", counts: str = "keras",
              foreach: bool = True, amp: bool = False, checkpoint=()) -> str:
        """The summary as text: ``format`` table, markdown, csv, html or json; ``counts``
        'keras' or 'torch' says what 'params' counts."""
        from ..render import table as t
        return t.render(self, format, t.Options(t.parse_columns(columns), batch, dtype,
                                                optimizer, counts, foreach, amp,
                                                checkpoint))

    def memory(self, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
               foreach: bool = True, amp: bool = False, checkpoint=()):
        """Bytes of parameters, activations, the inference peak, the activations kept for
        the backward pass and the training step's peak (``.step`` has its parts)."""
        from .memory import estimate
        return estimate(self, batch, dtype, optimizer, foreach, amp, checkpoint)

    def fit(self, memory, dtype: str = "float32", optimizer: str = "adam",
            foreach: bool = True, amp: bool = False, checkpoint=()) -> dict:
        """The largest batch that trains, and that runs inference, in ``memory`` (bytes, or
        text such as '16GiB')."""
        from .. import fmt
        from .memory import fit
        size = fmt.parse_bytes(memory) if isinstance(memory, str) else memory
        return fit(self, size, dtype, optimizer, foreach, amp, checkpoint)

    def to_dict(self, **options) -> dict:
        from ..render.result import record
        return record(self, **options)

    def to_json(self, **options) -> str:
        from ..render.result import json_text
        return json_text(self, **options)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"<Summary {self.network.name}: {len(self.rows)} layers, "
                f"{fmt.count(self.total('params'))} params, output {fmt.shape(self.output)}>")

    def _repr_html_(self) -> str:  # Jupyter shows the summary as a table
        return self.table("html")


# --- receptive fields (Araujo, Norris and Sim, Distill 2019) --------------------------

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
            from fractions import Fraction  # thirds and fifths: only upsampling needs them
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


# --- the walk -------------------------------------------------------------------------------

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
                row.branches, shapes, rfs = [], [], []
                inputs = layer.inputs(x, len(layer.branches))
                for j, (branch, xj) in enumerate(zip(layer.branches, inputs), 1):
                    rows, y, yrf = self.seq(branch, xj, rf, depth + 1, f"{path}.{layer.kind}.{j}.")
                    row.branches.append(rows)
                    shapes.append(y)
                    rfs.append(yrf)
                out = layer.combine(shapes, self.check, row.explain,
                                    [f"branch {j}" for j in range(1, len(shapes) + 1)], x)
                if layer.kind == "output":  # a head: the flow goes on from the block's input
                    aligned = True
                else:
                    rf, aligned = merge_rf(rfs) if self.fields else (None, True)
                if not aligned:
                    row.note = "receptive-field centres of the branches differ"
                    row.misaligned = True
            elif layer.ref is not None:
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

