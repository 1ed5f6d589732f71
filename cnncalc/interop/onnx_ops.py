"""ONNX operators on computed tensors: merges, a scalar's scale and offset, concat and
split, flatten, reshape and transpose (a channel shuffle), pads, slices (crops), resizes;
and the table from each operator type to its handler."""

from __future__ import annotations

from ..layers.activations import Act
from ..layers.dense import Flatten
from ..layers.merge import Add, Concat, Multiply
from ..layers.pooling import AvgPool
from ..layers.reading import kind_for, registry
from ..layers.regularise import LayerScale
from ..layers.reshaping import PixelShuffle, Reshape
from ..layers.scaling import Rescale
from .graph import SPLIT, TAKE, Op
from .layout import Layout
from .onnx_cuts import _pad, _resize, _slice
from .rewrite import PERMUTE, VIEW, primitive
from .onnx_layers import (
    _activation,
    _batchnorm,
    _conv,
    _gemm,
    _global,
    _grn,
    _groupnorm,
    _instancenorm,
    _layernorm,
    _matmul,
    _pool,
    _prelu,
    _read,
    _reduce,
    _written,
)
from .onnx_nodes import _attrs


def _merge(imp, node):
    """Add, Mul, Sub of two tensors: the kind that reads the operator; of a tensor and one
    number, a rescale; times a constant per
    channel, a layer scale."""
    if node.name in imp.bias_of:  # a dense layer's bias, already in it
        imp.alias(node, imp.bias_of[node.name])
        return
    kind = kind_for("onnx", node.op_type)
    tensors = [i for i in node.input if i in imp.ids]
    if len(tensors) == 2:
        imp.add(node, kind.write(), tensors)
        lays = [imp.layouts[t] for t in tensors]
        imp.layouts[node.output[0]] = max(lays, key=lambda lay: lay.rank)
        return
    x = tensors[0]
    c = [i for i in node.input if i != x][0]
    value = imp.const(c)
    channels = imp.layouts[x].spatial(imp.shape(x))[1]
    if value is not None and value.size == 1 and kind in (Multiply, Add) and \
            (channels != 1 or kind is Add):
        _scalar(imp, node, x, float(value.reshape(-1)[0]), kind is Multiply)
        return
    if kind is Multiply and value is not None and value.size == channels:
        op = imp.add(node, LayerScale.write(), [x])
        imp.weights[op.id] = [("gamma", value.reshape(-1))]
        imp.layouts[node.output[0]] = imp.layouts[x]
        return
    imp.fail(node, f"{node.op_type} with a constant")


def _scalar(imp, node, x, value, multiplies):
    """x times a number, or plus one: a rescale (Keras' Rescaling, a constant gain); x * a
    then + b is one rescale."""
    import numpy as np
    value = float(str(np.float32(value)))  # the file's float32, as its shortest decimal
    if value == (1.0 if multiplies else 0.0):  # x * 1, x + 0: x
        imp.alias(node, x)
        return
    scale, offset = (value, 0.0) if multiplies else (1.0, value)
    if scale <= 0:
        imp.fail(node, f"Mul by {scale:g} (rescale takes a positive scale)")
        return
    op = imp.add(node, Rescale.write(scale=scale, offset=offset), [x])
    op.meta.update(scale=scale, offset=offset)  # x * a + b: one (rewrite)
    imp.layouts[node.output[0]] = imp.layouts[x]


def _concat(imp, node):
    tensors = [i for i in node.input if i in imp.ids]
    lay = imp.layouts[tensors[0]]
    axis = _attrs(node)["axis"] % (lay.rank + 2)
    if axis != lay.channel_dim():
        imp.fail(node, f"Concat along axis {axis}, not the channels")
        return
    if len(tensors) == 1:  # torch.cat([x]): DenseNet's first layer
        imp.alias(node, tensors[0])
        return
    imp.add(node, Concat.write(), tensors)  # a centre-cropped second: folded (rewrite)
    imp.layouts[node.output[0]] = lay


def _split(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    axis = a.get("axis", 0) % (lay.rank + 2)
    if axis != lay.channel_dim():
        imp.fail(node, f"Split along axis {axis}, not the channels")
        return
    sizes = a.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = imp.const(node.input[1]).tolist()
    if sizes is None:
        c = lay.spatial(imp.shape(x))[1]
        sizes = [c // len(node.output)] * len(node.output)
    op = Op(node.output[0] + ":split", SPLIT, [imp.ids[x]], sizes=list(sizes),
            source=f"node {node.name}")
    imp.ops.append(op)
    for i, out in enumerate(node.output):
        take = Op(out, TAKE, [op.id], index=i, source=f"node {node.name}")
        imp.ops.append(take)
        imp.ids[out] = out
        imp.layouts[out] = lay


def _flatten(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    op = _written(imp, node, _read(imp, node, x, dims=(_attrs(node).get("axis", 1), -1)), x)
    if op is None:
        return
    if lay.first:  # (C, H, W) order: a dense layer after it reads its weights reordered
        op.meta["channels_first"] = tuple(imp.shape(x)[1:])
    imp.layouts[node.output[0]] = Layout(True, False, 0)


def _reshape(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    before, after = imp.shape(x), imp.shape(node.output[0])
    if after is None:
        target = imp.const(node.input[1])
        after = tuple(int(v) for v in target) if target is not None else None
    if after is None or before is None:
        imp.fail(node, "Reshape of unknown shape")
        return
    users = imp.users.get(node.output[0], [])
    opens = lay.first and lay.rank > 0 and len(after) > len(before) and \
        len(users) == 1 and users[0].op_type == "Transpose" and _primitive(imp, x) is None
    if opens or _primitive(imp, x) is not None:  # a view a Transpose reads, or of one
        imp.add(node, "", [x], meta=primitive(  # rewrite.fold_views makes them a kind
            VIEW, f"Reshape of a channels-first tensor {before} to {after}" +
                  ("" if opens else " after a Transpose"),
            before=tuple(before), after=tuple(after), opens=opens, picture=lay.picture))
        imp.layouts[node.output[0]] = lay
        return
    if len(after) == 2 and len(before) > 2:
        imp.add(node, Flatten.write(), [x])
        imp.layouts[node.output[0]] = Layout(True, False, 0)
        return
    if len(after) < 2:
        imp.fail(node, f"Reshape of {before} to {after}, without a batch axis")
        return
    if not lay.first or lay.rank == 0:
        target = Layout(False, True, len(after) - 2)
        spatial, c = target.spatial(after)
        imp.add(node, Reshape.write(shape=(*spatial, c)), [x])
        imp.layouts[node.output[0]] = target
        return
    imp.fail(node, f"Reshape of a channels-first tensor {before} to {after}")


def _primitive(imp, x):
    """The primitive that makes tensor ``x``, or None."""
    op = imp.by_id.get(imp.ids.get(x))
    return op.meta.get("primitive") if op is not None else None


def _transpose(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    if _primitive(imp, x) == VIEW:  # the axes of a view: for the Reshape after it
        perm = tuple(_attrs(node)["perm"])
        imp.add(node, "", [x], meta=primitive(PERMUTE, f"Transpose {perm} of a Reshape",
                                              perm=perm))
        imp.layouts[node.output[0]] = lay
        return
    from .layout import permuted
    new = permuted(lay, tuple(_attrs(node)["perm"]))
    if new is None:
        imp.fail(node, f"Transpose {tuple(_attrs(node)['perm'])}")
        return
    imp.alias(node, x, new)


def _div(imp, node):
    x = node.input[0]
    op = imp.by_id.get(imp.ids.get(x))
    if op is not None and op.kind == AvgPool.keyword and op.meta.get("padded") and \
            node.input[1] in imp.consts:  # cnncalc's average over real pixels only
        imp.alias(node, x)
        return
    value = imp.const(node.input[1])
    if x in imp.ids and value is not None and value.size == 1 and float(value.reshape(-1)[0]):
        _scalar(imp, node, x, 1.0 / float(value.reshape(-1)[0]), True)  # x / 6: a rescale
        return
    imp.fail(node, "Div")


def _shape(imp, node):
    """Shape of a tensor that flows: its sizes as a constant, an open batch as 1 (what
    reads it, a Resize to a size, takes the spatial sizes)."""
    shape = imp.shapes.get(node.input[0])
    if shape is None or any(n is None for n in shape[1:]):
        imp.fail(node, "Shape of a tensor whose sizes are not known")
        return
    import numpy as np
    imp.consts[node.output[0]] = np.array([1 if n is None else n for n in shape], np.int64)


def _depth_to_space(imp, node):
    a = _attrs(node)
    mode = a.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    lay = imp.layouts[node.input[0]]
    if mode != "CRD" or not lay.picture:
        imp.fail(node, f"DepthToSpace in {mode} mode (cnncalc's pixelshuffle is PyTorch's, CRD)")
        return
    imp.add(node, PixelShuffle.write(factor=a["blocksize"]), [node.input[0]])
    imp.layouts[node.output[0]] = lay


def _identity(imp, node):
    imp.alias(node, node.input[0])


def _unsqueeze(imp, node):
    """A flat gate given trailing axes of 1 to be broadcast over a map."""
    x = node.input[0]
    lay = imp.layouts[x]
    axes = _attrs(node).get("axes")
    if axes is None and len(node.input) > 1:
        axes = imp.const(node.input[1]).tolist()
    trailing = list(range(2 + lay.rank, 2 + lay.rank + len(axes)))
    if not (lay.first or lay.rank == 0) or sorted(a % (2 + lay.rank + len(axes)) for a in axes) \
            != trailing:
        imp.fail(node, f"Unsqueeze at {axes}")
        return
    imp.alias(node, x, Layout(True, True, lay.rank + len(axes)))


HANDLERS = {
    "Conv": _conv, "ConvTranspose": _conv, "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batchnorm, "InstanceNormalization": _instancenorm,
    "GroupNormalization": _groupnorm, "GlobalResponseNormalization": _grn,
    "PRelu": _prelu, "LayerNormalization": _layernorm,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global,
    "GlobalMaxPool": _global, "ReduceMean": _reduce, "ReduceMax": _reduce,
    "Add": _merge, "Sum": _merge, "Mul": _merge, "Sub": _merge, "Concat": _concat,
    "Split": _split, "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Pad": _pad, "Div": _div, "Slice": _slice, "Resize": _resize, "Upsample": _resize,
    "Shape": _shape, "DepthToSpace": _depth_to_space, "Dropout": _identity,
    "Identity": _identity, "Unsqueeze": _unsqueeze,
}
# the activations: every operator the activation kinds read that has no handler above
HANDLERS.update({op: _activation for op, kind in registry("onnx").items()
                 if kind is Act and op not in HANDLERS})
