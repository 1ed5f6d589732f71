"""ATen-level operators read where no torch.nn layer holds them (timm's BatchNormAct2d
calls F.batch_norm, StdConv2d F.conv2d with a computed weight), and the table from every
operator to its handler."""

from __future__ import annotations

from ..layers.activations import named
from ..layers.reading import registry
from ..layers.merge import Add, Concat
from ..layers.norm import GRN
from ..layers.splits import SplitSum
from .layout import each_axis
from .torch_functions import (
    _activation,
    _adaptive_f,
    _arg,
    _cat,
    _fpool,
    _global,
    _merge,
    _sub,
    _truediv,
)
from .torch_graph import flat as _flat
from .torch_modules import Record, read_as
from .torch_nodes import _target_name, _unview
from .torch_views import (
    _expand,
    _fpad,
    _getitem,
    _interpolate,
    _pixel_f,
    _reshape,
    _slice,
    _split,
    _squeeze,
    _transpose,
    _unsqueeze,
)


def _weight(imp, node, i, what):
    """The parameter an operator reads, or None (and the node refused) when it is computed
    from one (weight standardisation): that computation has no statement."""
    w = node.args[i] if len(node.args) > i else None
    if w is not None and (getattr(w, "op", None) != "get_attr" or w.target == "_constant"):
        imp.fail(node, f"{what} with a computed weight ({w.name})")
        return False
    if w is not None:
        imp.share(node, w.target)
        imp.frozen_later.append((node, w.target))
    return True




def _standardised(imp, node, w):
    """The parameter, eps, gain and scale of a weight standardised by batch norm's
    arithmetic (timm's StdConv2d: F.batch_norm over each filter, training=True; its
    ScaledStdConv2d scales by a learnable gain times a constant), or None."""
    bn = _unview(w)
    if getattr(bn, "op", None) != "call_function" or _target_name(bn) not in (
            "aten.native_batch_norm", "aten._native_batch_norm_legit") or \
            any(a is not None for a in bn.args[2:5]) or not bn.args[5]:
        return None
    param, gain = _unview(bn.args[0]), bn.args[1]
    if getattr(param, "op", None) != "get_attr" or param.target == "_constant":
        return None
    scale = 1.0
    if gain is not None:
        gain = _unview(gain)
        if getattr(gain, "op", None) == "call_function" and _target_name(gain) == "aten.mul" \
                and isinstance(gain.args[1], (int, float)):
            gain, scale = _unview(gain.args[0]), float(gain.args[1])
        if getattr(gain, "op", None) != "get_attr" or gain.target == "_constant" or \
                imp.shared(node, gain.target):
            return None
    if imp.shared(node, param.target):
        return None
    return param, bn.args[-1], gain is not None, scale


def _convolution(imp, node):
    """aten.convolution (F.conv2d, and nn.Conv2d subclasses with a forward of their own)."""
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = node.args[:9]
    std = None if getattr(w, "op", None) == "get_attr" or transposed else \
        _standardised(imp, node, w)
    if std is not None:
        w = std[0]
    elif not _weight(imp, node, 1, "a convolution"):
        return
    shape = imp.shape(w)
    frozen = std is None and not transposed and w.target in imp.buffers()  # timm's BlurPool
    read_as(imp, node, f"Conv{'Transpose' if transposed else ''}{len(shape) - 2}d", Record(
        kernel_size=tuple(shape[2:]), stride=tuple(stride), padding=tuple(padding),
        dilation=tuple(dilation), groups=groups, bias=b, output_padding=tuple(output_padding),
        out_channels=shape[1] * groups if transposed else shape[0], frozen=frozen,
        standard=None if std is None else std[1:]))


def _batch_norm(imp, node):
    """native_batch_norm (eval: the running statistics) and its no-training form."""
    x, w, b, mean, var = node.args[:5]
    eps = node.args[-1]
    if w is None or b is None or mean is None or var is None:
        missing = [n for n, v in zip(("scale", "offset", "running statistics"), (w, b, mean))
                   if v is None]
        imp.fail(node, f"batch norm without its {' and '.join(missing)}")
        return
    if not _weight(imp, node, 1, "a batch norm"):
        return
    read_as(imp, node, f"BatchNorm{max(len(imp.shape(x)) - 2, 1)}d",
            Record(eps=eps, weight=w, running_mean=mean))


def _layer_norm(imp, node):
    x, shape, w, b, eps = node.args[:5]
    read_as(imp, node, "LayerNorm", Record(normalized_shape=tuple(shape), eps=eps,
                                           elementwise_affine=w is not None and b is not None))


def _group_norm(imp, node):
    x, w, b, _, _, _, groups, eps = node.args[:8]
    read_as(imp, node, "GroupNorm", Record(num_groups=groups, eps=eps,
                                           affine=w is not None and b is not None))


def _linear_op(imp, node):
    """addmm(bias, x, weight.t()) and mm(x, weight.t()): F.linear on a vector."""
    bias, x, wt = (None, *node.args[:2]) if _target_name(node) == "aten.mm" else node.args[:3]
    lay = imp.layout_of(x)
    if lay is None or lay.rank or getattr(wt, "op", None) == "placeholder" or \
            wt.name in imp.ids:
        imp.fail(node, "a matrix product of two computed tensors")
        return
    if not (wt.op == "call_function" and _target_name(wt) in ("aten.t", "aten.permute",
                                                              "aten.transpose")) \
            or not _weight(imp, wt, 0, "a linear layer"):
        imp.fail(node, "a matrix product with a computed weight")
        return
    read_as(imp, node, "Linear", Record(out_features=imp.shape(wt)[1], bias=bias), x)


def _linear_fn(imp, node):
    """F.linear (a Linear subclass with its own forward, timm's Linear): a dense layer on
    the channels, of a vector or of a channels-last map."""
    w = node.args[1]
    if not _weight(imp, node, 1, "a linear layer"):
        return
    read_as(imp, node, "Linear", Record(out_features=imp.shape(w)[0],
                                        bias=_arg(node, 2, "bias")))


def _stack(imp, node):
    """torch.stack(parts) summed over the new axis (FPN's merge policy 'add'): read at the
    sum, as an add of the parts."""
    parts = [a for a in _flat(node.args[0]) if getattr(a, "name", None) in imp.ids]
    users = list(node.users)
    lay = imp.layout_of(parts[0]) if parts else None
    if _arg(node, 1, "dim", 0) == 1 and lay is not None and lay.first and lay.rank and \
            len(parts) == len(_flat(node.args[0])) and \
            len({imp.shape(p) for p in parts}) == 1:  # SKNet's paths: (N, R, C, ...)
        imp.add(node, Concat.write(), parts)
        imp.layouts[node.name] = lay
        imp.radix[node.name] = len(parts)
        return
    if _arg(node, 1, "dim", 0) != 0 or len(parts) != len(_flat(node.args[0])) or \
            len(users) != 1 or _target_name(users[0]) != "aten.sum" or \
            list(each_axis(_arg(users[0], 1, "dim"), 1)) != [0]:
        imp.fail(node, "torch.stack (only its sum over the new axis, an add, is read)")
        return
    imp.skip.add(users[0].name)
    op = imp.add(users[0], Add.write(), parts)
    imp.ids[node.name] = op.id
    imp.layouts[users[0].name] = imp.layouts[node.name] = imp.layout_of(parts[0])


def _grn(imp, node):
    """timm's GlobalResponseNorm, read whole from its operators: g = ||x|| over the map,
    n = g / (mean of g over the channels + eps), x + addcmul(bias, weight, x * n)."""
    x = node.args[0]
    lay = imp.layout_of(x)
    n = len(imp.shape(x))
    spatial = set(range(2, n)) if lay.first else set(range(1, n - 1))

    def only(n_, name):
        users = [u for u in n_.users if _target_name(u) == name]
        return users[0] if len(users) == 1 else None
    try:
        assert node.args[1] == 2 and {d % n for d in node.args[2]} == spatial
        mean = only(node, "aten.mean")
        plus = only(mean, "aten.add")
        div = only(plus, "aten.div")
        prod_ = next(u for u in div.users if _target_name(u) == "aten.mul" and x in u.args)
        acm = only(prod_, "aten.addcmul")
        out = next(u for u in acm.users if _target_name(u) == "aten.add" and x in u.args)
        bias, weight = _unview(acm.args[0]), _unview(acm.args[1])
        assert {d % n for d in each_axis(mean.args[1], 1)} == {lay.channel_dim()}
        assert bias.op == weight.op == "get_attr"
    except (AssertionError, StopIteration, AttributeError, TypeError, IndexError):
        imp.fail(node, "a vector norm (only global response normalisation's is read)")
        return
    if imp.shared(node, weight.target) or imp.shared(node, bias.target):
        return
    imp.skip.update(k.name for k in (mean, plus, div, prod_, acm, out))
    op = imp.add(out, GRN.write(eps=float(plus.args[1])), [x])
    imp.ids[node.name] = op.id
    imp.layouts[out.name] = lay


def _sum(imp, node):
    """The sum of a split tensor's R paths: 'splitsum R'."""
    x = node.args[0]
    dims = [d % (imp.layout_of(x).rank + 3) for d in each_axis(_arg(node, 1, "dim", ()), 1)]
    if x.name not in imp.radix or dims != [1] or _arg(node, 2, "keepdim", False):
        imp.fail(node, f"a sum over dimensions {dims} (cnncalc reads the sum of a tensor's "
                       "paths, split in R along a new axis)")
        return
    imp.add(node, SplitSum.write(radix=imp.radix[x.name]), [x])
    imp.layouts[node.name] = imp.layout_of(x)


def _metadata(imp, node):
    """new_full, zeros_like, ...: a new tensor that reads only its argument's shape and
    type (Ultralytics' anchors): a constant, not a consumer of the flow."""
    imp.consts.add(node.name)


def _alias_first(imp, node):
    imp.alias(node, node.args[0])


# ATen's operators for the activations are their modules' names in lower case (relu, gelu,
# hardswish, ...), each with an in-place form (relu_)
_ACTS = {**{cls.lower(): cls for cls in named("torch")}, "leaky_relu": "LeakyReLU",
         "_softmax": "Softmax", "hardtanh": "Hardtanh"}


FUNCTIONS = {"div": _truediv, "div_": _truediv, "sub": _sub, "sub_": _sub, "cat": _cat, "getitem": _getitem,
             "view": _reshape, "_unsafe_view": _reshape, "reshape": _reshape,
             "permute": _transpose, "transpose": _transpose, "slice": _slice,
             "unsqueeze": _unsqueeze, "squeeze": _squeeze,
             "clone": _alias_first, "alias": _alias_first, "detach": _alias_first,
             "_to_copy": _alias_first, "lift_fresh_copy": _alias_first,
             "mean": _global, "amax": _global,
             "split": _split, "split_with_sizes": _split, "constant_pad_nd": _fpad,
             "convolution": _convolution,
             "native_batch_norm": _batch_norm, "_native_batch_norm_legit_no_training":
             _batch_norm, "_native_batch_norm_legit": _batch_norm,
             "native_layer_norm": _layer_norm, "native_group_norm": _group_norm,
             "addmm": _linear_op, "mm": _linear_op, "linear": _linear_fn, "stack": _stack,
             "expand": _expand, "linalg_vector_norm": _grn, "sum": _sum,
             "pixel_shuffle": _pixel_f("PixelShuffle", "upscale_factor"),
             "pixel_unshuffle": _pixel_f("PixelUnshuffle", "downscale_factor")}


# the merges whose inputs commute (add, mul) read a number or a learnt scalar beside the
# tensor too (_merge); each with its in-place form
for _name, _kind in registry("torch").items():
    if _name.startswith("aten.") and getattr(_kind, "commutative", False):
        FUNCTIONS[_name[5:]] = FUNCTIONS[f"{_name[5:]}_"] = _merge


for _name, _module in _ACTS.items():
    FUNCTIONS[_name] = FUNCTIONS[f"{_name}_"] = _activation(_module)


for _name in ("new_full", "new_zeros", "new_ones", "new_empty", "empty_like", "zeros_like",
              "ones_like", "full_like", "new_empty_strided", "empty_strided"):
    FUNCTIONS[_name] = _metadata


for _d in (1, 2, 3):
    FUNCTIONS[f"max_pool{_d}d_with_indices"] = _fpool("MaxPool")
    FUNCTIONS[f"avg_pool{_d}d"] = _fpool("AvgPool")
    FUNCTIONS[f"_adaptive_avg_pool{_d}d"] = _adaptive_f("AdaptiveAvgPool")
    FUNCTIONS[f"adaptive_max_pool{_d}d"] = _adaptive_f("AdaptiveMaxPool")
    FUNCTIONS[f"adaptive_avg_pool{_d}d"] = _adaptive_f("AdaptiveAvgPool")
    FUNCTIONS[f"max_pool{_d}d"] = _fpool("MaxPool")
    FUNCTIONS[f"reflection_pad{_d}d"] = _fpad
    for _mode in ("nearest", "linear" if _d == 1 else "bilinear" if _d == 2 else "trilinear",
                  "nearest_exact", "bicubic"):
        FUNCTIONS[f"upsample_{_mode}{_d}d"] = _interpolate


FUNCTIONS = {f"aten.{k}" if k != "getitem" else k: v for k, v in FUNCTIONS.items()}
