"""What the calculator answers: a ``Summary`` of ``Row``s (the tree of rows every consumer
walks), their totals, and the summary's views (table, memory, fit, JSON)."""


from __future__ import annotations

from math import prod

from .. import fmt
from ..layers import Network


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
        marked = [_marked(r) for r in self.rows if r.layer.marks_output]
        last = self.tree[-1] if self.tree else None
        if last is None:
            return marked
        if not last.layer.marks_output:
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

