"""The calculator: pure Python, never torch. One rule per layer kind, in ``RULES``.

Each rule takes the layer and its input shape (spatial sizes then channels) and
returns an ``Out``: the output shape, the counts, the multiply-accumulates, the
values the backend needs (resolved padding and crops) and the sliding window
used for receptive fields. The human explanation of every formula is written
beside the formula (``ex``), so the two cannot drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import prod

from . import model as m
from .errors import SpecDesignError, paused_gc

AXIS_NAMES = {1: ("length",), 2: ("width", "height"), 3: ("depth", "width", "height")}
SIDES = {"length": ("start", "end"), "width": ("left", "right"), "height": ("top", "bottom"),
         "depth": ("front", "back")}


class RuleError(Exception):
    """A short message from a rule; ``analyse`` adds the layer and the line."""


@dataclass(slots=True)
class Out:
    shape: tuple
    weights: int = 0
    biases: int = 0
    non_trainable: int = 0
    macs: int = 0
    ops: int = 0                  # element-wise operations (bias, activation, pooling, ...)
    geometry: dict | None = None  # resolved values the backend follows
    window: tuple | None = None   # per axis (kernel, stride, pad_before) for receptive fields
    up: bool = False              # window is (kernel, stride, crop_before) of an upsampling
    note: str | None = None       # a caveat for the row, shown under the table


@dataclass(slots=True)
class Row:
    index: int
    path: str
    depth: int
    layer: object  # the model (m.Conv, ...)
    input: tuple
    output: tuple
    weights: int = 0
    biases: int = 0
    non_trainable: int = 0
    macs: int = 0
    ops: int = 0
    geometry: dict | None = None
    window: tuple | None = None
    rf: tuple | None = None  # per axis (size, jump, start); None: the whole input
    explain: list | None = None
    error: str | None = None
    note: str | None = None

    @property
    def flops(self) -> int:
        """2 x MACs plus the element-wise operations (see README, 'Compute')."""
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
    def params(self) -> int:
        return self.weights + self.biases + self.non_trainable

    @property
    def units(self) -> int:
        return prod(self.output)


@dataclass
class Summary:
    network: m.Network
    rows: list = field(default_factory=list)
    output: tuple = ()  # the network's output: the last top-level node's
    input: tuple = ()   # the input as the rules saw it: numbers, or formulas of open sizes

    def total(self, attr: str) -> int:
        return sum(getattr(r, attr) for r in self.rows)

    def _repr_html_(self) -> str:  # Jupyter shows the summary as a table
        from .render import html
        return html(self)


def fmt_shape(shape) -> str:
    return "x".join(f"({v})" if " " in str(v) else str(v) for v in shape)


def _names(rank: int) -> tuple:
    return AXIS_NAMES.get(rank, tuple(f"axis {i + 1}" for i in range(rank)))


def _need_map(x: tuple, rank: int, what: str):
    if len(x) - 1 != rank:
        if len(x) == 1:
            raise RuleError(f"{what} needs a {rank}-D feature map, received a flat vector of "
                            f"{x[0]:,} values (after flatten, a global pool or dense)")
        raise RuleError(f"{what} has a {rank}-D window but the input is {len(x) - 1}-D "
                        f"({fmt_shape(x)})")


# --- per-axis formulas, each with its explanation ---------------------------------------

def window_axis(n, k, s, d, pad, ceil, axis, ex):
    """Output size, (before, after) padding and the input rows a floor leaves unused,
    of a sliding window (conv, pooling)."""
    ke = d * (k - 1) + 1
    kt = f"{ke}" if d == 1 else f"{ke} (kernel {k}, dilation {d})"
    before, after = SIDES.get(axis, ("before", "after"))
    # Written so that ``n`` may also be a numpy array of sizes (``cnncalc sizes``). Stride 1
    # skips the divisions: the same numbers, without a dozen whole-array operations.
    if pad == "same":
        out = n if s == 1 else -(-n // s)
        total = ke - 1 if s == 1 else _relu((out - 1) * s + ke - n)
        b, a = total // 2, total - total // 2
        if ex is not None:
            ex.append(f"{axis}: same padding, stride {s}: ceil({n} / {s}) = {out}, "
                      f"pad {b} {before}, {a} {after}")
        return out, b, a, 0
    p = 0 if pad == "valid" else pad
    span = n + 2 * p - ke
    if isinstance(span, int) and span < 0:
        raise RuleError(f"the window {kt} is larger than the {axis} {n}"
                        f"{f' + 2 x {p} padding' if p else ''}; use 'same' padding or a smaller kernel")
    if ceil:
        out = -(-span // s) + 1
        if not _symbolic(out):  # (a formula leaves out PyTorch's last-window rule)
            out = out - ((out - 1) * s >= n + p)  # the last window starts inside the input
            out = out * (span >= 0)  # arrays: a window larger than the input gives no output
        if ex is not None:
            ex.append(f"{axis}: ceil(({n} + {2 * p} - {ke}) / {s}) + 1 = {out}")
        return out, p, p + _relu((out - 1) * s + ke - n - 2 * p), 0
    out = span + 1 if s == 1 else span // s + 1
    dropped = 0 if s == 1 else span % s
    if ex is not None:
        ex.append(f"{axis}: floor(({n} + {2 * p} - {ke}) / {s}) + 1 = {out}"
                  + (f" ({dropped} left unused at the {after})" if dropped else ""))
    return out, p, p, dropped


def _relu(v):
    """max(v, 0) for an int, a numpy array or a formula."""
    return v.relu() if _symbolic(v) else v * (v > 0)


def _symbolic(v) -> bool:
    """An open size as a formula (see ``symbolic.Sym``)."""
    return getattr(v, "symbolic", False)


def deconv_axis(n, k, s, d, pad, axis, ex):
    """Keras Conv*DTranspose: output size, (crop_before, crop_after) and output padding."""
    ke = d * (k - 1) + 1
    if pad == "same":
        out = n * s
        total = max(ke - s, 0)
        crop = (total // 2, total - total // 2)
        if ex is not None:
            ex.append(f"{axis}: same: {n} x {s} = {out}")
    else:
        out = (n - 1) * s + max(ke, s)
        crop = (0, 0)
        if ex is not None:
            ex.append(f"{axis}: ({n} - 1) x {s} + max({ke}, {s}) = {out}")
    return out, crop, max(s - ke, 0)


def _channels(cin, groups, filters):
    if cin % groups or filters % groups:
        raise RuleError(f"groups {groups} must divide the input channels ({cin}) and the filters "
                        f"({filters})")


def array_shape(nested) -> tuple:
    """Shape of a nested tuple of numbers; RuleError if it is ragged."""
    if not isinstance(nested, tuple):
        return ()
    inner = {array_shape(v) for v in nested}
    if len(inner) > 1:
        raise RuleError("kernel=: every row of the array needs the same length")
    return (len(nested), *(inner.pop() if inner else ()))


def _strip_ones(shape):
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _check_inline(values, expected):
    given = array_shape(values)
    if _strip_ones(given) != _strip_ones(expected):
        raise RuleError(f"kernel=: the array is {fmt_shape(given) or 'empty'}, expected "
                        f"{fmt_shape(expected)} (filters x channels x kernel; leading 1s may be "
                        "left out)")


def _bias_act_ops(layer, units):
    """One addition per output for the bias, one operation per output for the activation."""
    return units * (bool(layer.bias) + (layer.activation not in (None, "linear")))


# --- the rules --------------------------------------------------------------------------

def conv(layer: m.Conv, x, ex):
    rank = len(layer.kernel)
    _need_map(x, rank, "conv")
    cin, names = x[-1], _names(rank)
    _channels(cin, layer.groups, layer.filters)
    outs, pads, dropped = [], [], []
    for i in range(rank):
        o, b, a, d = window_axis(x[i], layer.kernel[i], layer.stride[i], layer.dilation[i],
                                 layer.padding if isinstance(layer.padding, str) else layer.padding[i],
                                 False, names[i], ex)
        outs.append(o)
        pads.append((b, a))
        dropped.append(d)
    per_filter = prod(layer.kernel) * (cin // layer.groups)
    weights = per_filter * layer.filters
    if layer.weights is not None:
        _check_inline(layer.weights, (layer.filters, cin // layer.groups, *layer.kernel))
    biases = layer.filters if layer.bias else 0
    if ex is not None:
        g = f" / {layer.groups} groups" if layer.groups > 1 else ""
        ex.append(f"weights: {' x '.join(map(str, layer.kernel))} x {cin}{g} x {layer.filters}"
                  f" = {weights:,}")
        ex.append(f"biases: {biases:,}" + (" (one per filter)" if biases else " (nobias)"))
    shape = (*outs, layer.filters)
    keff = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel, layer.dilation))
    macs = prod(shape) * per_filter
    if ex is not None:
        ex.append(f"MACs: {fmt_shape(shape)} outputs x {per_filter:,} = {macs:,}")
    return Out(shape, weights, biases, 0, macs, _bias_act_ops(layer, prod(shape)),
               {"pads": tuple(pads), "dropped": tuple(dropped)},
               tuple(zip(keff, layer.stride, (p[0] for p in pads))))


def deconv(layer: m.Deconv, x, ex):
    rank = len(layer.kernel)
    _need_map(x, rank, "deconv")
    names, cin = _names(rank), x[-1]
    outs, crops, extra = [], [], []
    for i in range(rank):
        o, c, e = deconv_axis(x[i], layer.kernel[i], layer.stride[i], layer.dilation[i],
                              layer.padding, names[i], ex)
        outs.append(o)
        crops.append(c)
        extra.append(e)
    weights = prod(layer.kernel) * cin * layer.filters
    biases = layer.filters if layer.bias else 0
    if ex is not None:
        ex.append(f"weights: {' x '.join(map(str, layer.kernel))} x {cin} x {layer.filters}"
                  f" = {weights:,}")
        ex.append(f"biases: {biases:,}")
    # every input value is multiplied by the whole kernel (scatter), whatever is cropped
    macs = prod(x[:-1]) * weights
    if ex is not None:
        ex.append(f"MACs: {fmt_shape(x[:-1])} inputs x {weights:,} = {macs:,} (each input "
                  "scatters the whole kernel)")
    keff = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel, layer.dilation))
    shape = (*outs, layer.filters)
    return Out(shape, weights, biases, 0, macs, _bias_act_ops(layer, prod(shape)),
               {"crops": tuple(crops), "output_padding": tuple(extra)},
               tuple(zip(keff, layer.stride, (c[0] for c in crops))), up=True)


def pool(layer, x, ex):
    rank = len(layer.pool)
    _need_map(x, rank, layer.kind)
    names = _names(rank)
    outs, pads, dropped = [], [], []
    for i in range(rank):
        p = layer.padding if isinstance(layer.padding, str) else layer.padding[i]
        if not isinstance(p, str) and p > layer.pool[i] // 2:
            raise RuleError(f"pad {p} is more than half the pool size {layer.pool[i]}: a window "
                            "could see only padding")
        o, b, a, d = window_axis(x[i], layer.pool[i], layer.stride[i], 1, p, layer.ceil, names[i], ex)
        outs.append(o)
        pads.append((b, a))
        dropped.append(d)
    shape = (*outs, x[-1])
    # PyTorch's ceil mode drops a last window that would start in the padding. A formula
    # cannot say when; it can only fire with padding or a stride beyond the window.
    can_drop = any(pads[i][0] or layer.pool[i] < layer.stride[i] for i in range(rank))
    note = ("ceil mode: PyTorch drops a last window that would start in the padding, which "
            "this formula leaves out for some sizes; 'cnncalc sizes' applies it") \
        if layer.ceil and layer.padding != "same" and can_drop and any(map(_symbolic, outs)) \
        else None
    return Out(shape, ops=prod(shape) * prod(layer.pool),
               geometry={"pads": tuple(pads), "dropped": tuple(dropped)},
               window=tuple(zip(layer.pool, layer.stride, (p[0] for p in pads))), note=note)


def global_pool(layer, x, ex):
    if len(x) < 2:
        raise RuleError(f"{layer.kind} needs a feature map, received a flat vector of {x[0]:,} values")
    if ex is not None:
        ex.append(f"one value per channel: {fmt_shape(x)} -> {x[-1]}")
    return Out((x[-1],), ops=prod(x), window=tuple((n, n, 0) for n in x[:-1]))


def flatten(layer, x, ex):
    n = prod(x)
    if ex is not None:
        ex.append(f"{' x '.join(map(str, x))} = {n:,}")
    return Out((n,))


def dense(layer: m.Dense, x, ex):
    cin = x[-1]
    weights = cin * layer.units
    biases = layer.units if layer.bias else 0
    if ex is not None:
        ex.append(f"weights: {cin:,} x {layer.units:,} = {weights:,}")
        ex.append(f"biases: {biases:,}")
        if len(x) > 1:
            ex.append(f"applied to the last axis of {fmt_shape(x)}, as Keras does")
    macs = prod(x[:-1]) * weights
    if ex is not None:
        ex.append(f"MACs: {macs:,}")
    out = (*x[:-1], layer.units)
    return Out(out, weights, biases, 0, macs, _bias_act_ops(layer, prod(out)),
               window=None if len(x) > 1 else "all")


def batchnorm(layer, x, ex):
    c = x[-1]
    if ex is not None:
        ex.append(f"trainable: scale and offset, 2 x {c} = {2 * c:,}; non-trainable: moving mean"
                  f" and variance, 2 x {c} = {2 * c:,}")
    return Out(x, c, c, 2 * c, ops=2 * prod(x))  # inference: one scale, one shift


def zeropad(layer: m.ZeroPad, x, ex):
    rank = len(layer.padding)
    _need_map(x, rank, "zeropad")
    outs = tuple(n + 2 * p for n, p in zip(x, layer.padding))
    if ex is not None:
        for name, n, p, o in zip(_names(rank), x, layer.padding, outs):
            ex.append(f"{name}: {n} + 2 x {p} = {o}")
    return Out((*outs, x[-1]), geometry={"pads": tuple((p, p) for p in layer.padding)},
               window=tuple((1, 1, p) for p in layer.padding))


def upsample(layer: m.Upsample, x, ex):
    rank = len(layer.factor)
    _need_map(x, rank, "upsample")
    outs = tuple(n * f for n, f in zip(x, layer.factor))
    if ex is not None:
        for name, n, f, o in zip(_names(rank), x, layer.factor, outs):
            ex.append(f"{name}: {n} x {f} = {o}")
    return Out((*outs, x[-1]), window=tuple((1, f, 0) for f in layer.factor), up=True)


def activation(layer, x, ex):
    return Out(x, ops=prod(x))


def same_shape(layer, x, ex):
    return Out(x)


def add_ref(layer, x, ex, saved):
    y = saved[layer.ref]
    if y != x:
        raise RuleError(f"cannot add {layer.ref!r} ({fmt_shape(y)}) to the current tensor "
                        f"({fmt_shape(x)}): shapes must match exactly")
    return Out(x, ops=prod(x))


def concat_ref(layer, x, ex, saved):
    y = saved[layer.ref]
    if len(y) != len(x):
        raise RuleError(f"cannot concatenate {layer.ref!r} ({fmt_shape(y)}) with the current "
                        f"tensor ({fmt_shape(x)}): ranks differ")
    offsets = (0,) * (len(x) - 1)
    if layer.crop:
        if not any(map(_symbolic, (*y, *x))) and any(a < b for a, b in zip(y[:-1], x[:-1])):
            raise RuleError(f"cannot crop {layer.ref!r} ({fmt_shape(y)}) to the current size "
                            f"({fmt_shape(x[:-1])}): it is smaller")
        offsets = tuple((a - b) // 2 for a, b in zip(y[:-1], x[:-1]))
        if ex is not None:
            ex.append(f"centre crop of {layer.ref}: {fmt_shape(y[:-1])} -> {fmt_shape(x[:-1])}"
                      f", offsets {offsets}")
    elif y[:-1] != x[:-1]:
        raise RuleError(f"cannot concatenate {layer.ref!r} ({fmt_shape(y)}) with the current "
                        f"tensor ({fmt_shape(x)}): spatial sizes differ (add 'crop' to centre-crop)")
    out = (*x[:-1], x[-1] + y[-1])
    if ex is not None:
        ex.append(f"channels: {x[-1]} + {y[-1]} = {out[-1]}")
    return Out(out, geometry={"offsets": offsets})


RULES = {
    m.Conv: conv,
    m.Deconv: deconv,
    m.MaxPool: pool,
    m.AvgPool: pool,
    m.GlobalAvgPool: global_pool,
    m.GlobalMaxPool: global_pool,
    m.Flatten: flatten,
    m.Dense: dense,
    m.Dropout: same_shape,
    m.BatchNorm: batchnorm,
    m.ZeroPad: zeropad,
    m.Upsample: upsample,
    m.Act: activation,
}
REF_RULES = {m.AddRef: add_ref, m.ConcatRef: concat_ref}


# --- receptive fields (Araujo, Norris and Sim, Distill 2019) --------------------------

def receptive(rf, out: Out):
    """Per axis (size, jump, start) after a layer, from the one before. ``None`` means
    every output sees the whole input (after a dense layer on a vector)."""
    if out.window == "all" or rf is None:
        return None
    if out.window is None:
        return rf
    new = []
    for (r, j, start), (k, s, p) in zip(rf, out.window):
        if out.up and (start is None or _symbolic(p)):
            new.append((r + (-(-k // s) - 1) * j, Fraction(j) / s, None))
        elif out.up:  # an output sees ceil(k / s) inputs; the grid gets s times finer
            new.append((r + (-(-k // s) - 1) * j, Fraction(j) / s, start + Fraction(2 * p - k + 1, 2 * s) * j))
        elif _symbolic(p) or start is None:  # the start depends on an open size
            new.append((r + (k - 1) * j, j * s, None))
        else:
            half = (k - 1 - 2 * p) * j  # twice the shift of the centre; stays an int when it can
            new.append((r + (k - 1) * j, j * s, start + (half // 2 if half % 2 == 0 else Fraction(half, 2))))
    return tuple(new)


def merge_rf(rfs):
    """Branches joined: the largest field over the paths; False if the centres differ."""
    if any(r is None for r in rfs):
        return None, True
    merged = tuple(max(axis, key=lambda a: a[0]) for axis in zip(*rfs))
    aligned = all(len({r[2] for r in axis}) == 1 for axis in zip(*rfs))
    return merged, aligned


# --- walking the network -----------------------------------------------------------------

class _Walk:
    def __init__(self, explain: bool):
        self.rows: list[Row] = []
        self.saved: dict = {}
        self.explain = explain

    def seq(self, nodes, x, rf, depth, prefix):
        for i, node in enumerate(nodes, 1):
            path = f"{prefix}{i}"
            x, rf = self.block(node, x, rf, depth, path) if isinstance(node, (m.Add, m.Concat)) \
                else self.layer(node, x, rf, depth, path)
            self.saved[node.name] = (x, rf)
        return x, rf

    def fail(self, row: Row, message: str):
        row.error = message
        if row not in self.rows:
            self.rows.append(row)
        layer = row.layer
        raise SpecDesignError(message, index=row.index, layer=layer.name, line=layer.line,
                              column=layer.column, rows=self.rows)

    def layer(self, layer, x, rf, depth, path):
        row = Row(len(self.rows) + 1, path, depth, layer, x, x,
                  explain=[] if self.explain else None)
        try:
            if type(layer) in REF_RULES:
                if layer.ref not in self.saved:
                    raise RuleError(f"{layer.ref!r} is not the name of an earlier layer")
                y, yrf = self.saved[layer.ref]
                out = REF_RULES[type(layer)](layer, x, row.explain, {layer.ref: y})
                rf, aligned = merge_rf([rf, yrf])
                if not aligned:
                    row.note = f"receptive-field centres of {layer.ref!r} and the current tensor differ"
            else:
                out = RULES[type(layer)](layer, x, row.explain)
                rf = receptive(rf, out)
                row.note = out.note
        except RuleError as e:
            self.fail(row, str(e))
        row.output, row.weights, row.biases = out.shape, out.weights, out.biases
        row.non_trainable, row.macs, row.ops = out.non_trainable, out.macs, out.ops
        row.geometry, row.window, row.rf = out.geometry, out.window, rf
        self.rows.append(row)
        return out.shape, rf

    def block(self, node, x, rf, depth, path):
        row = Row(len(self.rows) + 1, path, depth, node, x, x,
                  explain=[] if self.explain else None)
        self.rows.append(row)
        results = [self.seq(b, x, rf, depth + 1, f"{path}.{node.kind}.{j}.")
                   for j, b in enumerate(node.branches, 1)]
        outs = [o for o, _ in results]
        if node.kind == "add":
            for j, y in enumerate(outs[1:], 2):
                if y != outs[0]:
                    self.fail(row, f"add: branch 1 gives {fmt_shape(outs[0])} but branch {j}"
                                   f" gives {fmt_shape(y)}; added tensors must have the same shape")
            row.output = outs[0]
            row.ops = prod(row.output) * (len(outs) - 1)
        else:
            for j, y in enumerate(outs[1:], 2):
                if len(y) != len(outs[0]) or y[:-1] != outs[0][:-1]:
                    self.fail(row, f"concat: branch 1 gives {fmt_shape(outs[0])} but branch "
                                   f"{j} gives {fmt_shape(y)}; concatenated tensors must "
                                   "have the same spatial size")
            row.output = (*outs[0][:-1], sum(y[-1] for y in outs))
            if row.explain is not None:
                ex = " + ".join(str(y[-1]) for y in outs)
                row.explain.append(f"channels: {ex} = {row.output[-1]}")
        row.rf, aligned = merge_rf([r for _, r in results])
        if not aligned:
            row.note = "receptive-field centres of the branches differ"
        return row.output, row.rf


def analyse(network: m.Network, explain: bool = False, open_sizes: bool = False) -> Summary:
    """Every layer's output shape and counts. Raises SpecDesignError at the first layer that
    cannot be built; the error carries the rows computed so far. With ``open_sizes``, open
    input sizes (``input HxWx3``) run through the rules as formulas."""
    shape = network.input.shape
    if any(isinstance(v, str) for v in shape):
        if not open_sizes:
            raise SpecDesignError("the input has open sizes (" + fmt_shape(shape) + "); this "
                                  "needs numbers: give them with --input (or see 'cnncalc sizes')",
                                  line=network.input.line, column=network.input.column)
        from .symbolic import Sym
        letters = {"length": "L", "width": "W", "height": "H", "depth": "D"}
        names = [letters.get(n, n) for n in _names(len(shape) - 1)]
        shape = tuple(Sym(names[i] if v == "?" else v) if isinstance(v, str) else v
                      for i, v in enumerate(shape))
    walk = _Walk(explain)
    rf = tuple((1, 1, 0) for _ in shape[:-1])
    with paused_gc():
        out, _ = walk.seq(network.layers, shape, rf, 0, "")
    return Summary(network, walk.rows, out, shape)
