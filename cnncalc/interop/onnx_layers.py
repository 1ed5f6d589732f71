"""ONNX operators that are layers with weights or windows: Conv, ConvTranspose, Gemm and
MatMul, the norms, pools, activations. What a node holds is read framework-neutral
(``Read``) for the kind that declares the operator in its ``onnx_reads`` to write; this
module keeps the weights (--weights-out) and folds a Pad before a window."""

from __future__ import annotations

from ..layers.base import Foreign
from ..layers.reading import Read, kind_for
from .layout import Layout
from .onnx_nodes import _attrs, _inside
from .rewrite import fold_pad

# an ONNX attribute → the neutral field it is; floats are float32 in the file: 6 digits
_SAME = {"group": "groups", "epsilon": "eps", "count_include_pad": "countpad",
         "ceil_mode": "ceil", "approximate": "approximate", "alpha": "alpha", "beta": "beta",
         "keepdims": "keep"}


def _read(imp, node, x, kernel=None, **fields) -> Read:
    a = _attrs(node)
    lay = imp.layouts[x]
    sizes, channels = lay.spatial(imp.shape(x))
    f = {"framework": "onnx", "sizes": sizes, "channels": channels, "groups": 1,
         "eps": 1e-5,  # the norms' default epsilon in ONNX
         "on_channels": a.get("axis", -1) % (lay.rank + 2) == lay.channel_dim()}
    for k, v in a.items():
        if k in _SAME:
            v = v.decode() if isinstance(v, bytes) else v
            f[_SAME[k]] = float(f"{v:.6g}") if isinstance(v, float) else v
    kernel = kernel if kernel is not None else a.get("kernel_shape")
    if kernel is not None:
        rank = len(kernel)
        f["kernel"] = lay.spec(tuple(kernel))
        f["stride"] = lay.spec(tuple(a.get("strides", (1,) * rank)))
        f["dilation"] = lay.spec(tuple(a.get("dilations", (1,) * rank)))
        pads = a.get("pads", (0,) * (2 * rank))
        f["pads"] = tuple(lay.spec(list(zip(pads[:rank], pads[rank:]))))
        f["extra"] = lay.spec(tuple(a.get("output_padding", (0,) * rank)))
    f.update(fields)
    return Read(node.op_type, **f)


def _written(imp, node, r, x, fold=False):
    """The node's statement, written by the kind that reads its operator (a zero or -inf
    Pad before a window, in its module, folded into its padding where the kind can say
    it); the op, or None (refused)."""
    kind = kind_for("onnx", node.op_type)
    auto = _attrs(node).get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "SAME_LOWER":
        imp.fail(node, "auto_pad SAME_LOWER (the extra pixel before: Keras puts it after)")
        return None
    if auto == "SAME_UPPER":
        r = Read(r.op, **{**r.fields(), "pads": (), "padding": "same"})
    pad_op = _pad_before(imp, node, x, kind) if fold and not any(
        b or a for b, a in r.get("pads", ())) and auto != "SAME_UPPER" else None
    folded = fold_pad(kind, r, pad_op)
    if folded is not None:
        imp.ops.remove(pad_op)
        del imp.by_id[pad_op.id]
        op = imp.add(node, folded[0], [pad_op.meta["of"]])
        op.meta.update(folded[1].meta, padded=True, read=folded[1])
        imp.layouts[node.output[0]] = imp.layouts[x]
        return op
    try:
        text = kind.from_read(r)
    except Foreign as e:
        imp.fail(node, str(e))
        return None
    if text is None:  # it passes its input on (a flatten of a vector)
        imp.alias(node, x)
        return None
    op = imp.add(node, text, [x])
    op.meta.update(r.meta, read=r)
    imp.layouts[node.output[0]] = imp.layouts[x]
    return op


def _pad_before(imp, node, x, kind):
    """A Pad before the window, with the fill the kind takes as its padding, read by it
    alone in its module; None if none."""
    pad_op = imp.by_id.get(imp.ids[x])
    pad_op = pad_op if pad_op is not None and "pads" in pad_op.meta else None
    if pad_op is None or len(imp.users.get(x, [])) != 1 or not _inside(node, pad_op):
        return None
    return pad_op


def _weighted(imp, node, op, weight, bias, lay=None):
    """A layer's weights kept for --weights-out, and a weight read before shared."""
    if op is None:
        return
    imp.share(op, node.input[1])
    imp.weights[op.id] = [("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    if lay is not None:
        op.meta["picture"] = lay.picture  # the kernel's axes run as the tensor's do


def _bias(imp, node, i=2):
    return imp.const(node.input[i]) if len(node.input) > i and node.input[i] else None


def _conv(imp, node):
    x = node.input[0]
    weight = imp.weight(node.input[1])
    if weight is None:
        imp.fail(node, f"{node.op_type} whose weights are not constants")
        return
    groups = _attrs(node).get("group", 1)
    transposed = node.op_type == "ConvTranspose"
    filters = weight.shape[1] * groups if transposed else weight.shape[0]
    has_bias = len(node.input) > 2 and bool(node.input[2])
    r = _read(imp, node, x, tuple(weight.shape[2:]), filters=filters, bias=has_bias)
    op = _written(imp, node, r, x, fold=not transposed)
    _weighted(imp, node, op, weight, _bias(imp, node), imp.layouts[x])


def _gemm(imp, node):
    x = node.input[0]
    a = _attrs(node)
    w = imp.weight(node.input[1])
    if w is None or a.get("transA", 0):
        imp.fail(node, "Gemm whose weights are not constants, or transposed input")
        return
    if not a.get("transB", 0):
        w = w.T
    bias = _bias(imp, node)
    op = _written(imp, node, _read(imp, node, x, units=w.shape[0], bias=bias is not None,
                                   on_channels=True), x)
    _weighted(imp, node, op, w, bias)


def _matmul(imp, node):
    x, wname = node.input[:2]
    w = imp.weight(wname)
    lay = imp.layouts[x]
    if w is None or w.ndim != 2:
        imp.fail(node, "MatMul that is not a dense layer on the channels")
        return
    users = imp.users.get(node.output[0], [])
    bias = None
    if len(users) == 1 and users[0].op_type == "Add":  # MatMul then Add: one dense layer
        other = [i for i in users[0].input if i != node.output[0]][0]
        bias = imp.const(other)
    op = _written(imp, node, _read(imp, node, x, units=w.shape[1], bias=bias is not None,
                                   on_channels=not (lay.rank and lay.first)), x)
    _weighted(imp, node, op, w.T, bias)
    if op is not None and bias is not None:
        imp.bias_of[users[0].name] = node.output[0]


def _batchnorm(imp, node):
    x = node.input[0]
    op = _written(imp, node, _read(imp, node, x, affine=True, stats=True), x)
    if op is not None:
        imp.weights[op.id] = [(r, imp.weight(n)) for r, n in zip(
            ("weight", "bias", "running_mean", "running_var"), node.input[1:5])]


def _instancenorm(imp, node):
    """InstanceNormalization: its scale and bias are inputs always; the file's weights
    (initializers) are learnt ('affine'), Constant nodes (what PyTorch writes for an
    InstanceNorm without affine) are not."""
    x = node.input[0]
    scale, bias = (imp.weight(n) for n in node.input[1:3])
    if scale is None or bias is None:
        imp.fail(node, "InstanceNormalization whose scale and bias are not constants")
        return
    affine = all(n in imp.consts.tensors for n in node.input[1:3])
    op = _written(imp, node, _read(imp, node, x, affine=affine), x)
    if op is not None and affine:
        imp.weights[op.id] = [("weight", scale), ("bias", bias)]


def _groupnorm(imp, node):
    """GroupNormalization with a scale and an offset per channel (opset 21's, and what
    ``onnx_fuse`` makes of PyTorch's export); opset 18's per group is refused."""
    x = node.input[0]
    scale, bias = (imp.const(n) for n in node.input[1:3])
    if not _per_channel(imp, x, scale, bias):
        imp.fail(node, "GroupNormalization whose scale and offset are not constants per "
                       "channel (opset 18 has them per group)")
        return
    op = _written(imp, node, _read(imp, node, x, affine=True,
                                   groups=_attrs(node)["num_groups"]), x)
    if op is not None:
        imp.weights[op.id] = [("weight", scale.reshape(-1)), ("bias", bias.reshape(-1))]


def _per_channel(imp, x, *weights) -> bool:
    """Constants that broadcast along ``x``'s channels: C values on its channel axis."""
    lay = imp.layouts[x]
    c = lay.spatial(imp.shape(x))[1]
    k = lay.rank + 1 if lay.first else 1  # the channel axis, counted from the last
    return all(w is not None and w.size == c and w.ndim >= k and w.shape[-k] == c
               for w in weights)


def _grn(imp, node):
    """Global response normalisation (``onnx_fuse._fuse_grn``): its norm over the map's
    axes and its mean over the channels, for the tensor's layout; the scale and offset per
    channel."""
    x = node.input[0]
    lay = imp.layouts[x]
    n = lay.rank + 2
    spatial = set(range(2, n)) if lay.first else set(range(1, n - 1))
    a = _attrs(node)
    scale, bias = (imp.const(i) for i in node.input[1:3])
    if {d % n for d in a["spatial"]} != spatial or [d % n for d in a["channel"]] != \
            [lay.channel_dim()] or not _per_channel(imp, x, scale, bias):
        imp.fail(node, "ReduceL2 and the arithmetic of a global response normalisation on "
                       "other axes, or with weights that are not constants per channel")
        return
    op = _written(imp, node, _read(imp, node, x), x)
    if op is not None:
        imp.weights[op.id] = [("weight", scale.reshape(-1)), ("bias", bias.reshape(-1))]


def _layernorm(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    on = _attrs(node).get("axis", -1) == -1 and not (lay.rank and lay.first)
    op = _written(imp, node, _read(imp, node, x, affine=True, on_channels=on,
                                   normalized=f"axis {_attrs(node).get('axis', -1)}"), x)
    if op is not None:
        imp.weights[op.id] = [("weight", imp.const(node.input[1])),
                              ("bias", imp.const(node.input[2]))]


def _prelu(imp, node):
    x = node.input[0]
    slope = imp.const(node.input[1])
    op = _written(imp, node, _read(imp, node, x, count=None if slope is None else slope.size), x)
    if op is not None:
        imp.weights[op.id] = [("weight", slope.reshape(-1))]


def _activation(imp, node):
    """An activation, with the arguments the kind checks: Clip's bounds (inputs from opset
    11, attributes before), LeakyRelu's slope, HardSigmoid's line."""
    x = node.input[0]
    a = _attrs(node)
    fields = dict(slope=float(f"{a.get('alpha', 0.01):.6g}"), alpha=a.get("alpha", 0.2),
                  beta=a.get("beta", 0.5), axis=a.get("axis", -1))
    if node.op_type == "Clip":
        lo, hi = (_bias(imp, node, i) for i in (1, 2))
        lo, hi = (a.get("min") if lo is None else lo), (a.get("max") if hi is None else hi)
        fields.update(low=None if lo is None else float(lo), high=None if hi is None else float(hi))
    _written(imp, node, _read(imp, node, x, **fields), x)


def _pool(imp, node):
    x = node.input[0]
    _written(imp, node, _read(imp, node, x), x, fold=True)


def _global(imp, node):  # ONNX keeps the 1x1: a flatten follows
    x = node.input[0]
    _written(imp, node, _read(imp, node, x), x)


def _reduce(imp, node):
    """ReduceMean or ReduceMax over the spatial axes: a global pool (axes as an attribute
    before opset 18, an input from 18)."""
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = imp.const(node.input[1]).tolist()
    axes = sorted(v % (lay.rank + 2) for v in (axes or ()))
    spatial = list(range(2, 2 + lay.rank)) if lay.first else list(range(1, 1 + lay.rank))
    keep = a.get("keepdims", 1)
    op = _written(imp, node, _read(imp, node, x, on_spatial=axes == spatial, reduced=axes,
                                   keep=bool(keep)), x)
    if op is not None and not keep:
        imp.layouts[node.output[0]] = Layout(True, False, 0)
