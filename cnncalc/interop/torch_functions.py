"""Operators on computed tensors: merges (add, multiply, concat), a scalar's scale and
offset, activations as functions, global and functional pools."""

from __future__ import annotations

from ..layers.merge import Add, Concat, Subtract
from ..layers.pooling import AvgPool
from ..layers.scaling import Rescale
from ..layers.reading import kind_for
from ..layers.regularise import LayerScale, ScalarAffine
from ..layers.splits import RadixSoftmax
from .layout import Layout, each_axis
from .torch_graph import flat as _flat
from .torch_modules import Record, read_as
from .torch_nodes import _target_name


def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _merge(imp, node):
    """Two tensors added or multiplied: the kind that reads the operator; of a tensor and a
    number, a rescale; of a tensor and a learnt scalar, an affine; times a constant per
    channel, a layer scale."""
    kind = kind_for("torch", _target_name(node).rstrip("_"))
    tensors = [a for a in node.args[:2] if hasattr(a, "op")]
    flowing = [a for a in tensors if a.name in imp.ids]
    split = {imp.radix.get(a.name) for a in flowing}
    if split != {None} and (len(split) > 1 or len(flowing) < 2):
        imp.fail(node, f"{kind.keyword} of a tensor split in {max(s or 0 for s in split)} "
                       "along a new axis with one that is not split so")
        return
    if len(flowing) == 2:
        lay = imp.layout_of(flowing[0])
        lay2 = imp.layout_of(flowing[1])
        imp.add(node, kind.write(), flowing)
        imp.layouts[node.name] = lay if lay.rank >= lay2.rank else lay2
        if split != {None}:  # paths times their weights: still split
            imp.radix[node.name] = split.pop()
        return
    _with_constant(imp, node, flowing[0], kind is Add)


def _with_constant(imp, node, x, adds):
    """x plus or times what does not flow: nothing (x + 0), a number (a rescale), a learnt
    scalar (an affine), a constant per channel (a layer scale)."""
    other = next((a for a in node.args[:2] if a is not x), None)
    if other == (0 if adds else 1) and not hasattr(other, "op"):
        imp.alias(node, x)  # x + 0 where a branch is absent (MobileOne, FastViT)
        return
    if isinstance(other, (int, float)) and not isinstance(other, bool):
        _scalar(imp, node, x, 1.0 if adds else other, other if adds else 0.0)
        return
    if hasattr(other, "op") and _learnt_scalar(imp, other):
        _affine(imp, node, x, other, adds)
        return
    if not adds and hasattr(other, "op") and other.name in imp.consts and \
            _per_channel(imp, node, x, other):
        return
    imp.fail(node, f"{'adds' if adds else 'multiplies by'} a constant")


def _per_channel(imp, node, x, other) -> bool:
    """x times a constant of one value per channel: a layer scale, named after its
    parameter (ConvNeXt's features.1.0.layer_scale)."""
    shape = imp.shape(other)
    if shape is None or int(_prod(shape)) != imp.layout_of(x).spatial(imp.shape(x))[1]:
        return False
    imp.add(node, LayerScale.write(), [x],
            other.target if other.op == "get_attr" and other.target != "_constant"
            and not imp.shared(node, other.target) else None)
    imp.layouts[node.name] = imp.layout_of(x)
    return True


def _learnt_scalar(imp, node) -> bool:
    """A parameter of one value (HGNetV2's scale and bias, NFNet's skip gain)."""
    if getattr(node, "op", None) != "get_attr" or node.target == "_constant":
        return False
    shape = imp.shape(node)
    return shape is not None and _prod(shape) == 1 and \
        node.target in dict(imp.gm.root.named_parameters())


def _affine(imp, node, x, param, adds):
    """x times a learnt scalar (an affine without its shift), then plus one: an affine."""
    if imp.shared(node, param.target):
        return
    before = imp.ops_by_id().get(imp.ids[x.name])
    if adds and before is not None and before.text == ScalarAffine.write(shift=False) and \
            len(x.users) == 1:
        before.text = ScalarAffine.write()
        imp.alias(node, x)
        return
    if adds:
        imp.fail(node, "adds a learnt scalar without a scale before it")
        return
    imp.add(node, ScalarAffine.write(shift=False), [x], param.target)  # named after its scale
    imp.layouts[node.name] = imp.layout_of(x)


def _prod(v):
    out = 1
    for n in v:
        out *= n
    return out


def _cat(imp, node):
    tensors = [a for a in _flat(_arg(node, 0, "tensors", ())) if hasattr(a, "op")]
    dim = _arg(node, 1, "dim", 0)
    # a part of no size along the axis adds nothing (smp's empty stand-in for a stage
    # its timm encoder lacks)
    tensors = [t for t in tensors if (imp.shape(t) or (1,) * (dim + 1))[dim] != 0] or tensors
    lay = imp.layout_of(tensors[0])
    if dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"torch.cat along dimension {dim}, not the channels")
        return
    if len(tensors) == 1:
        imp.alias(node, tensors[0])
        return
    imp.add(node, Concat.write(), tensors)
    imp.layouts[node.name] = lay


def named_args(node) -> Record:
    """An ATen operator's arguments by their names in its schema, defaults filled in
    (aten.elu(x, alpha, scale, input_scale), aten.leaky_relu(x, negative_slope)): the
    names torch.nn's modules hold them by."""
    args = {}
    for i, a in enumerate(node.target._schema.arguments[1:], 1):
        if len(node.args) > i:
            args[a.name] = node.args[i]
        elif a.name in node.kwargs:
            args[a.name] = node.kwargs[a.name]
        elif a.has_default_value():
            args[a.name] = a.default_value
    return Record(**args)


def _activation(module):
    """An activation's operator, read as its module ('ReLU' for aten.relu); a softmax
    across a split tensor's paths (SKNet's attention) is the split's."""
    def handler(imp, node):
        x = node.args[0]
        if module == "Softmax" and x.name in imp.radix:
            if node.args[1] % (imp.layout_of(x).rank + 3) != 1:
                imp.fail(node, f"a softmax over dimension {node.args[1]} of a split tensor")
                return
            imp.add(node, RadixSoftmax.write(radix=imp.radix[x.name]), [x])
            imp.layouts[node.name] = imp.layout_of(x)
            imp.radix[node.name] = imp.radix[x.name]
            return
        read_as(imp, node, module, named_args(node))
    return handler


def _global(imp, node):
    """A mean or max over the spatial axes: a global pool (kept: the adaptive pool to 1)."""
    x = node.args[0]
    lay = imp.layout_of(x)
    dims = _arg(node, 1, "dim")
    keep = _arg(node, 2, "keepdim", False)
    dims = tuple(d % (lay.rank + 2) for d in each_axis(dims, 1)) if dims is not None else ()
    spatial = tuple(range(2, 2 + lay.rank)) if lay.first else tuple(range(1, 1 + lay.rank))
    if read_as(imp, node, _target_name(node), Record(
            on_spatial=tuple(sorted(dims)) == spatial, reduced=dims, keep=keep)) and not keep:
        imp.layouts[node.name] = Layout(True, False, 0)


def _fpool(module):
    def handler(imp, node):
        rank = imp.layout_of(node.args[0]).rank
        kernel = _arg(node, 1, "kernel_size")
        maxpool = module == "MaxPool"
        read_as(imp, node, f"{module}{rank}d", Record(
            kernel_size=kernel, stride=_arg(node, 2, "stride") or kernel,
            padding=_arg(node, 3, "padding", 0),
            dilation=_arg(node, 4, "dilation", 1) if maxpool else 1,
            ceil_mode=_arg(node, 5 if maxpool else 4, "ceil_mode", False),
            count_include_pad=_arg(node, 5, "count_include_pad", True)))
    return handler


def _truediv(imp, node):
    """cnncalc's average pooling over asymmetric padding divides by a constant count: with
    it, the pool averages real pixels only, as Keras does."""
    x, d = node.args[:2]
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    if op is not None and op.kind == AvgPool.keyword and op.meta.get("padded") and \
            getattr(d, "name", None) in imp.consts:
        imp.alias(node, x)
        return
    if isinstance(d, (int, float)) and not isinstance(d, bool) and d:
        _scalar(imp, node, x, 1.0 / d, 0.0)
        return
    imp.fail(node, "division")


def _sub(imp, node):
    """x - y: 'subtract'; x - c for a number c: a rescale."""
    x, c = node.args[:2]
    alpha = _arg(node, 2, "alpha", 1)
    if getattr(x, "name", None) in imp.ids and isinstance(c, (int, float)) and \
            not isinstance(c, bool):
        _scalar(imp, node, x, 1.0, -float(c) * alpha)
        return
    if getattr(x, "name", None) in imp.ids and getattr(c, "name", None) in imp.ids and \
            alpha == 1:
        lay, lay2 = imp.layout_of(x), imp.layout_of(c)
        imp.add(node, Subtract.write(), [x, c])
        imp.layouts[node.name] = lay if lay.rank >= lay2.rank else lay2
        return
    imp.fail(node, "a subtraction" + (" from a constant" if hasattr(c, "op") else ""))


def _scalar(imp, node, x, scale, offset):
    """x times a number plus a number (NFNet's gains, relu6(x + 3) / 6 spelt out): a
    rescale, which folds into the one before it (x * a + b is one rescale)."""
    if scale <= 0:
        imp.fail(node, f"a multiplication by {scale:g} (rescale takes a positive scale)")
        return
    op = imp.add(node, Rescale.write(scale=float(scale), offset=float(offset)), [x])
    op.meta.update(scale=float(scale), offset=float(offset))  # x * a + b: one (rewrite)
    imp.layouts[node.name] = imp.layout_of(x)


def _adaptive_f(module):
    def handler(imp, node):
        rank = imp.layout_of(node.args[0]).rank
        read_as(imp, node, f"{module}{rank}d", Record(output_size=_arg(node, 1, "output_size")))
    return handler
