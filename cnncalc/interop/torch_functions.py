"""Operators on computed tensors: merges (add, multiply, concat), a scalar's scale and
offset, activations as functions, global and functional pools."""

from __future__ import annotations

from .graph import statement
from .layout import Layout, axes_text, each_axis, side_padding
from .torch_graph import flat as _flat
from .torch_modules import _leaky, _softmax


def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _merge(word):
    def handler(imp, node):
        tensors = [a for a in node.args[:2] if hasattr(a, "op")]
        flowing = [a for a in tensors if a.name in imp.ids]
        split = {imp.radix.get(a.name) for a in flowing}
        if split != {None} and (len(split) > 1 or len(flowing) < 2):
            imp.fail(node, f"{word} of a tensor split in {max(s or 0 for s in split)} along a "
                           "new axis with one that is not split so")
            return
        if len(flowing) == 2:
            lay = imp.layout_of(flowing[0])
            lay2 = imp.layout_of(flowing[1])
            main = lay if lay.rank >= lay2.rank else lay2
            imp.add(node, word, flowing)
            imp.layouts[node.name] = main
            if split != {None}:  # paths times their weights: still split
                imp.radix[node.name] = split.pop()
            return
        x = flowing[0]
        other = next((a for a in node.args[:2] if a is not x), None)
        if other == (0 if word == "add" else 1) and not hasattr(other, "op"):
            imp.alias(node, x)  # x + 0 where a branch is absent (MobileOne, FastViT)
            return
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            _scalar(imp, node, x, other if word == "multiply" else 1.0,
                    other if word == "add" else 0.0)
            return
        if hasattr(other, "op") and _learnt_scalar(imp, other):
            _affine(imp, node, x, other, word)
            return
        if word == "multiply" and hasattr(other, "op") and other.name in imp.consts:
            c = imp.layout_of(x).spatial(imp.shape(x))[1]
            shape = imp.shape(other)
            if shape is not None and int(_prod(shape)) == c:  # a scale per channel
                # named after its parameter (ConvNeXt's features.1.0.layer_scale)
                imp.add(node, "layerscale", [x],
                        other.target if other.op == "get_attr" and other.target != "_constant"
                        and not imp.shared(node, other.target) else None)
                imp.layouts[node.name] = imp.layout_of(x)
                return
        imp.fail(node, f"{'adds' if word == 'add' else 'multiplies by'} a constant")
    return handler


def _learnt_scalar(imp, node) -> bool:
    """A parameter of one value (HGNetV2's scale and bias, NFNet's skip gain)."""
    if getattr(node, "op", None) != "get_attr" or node.target == "_constant":
        return False
    shape = imp.shape(node)
    return shape is not None and _prod(shape) == 1 and \
        node.target in dict(imp.gm.root.named_parameters())


def _affine(imp, node, x, param, word):
    """x times a learnt scalar ('affine noshift'), then plus one: 'affine'."""
    if imp.shared(node, param.target):
        return
    before = imp.ops_by_id().get(imp.ids[x.name])
    if word == "add" and before is not None and before.text == "affine noshift" and \
            len(x.users) == 1:
        before.text = "affine"
        imp.alias(node, x)
        return
    if word == "add":
        imp.fail(node, "adds a learnt scalar without a scale before it")
        return
    imp.add(node, "affine noshift", [x], param.target)  # named after its scale
    imp.layouts[node.name] = imp.layout_of(x)


def _prod(v):
    out = 1
    for n in v:
        out *= n
    return out


def _cat(imp, node):
    tensors = [a for a in _flat(_arg(node, 0, "tensors", ())) if hasattr(a, "op")]
    dim = _arg(node, 1, "dim", 0)
    lay = imp.layout_of(tensors[0])
    if dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"torch.cat along dimension {dim}, not the channels")
        return
    if len(tensors) == 1:
        imp.alias(node, tensors[0])
        return
    crop = False
    if len(tensors) == 2:  # cnncalc's 'concat ID crop': the second centre-cropped to the first
        second = imp.ops_by_id().get(imp.ids[tensors[1].name])
        if second is not None and second.kind == "crop" and second.meta.get("centre"):
            tensors = [tensors[0], second.meta["of"]]
            imp.ops.remove(second)
            crop = True
    op = imp.add(node, "concat", tensors, meta={"crop": crop})
    op.meta["crop"] = crop
    imp.layouts[node.name] = lay


def _activation(word):
    def handler(imp, node):
        x = node.args[0]
        text = _leaky(imp, node, None) if word == "leakyrelu" else word
        if word == "softmax" and x.name in imp.radix:  # across the paths: SKNet's attention
            if node.args[1] % (imp.layout_of(x).rank + 3) != 1:
                imp.fail(node, f"a softmax over dimension {node.args[1]} of a split tensor")
                return
            imp.add(node, statement("rsoftmax", radix=imp.radix[x.name]), [x])
            imp.layouts[node.name] = imp.layout_of(x)
            imp.radix[node.name] = imp.radix[x.name]
            return
        if word == "softmax" and _softmax(imp, node, None) is None:
            return
        if word == "gelu" and node.kwargs.get("approximate", "none") != "none":
            imp.fail(node, "GELU with the tanh approximation (cnncalc's gelu is the exact one)")
            return
        imp.add(node, text, [x])
        imp.layouts[node.name] = imp.layout_of(x)
    return handler


def _global(word):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        dims = _arg(node, 1, "dim")
        keep = _arg(node, 2, "keepdim", False)
        dims = tuple(d % (lay.rank + 2) for d in each_axis(dims, 1)) if dims is not None else ()
        spatial = tuple(range(2, 2 + lay.rank)) if lay.first else tuple(range(1, 1 + lay.rank))
        if tuple(sorted(dims)) != spatial:
            imp.fail(node, f"{word} over dimensions {dims}, not the spatial ones")
            return
        imp.add(node, f"adaptive{word[6:]} 1" if keep else word, [x])
        imp.layouts[node.name] = lay if keep else Layout(True, False, 0)
    return handler


def _fpool(kind):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        rank = lay.rank
        k = lay.spec(each_axis(_arg(node, 1, "kernel_size"), rank))
        stride = _arg(node, 2, "stride") or _arg(node, 1, "kernel_size")
        s = lay.spec(each_axis(stride, rank))
        p = lay.spec(each_axis(_arg(node, 3, "padding", 0), rank))
        ceil = _arg(node, 5 if kind == "maxpool" else 4, "ceil_mode", False)
        text = f"{kind} {axes_text(k)}" + (f" stride {axes_text(s)}" if s != k else "")
        pad = imp.pad_before(x, node)
        wanted = float("-inf") if kind == "maxpool" else 0
        words = None
        if pad is not None and pad.meta["value"] == wanted and not any(p):
            words = side_padding(pad.meta["pads"], k, s, (1,) * rank, pad.meta["sizes"])
        if words is not None:  # F.pad then the pool: padding per side
            text += words
            x = pad.meta["of"]
            imp.drop(pad)
        elif any(p):
            text += f" pad {axes_text(p)}"
            if kind == "avgpool" and _arg(node, 5, "count_include_pad", True):
                text += " countpad"
        if ceil:
            text += " ceil"
        op = imp.add(node, text, [x])
        op.meta["padded"] = words is not None
        imp.layouts[node.name] = lay
    return handler


def _truediv(imp, node):
    """cnncalc's average pooling over asymmetric padding divides by a constant count: with
    it, the pool averages real pixels only, as Keras does."""
    x, d = node.args[:2]
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    if op is not None and op.kind == "avgpool" and op.meta.get("padded") and \
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
        imp.add(node, "subtract", [x, c])
        imp.layouts[node.name] = lay if lay.rank >= lay2.rank else lay2
        return
    imp.fail(node, "a subtraction" + (" from a constant" if hasattr(c, "op") else ""))


def _scalar(imp, node, x, scale, offset):
    """x times a number plus a number (NFNet's gains, relu6(x + 3) / 6 spelt out): a
    rescale, which folds into the one before it (x * a + b is one rescale)."""
    if scale <= 0:
        imp.fail(node, f"a multiplication by {scale:g} (rescale takes a positive scale)")
        return
    before = imp.ops_by_id().get(imp.ids[x.name])
    if before is not None and before.kind == "rescale" and len(x.users) == 1 and \
            offset and before.meta.get("offset") == 0.0:  # x * a, then + b
        scale, x = before.meta["scale"], before.meta["of"]
        imp.drop(before)
    op = imp.add(node, statement("rescale", scale=float(scale), offset=float(offset)), [x])
    op.meta.update(scale=float(scale), offset=float(offset), of=x)
    imp.layouts[node.name] = imp.layout_of(x)


def _adaptive_f(kind):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        size = _arg(node, 1, "output_size")
        imp.add(node, f"{kind} {axes_text(lay.spec(each_axis(size, lay.rank)))}", [x])
        imp.layouts[node.name] = lay
    return handler

