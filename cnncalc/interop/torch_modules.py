"""torch.nn's own layers, read whole from the module (its attributes, not its forward):
convolutions, pools, norms, activations, linear, padding, upsampling."""

from __future__ import annotations

from ..layers.activations import named
from .graph import statement
from .layout import Layout, axes_text, each_axis, pad_text, padding_words, side_padding
from .torch_nodes import _own_name


def _window(imp, node, m):
    """A conv module's input, its layout, rank, and kernel, stride and dilation in the
    spec's axis order."""
    x = node.args[0]
    lay = imp.layout_of(x)
    rank = len(m.kernel_size)
    return (x, lay, rank, lay.spec(m.kernel_size), lay.spec(each_axis(m.stride, rank)),
            lay.spec(each_axis(m.dilation, rank)))


def _conv(imp, node, m, grouped=False):
    x, lay, rank, kernel, stride, dilation = _window(imp, node, m)
    padding = _conv_padding(imp, node, m, lay, rank, kernel, stride, dilation)
    if padding is None:
        return
    pad = imp.pad_before(x, node)
    if pad is not None and not padding and pad.meta["value"] == 0:
        words = side_padding(pad.meta["pads"], kernel, stride, dilation, pad.meta["sizes"])
        if words is not None:  # F.pad then the conv: Keras' 'same' with a stride, say
            padding, x = words, pad.meta["of"]
            imp.drop(pad)
    cin = lay.spatial(imp.shape(node.args[0]))[1]
    if m.groups == cin and m.groups > 1 and m.out_channels % cin == 0 and not grouped:
        text = f"dwconv {'x'.join(map(str, kernel))}"
        if m.out_channels != cin:
            text += f" multiplier {m.out_channels // cin}"
    else:
        text = f"conv {'x'.join(map(str, kernel))}x{m.out_channels}"
    text += padding
    if any(s != 1 for s in stride):
        text += f" stride {axes_text(stride)}"
    if any(d != 1 for d in dilation):
        text += f" dilation {axes_text(dilation)}"
    if m.groups != 1 and not text.startswith("dwconv"):
        text += f" groups {m.groups}"
    if m.bias is None:
        text += " nobias"
    op = imp.add(node, text, [x], _own_name(node))
    op.meta["cin"] = cin
    imp.layouts[node.name] = lay


def _conv_padding(imp, node, m, lay, rank, kernel, stride, dilation):
    """A conv module's padding as words, or None where cnncalc has none (said)."""
    if getattr(m, "padding_mode", "zeros") != "zeros":
        imp.fail(node, f"padding_mode {m.padding_mode!r} (cnncalc pads with zeros; write "
                       "reflectpad before the conv)")
        return None
    if not isinstance(m.padding, str):
        return padding_words(lay.spec(each_axis(m.padding, rank)), kernel, dilation)
    if m.padding == "same" and all(s == 1 for s in stride):
        return " same"
    if m.padding == "valid":
        return ""
    imp.fail(node, f"padding {m.padding!r} with stride {stride}")
    return None


def _deconv(imp, node, m):
    x, lay, rank, kernel, stride, dilation = _window(imp, node, m)
    pad = lay.spec(each_axis(m.padding, rank))
    extra = lay.spec(each_axis(m.output_padding, rank))
    if m.groups != 1:
        imp.fail(node, "ConvTranspose with groups")
        return
    words = []
    for k, s, d, p, op in zip(kernel, stride, dilation, pad, extra):
        ke = d * (k - 1) + 1
        if p == 0 and op == max(s - ke, 0):
            words.append("valid")
        elif ke >= s and (p, p - op) == ((ke - s) // 2, ke - s - (ke - s) // 2):
            words.append("same")  # Keras crops (k - s) // 2 before, the rest after
        else:
            imp.fail(node, f"ConvTranspose with padding {p} and output_padding {op}: it crops "
                           f"{p} before and {p - op} after, which neither 'valid' nor 'same' "
                           "(Keras' Conv2DTranspose) does")
            return
    if len(set(words)) > 1:
        imp.fail(node, "ConvTranspose whose axes differ in padding")
        return
    text = f"deconv {'x'.join(map(str, kernel))}x{m.out_channels}"
    text += " same" if words[0] == "same" else ""
    if any(s != 1 for s in stride):
        text += f" stride {axes_text(stride)}"
    if any(d != 1 for d in dilation):
        text += f" dilation {axes_text(dilation)}"
    if m.bias is None:
        text += " nobias"
    op = imp.add(node, text, [x], _own_name(node))
    if words[0] == "valid":  # a crop after it of Keras' 'same' makes it 'deconv ... same'
        crops = [(max(d * (k - 1) + 1 - s, 0) // 2, max(d * (k - 1) + 1 - s, 0)
                  - max(d * (k - 1) + 1 - s, 0) // 2)
                 for k, s, d in zip(kernel, stride, dilation)]
        op.meta["cropped_same"] = crops if any(b or a for b, a in crops) else None
    imp.layouts[node.name] = lay


def _simple(text_of):
    """A module or function that keeps the layout and reads one tensor."""
    def handler(imp, node, m=None):
        x = node.args[0]
        text = text_of(imp, node, m)
        if text is None:
            return
        imp.add(node, text, [x], _own_name(node))
        imp.layouts[node.name] = imp.layout_of(x)
    return handler


def _act(word):
    return _simple(lambda imp, node, m: word)


def _leaky(imp, node, m):
    slope = m.negative_slope if m is not None else node.kwargs.get(
        "negative_slope", node.args[1] if len(node.args) > 1 else 0.01)
    return "leakyrelu" if abs(slope - 0.2) < 1e-9 else f"leakyrelu slope {slope:g}"


def _softmax(imp, node, m):
    dim = m.dim if m is not None else node.kwargs.get("dim", node.args[1] if len(node.args) > 1
                                                      else None)
    lay = imp.layout_of(node.args[0])
    if dim is None or dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"softmax over dimension {dim}, not the channels")
        return None
    return "softmax"


def _batchnorm(imp, node, m):
    if not m.affine or not m.track_running_stats:
        imp.fail(node, "BatchNorm without affine or running statistics")
        return None
    return statement("batchnorm", eps=m.eps)


def _pool(kind):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        rank = lay.rank
        k = lay.spec(each_axis(m.kernel_size, rank))
        s = lay.spec(each_axis(m.stride if m.stride else m.kernel_size, rank))
        p = lay.spec(each_axis(m.padding, rank))
        if kind == "maxpool" and any(d != 1 for d in each_axis(m.dilation, rank)):
            imp.fail(node, "MaxPool with dilation")
            return None
        out = f"{kind} {axes_text(k)}"
        if s != k:
            out += f" stride {axes_text(s)}"
        if any(p):
            out += f" pad {axes_text(p)}"
            if kind == "avgpool" and m.count_include_pad:
                out += " countpad"
        if m.ceil_mode:
            out += " ceil"
        return out
    return _simple(text)


def _adaptive(kind):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        size = m.output_size
        if size is None or (isinstance(size, tuple) and None in size):
            imp.fail(node, "adaptive pooling that keeps an axis (None)")
            return None
        return f"{kind} {axes_text(lay.spec(each_axis(size, lay.rank)))}"
    return _simple(text)


def _linear(imp, node, m):
    x = node.args[0]
    lay = imp.layout_of(x)
    if lay.rank and lay.first:
        imp.fail(node, "Linear on the last spatial axis of a channels-first map")
        return
    text = f"dense {m.out_features}" + ("" if m.bias is not None else " nobias")
    imp.add(node, text, [x], _own_name(node))
    imp.layouts[node.name] = lay


def _flatten_to_vector(imp, node, x):
    imp.add(node, "flatten", [x], _own_name(node))
    imp.layouts[node.name] = Layout(True, False, 0)


def _flatten_module(imp, node, m):
    lay = imp.layout_of(node.args[0])
    if m.start_dim != 1 or m.end_dim != -1:
        imp.fail(node, f"Flatten({m.start_dim}, {m.end_dim})")
        return
    if lay.rank == 0:
        imp.alias(node, node.args[0])
        return
    _flatten_to_vector(imp, node, node.args[0])


def _dropout(imp, node, m):
    return f"dropout {m.p:g}" if m.p < 1 else None


def _upsample(imp, node, m):
    lay = imp.layout_of(node.args[0])
    f = m.scale_factor
    if m.mode not in ("nearest", "linear", "bilinear", "trilinear"):
        imp.fail(node, f"Upsample mode {m.mode!r}")
        return None
    if f is None or any(float(v) != int(v) for v in each_axis(f, lay.rank)):  # to a size
        return statement("resize", size=tuple(lay.spatial(imp.shape(node))[0]),
                         mode="nearest" if m.mode == "nearest" else "bilinear",
                         corners=bool(m.align_corners))
    return _upsample_text(lay.spec([int(v) for v in each_axis(f, lay.rank)]), m.mode != "nearest",
                          m.align_corners)


def _upsample_text(factors, linear, corners):
    return f"upsample {axes_text(factors)}" + (" bilinear" if linear else "") + \
        (" aligncorners" if linear and corners else "")


def _pad_module(word):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        if word == "zeropad" and getattr(m, "value", 0) != 0:
            imp.fail(node, f"padding with {m.value}, not zeros")
            return None
        return f"{word} {pad_text(lay, m.padding)}"
    return _simple(text)


def _layernorm(imp, node, m):
    lay = imp.layout_of(node.args[0])
    shape = imp.shape(node.args[0])
    if tuple(m.normalized_shape) != (shape[-1],) or (lay.rank and lay.first):
        imp.fail(node, f"LayerNorm over {tuple(m.normalized_shape)} (cnncalc's layernorm is over "
                       "the channels, on a channels-last tensor)")
        return None
    if not m.elementwise_affine:
        imp.fail(node, "LayerNorm without its scale and offset")
        return None
    return f"layernorm eps {m.eps:g}"


def _groupnorm(imp, node, m):
    return f"groupnorm {m.num_groups} eps {m.eps:g}" if m.affine else None


def _instancenorm(imp, node, m):
    return statement("instancenorm", affine=m.affine, eps=m.eps)


def _prelu(imp, node, m):
    c = imp.layout_of(node.args[0]).spatial(imp.shape(node.args[0]))[1]
    if m.num_parameters != c:
        imp.fail(node, f"PReLU with {m.num_parameters} slope(s) for {c} channels")
        return None
    return "prelu"


def _identity(imp, node, m=None):
    imp.alias(node, node.args[0])


def _shuffle(imp, node, m):
    return f"shuffle {m.groups}"


MODULES = {
    **{f"Conv{d}d": _conv for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": _deconv for d in (1, 2, 3)},
    **{f"BatchNorm{d}d": _simple(_batchnorm) for d in (1, 2, 3)},
    **{f"MaxPool{d}d": _pool("maxpool") for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _pool("avgpool") for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": _adaptive("adaptiveavgpool") for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": _adaptive("adaptivemaxpool") for d in (1, 2, 3)},
    **{f"InstanceNorm{d}d": _simple(_instancenorm) for d in (1, 2, 3)},
    **{f"Dropout{d}": _simple(_dropout) for d in ("", "1d", "2d", "3d")},
    **{f"ZeroPad{d}d": _pad_module("zeropad") for d in (1, 2, 3)},
    **{f"ConstantPad{d}d": _pad_module("zeropad") for d in (1, 2, 3)},
    **{f"ReflectionPad{d}d": _pad_module("reflectpad") for d in (1, 2, 3)},
    **{cls: _act(word) for cls, word in named("torch").items()},
    "LeakyReLU": _simple(_leaky), "Softmax": _simple(_softmax),
    "PReLU": _simple(_prelu), "Identity": _identity, "Linear": _linear,
    "Flatten": _flatten_module, "Upsample": _simple(_upsample),
    "PixelShuffle": _simple(lambda imp, node, m: f"pixelshuffle {m.upscale_factor}"),
    "PixelUnshuffle": _simple(lambda imp, node, m: f"pixelunshuffle {m.downscale_factor}"),
    "ChannelShuffle": _simple(_shuffle), "LayerNorm": _simple(_layernorm),
    "GroupNorm": _simple(_groupnorm),
    "StochasticDepth": _simple(lambda imp, node, m: f"droppath {m.p:g}"),
    "DropPath": _simple(lambda imp, node, m: f"droppath {getattr(m, 'p', getattr(m, 'drop_prob', 0)):g}"),
}


def _is_cnncalc(module) -> bool:
    return type(module).__module__.startswith("cnncalc.")


def module_handler(module):
    """The handler of one of torch.nn's own layers, matched by type: a class of the same
    name elsewhere (timm's Linear, a user's Conv2d), or a subclass with a forward of its
    own (torchvision's LayerNorm2d), is traced through instead."""
    cls = type(module)
    handler = MODULES.get(cls.__name__)
    if handler is None:
        return None
    if cls.__name__ in _FOREIGN_LEAVES or cls.__module__.startswith("torch.nn.modules"):
        return handler
    import torch.nn
    base = getattr(torch.nn, cls.__name__, None)
    return handler if base is not None and issubclass(cls, base) and \
        cls.forward is base.forward else None


_FOREIGN_LEAVES = ("StochasticDepth", "DropPath")  # stochastic depth: a row, not Python

