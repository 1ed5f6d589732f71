"""Convolutions: conv (Keras Conv1D/2D/3D) and deconv (Keras Conv*DTranspose), with the
per-axis window formulas that pooling and the size sweeps share."""

from __future__ import annotations

from math import prod

from .. import fmt
from ..language.records import Kernel
from . import activations
from .base import (
    FROZEN,
    SHARES,
    Amount,
    Arg,
    Flag,
    Layer,
    Outcome,
    PerAxis,
    Real,
    RuleError,
    act_code,
    anywhere,
    axis_names,
    keras_act,
    need_map,
    nn_call,
    picture,
    runs_half,
)
from .reading import read_padding
from .window import (
    keras_window,
    pad_code,
    padded_input,
    padding_options,
    resolve_pad,
    save_padded,
    uneven,
    unless,
    window_axis,
)


class KernelFilters(Arg):
    """``3x3x64``: the kernel per spatial axis, then the filters."""
    label = "the kernel and filters"
    example = "3x3x64"

    def read(self, item, r):
        v = r.numbers(item, "the kernel and filters", 1, None)
        if len(v) != r.rank + 1:
            raise r.error(f"{r.kind} {item.text}: expected {r.rank} kernel size(s) then the "
                          f"number of filters for the {r.rank}-D input (e.g. "
                          f"{'x'.join(['3'] * r.rank)}x64)", item)
        return {"kernel": v[:-1], "filters": v[-1]}

    def describe(self, layer):
        return fmt.shape((*layer.kernel, layer.filters))


def weighted_kept(self, row, k):
    """``kept`` of a layer with weights (conv, dense): its input for the weights' gradient;
    its activation runs in place on the fresh result (the backend's fused module)."""
    save_padded(row, k, row.geometry and uneven(row.geometry.get("pads")))
    k.new()
    k.act(self.activation, True)


def bias_act_ops(layer, units):
    """One addition per output for the bias, the activation's cost per output."""
    return units * (bool(layer.bias) + activations.act_ops(layer.activation))


class Conv(Layer):
    keyword = "conv"
    autocast = runs_half
    also = ("conv2d", "conv1d", "conv3d", "convolution2d")
    doc = ("convolution: kernel per spatial axis, then filters (Keras Conv1D/2D/3D); 'causal' "
           "pads a sequence before only (Keras Conv1D)")
    example = "conv 3x3x64 same stride 2 relu"
    args = (KernelFilters(),)
    options = (*padding_options(("valid", "same", "causal")), Amount("stride"), Amount("dilation"),
               Amount("groups", per_axis=False, example="4"),
               Flag("nobias", "bias", False, True), activations.option(), FROZEN, SHARES)
    colour = "#64b5f6"

    @classmethod
    def read(cls, word, items, r):
        weights = [i for i in items if isinstance(i, Kernel)]
        fields = super().read(word, [i for i in items if not isinstance(i, Kernel)], r)
        fields["weights"] = weights[0].array if weights else None
        return fields

    def rule(self, x, ex):
        return conv_rule(self, x, ex, self.filters, self.groups)

    kept = weighted_kept
    padded_copy = padded_input

    def module(self, row):
        from ..backends.modules import Conv
        return Conv(self, row)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return conv_code(self, row, self.filters, self.groups, self.bias)

    keras_reads = ("Conv1D", "Conv2D", "Conv3D")

    darknet_reads = ("convolutional", "conv")

    @classmethod
    def from_darknet(cls, section):  # Darknet pads size // 2 where pad=1; batch norm after
        f, k, s = section.int("filters", 1), section.int("size", 1), section.int("stride", 1)
        pad = k // 2 if section.int("pad", 0) else section.int("padding", 0)
        groups, dilation = section.int("groups", 1), section.int("dilation", 1)
        bn = section.int("batch_normalize", 0)
        fields = dict(kernel=(k, k), stride=(s, s), dilation=(dilation, dilation), bias=not bn)
        if pad:
            fields["padding"] = (pad, pad)
        h, w, c = section.shape
        if groups > 1 and groups == c == f:
            text = DWConv.write(**fields)
        else:
            text = cls.write(filters=f, groups=groups, **fields)
        from .norm import BatchNorm
        span = dilation * (k - 1) + 1
        return [text] + ([BatchNorm.write()] if bn else []), \
            ((h + 2 * pad - span) // s + 1, (w + 2 * pad - span) // s + 1, f)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        return cls.write(kernel=k.sizes(cfg["kernel_size"]), filters=cfg["filters"],
                         groups=cfg.get("groups", 1), **k.window(cfg), **k.weighted(cfg))

    torch_reads = ("Conv1d", "Conv2d", "Conv3d")
    onnx_reads = ("Conv",)
    pad_fill = 0.0

    @classmethod
    def from_read(cls, r):
        """A convolution: depthwise where each channel has its own group (and not
        standardised, which writes its groups), weight-standardised where ``r.standard``
        holds (eps, gain, scale)."""
        if r.get("padding_mode", "zeros") != "zeros":
            r.refuse(f"padding_mode {r.padding_mode!r} (cnncalc pads with zeros; write "
                     "reflectpad before the conv)")
        fields = dict(kernel=r.kernel, padding=read_padding(r), stride=r.stride,
                      dilation=r.dilation, bias=r.bias, frozen=r.get("frozen", False))
        cin, groups, standard = r.channels, r.groups, r.get("standard")
        if standard is not None:
            eps, gain, scale = standard
            return StdConv.write(filters=r.filters, groups=groups, eps=eps, gain=gain,
                                 scale=scale, **fields)
        if groups == cin > 1 and r.filters % cin == 0:
            return DWConv.write(multiplier=r.filters // cin, **fields)
        return cls.write(filters=r.filters, groups=groups, **fields)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return keras_window(self, row, "Conv", self.filters, picture(self.kernel),
                            strides=unless(picture(self.stride), 1),
                            dilation_rate=unless(picture(self.dilation), 1),
                            groups=self.groups if self.groups != 1 else None,
                            use_bias=None if self.bias else False,
                            activation=keras_act(self.activation))


def conv_code(layer, row, filters, groups, bias, activation=True):  # pragma: no mutate block (export, tested apart)
    """A convolution as PyTorch source; asymmetric padding ('same' with a stride) first."""
    rank, pads = len(layer.kernel), picture(row.geometry["pads"])
    even = all(b == a for b, a in pads)
    out = [] if even else pad_code(pads, rank)
    out.append(("", nn_call(f"nn.Conv{rank}d", row.input[-1], filters, picture(layer.kernel),
                            stride=unless(picture(layer.stride), 1),
                            padding=unless(tuple(b for b, _ in pads), 0) if even else None,
                            dilation=unless(picture(layer.dilation), 1),
                            groups=groups if groups != 1 else None,
                            bias=None if bias else False)))
    return out + (act_code(layer.activation) if activation else [])


def conv_rule(layer, x, ex, filters, groups):
    """A convolution's shape, counts and MACs (conv, dwconv)."""
    rank = len(layer.kernel)
    need_map(x, rank, layer.kind)
    cin, names = x[-1], axis_names(rank)
    if anywhere(cin % groups) or anywhere(filters % groups):
        raise RuleError(f"groups {groups} must divide the input channels ({cin}) and the "
                        f"filters ({filters})")
    if layer.padding == "causal" and rank != 1:
        raise RuleError("causal padding is for 1-D inputs (sequences), as in Keras' Conv1D")
    outs, pads, dropped = [], [], []
    for i in range(rank):
        o, b, a, d = window_axis(x[i], layer.kernel[i], layer.stride[i], layer.dilation[i],
                                 resolve_pad(layer.padding, i), False, names[i], ex)
        outs.append(o)
        pads.append((b, a))
        dropped.append(d)
    per_filter = prod(layer.kernel) * (cin // groups)
    weights = per_filter * filters
    if getattr(layer, "weights", None) is not None:
        # written as on the page: rows first, so the kernel's height comes before its width
        _check_inline(layer.weights, (filters, cin // groups, *picture(layer.kernel)))
    biases = filters if layer.bias else 0
    shape = (*outs, filters)
    macs = prod(shape) * per_filter
    if ex is not None:
        gtext = f" / {groups} groups" if groups > 1 else ""
        ex.append(f"weights: {' x '.join(map(str, layer.kernel))} x {cin}{gtext} x "
                  f"{filters} = {weights:,}")
        ex.append(f"biases: {biases:,}" + (" (one per filter)" if biases else " (nobias)"))
        ex.append(f"MACs: {fmt.shape(shape)} outputs x {per_filter:,} = {macs:,}")
    keff = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel, layer.dilation))
    return Outcome(shape, weights, biases, 0, macs, bias_act_ops(layer, prod(shape)),
                   {"pads": tuple(pads), "dropped": tuple(dropped)},
                   tuple(zip(keff, layer.stride, (p[0] for p in pads))))


class StdConv(Conv):
    keyword = "stdconv"
    also = ("stdconv2d", "scaledstdconv2d")
    doc = ("weight-standardised convolution (timm's StdConv2d, BiT): each filter's weights "
           "minus their mean over their standard deviation ('eps E', 1e-6 by default); 'gain' "
           "adds a learnable gain per filter times 'scale S' (ScaledStdConv2d, NFNet)")
    example = "stdconv 3x3x64 same gain"
    options = (*Conv.options, Real("eps", "eps", 1e-6, "eps E (1e-6)"),
               Flag("gain", "gain", True, False, help="gain (a learnable gain per filter)"),
               Real("scale", "scale", 1.0, "scale S (the gain's constant factor)"))
    semantics = "PyTorch (timm's StdConv2d and ScaledStdConv2d)"

    def rule(self, x, ex):
        out = conv_rule(self, x, ex, self.filters, self.groups)
        if self.gain:  # one gain per filter, trained with the weights
            out.weights += self.filters
            if ex is not None:
                ex.append(f"gain: {self.filters:,} (one per filter)")
        return out

    def module(self, row):
        from ..backends.modules import StdConv
        return StdConv(self, row)

    torch_helper = '''class StdConv(nn.Module):
    """Weight standardisation (timm's StdConv2d, ScaledStdConv2d): each filter's weights
    normalised by their mean and biased variance, times a learnable gain and a constant."""

    def __init__(self, conv, eps, gain, scale):
        super().__init__()
        self.conv, self.eps, self.scale = conv, eps, scale
        self.gain = nn.Parameter(torch.ones(conv.out_channels)) if gain else None

    def forward(self, x):
        w = self.conv.weight
        g = None if self.gain is None else self.gain * self.scale
        w = nn.functional.batch_norm(w.reshape(1, w.shape[0], -1), None, None, g,
                                     training=True, momentum=0.0, eps=self.eps)
        return self.conv._conv_forward(x, w.reshape_as(self.conv.weight), self.conv.bias)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        out = conv_code(self, row, self.filters, self.groups, self.bias)
        i = next(i for i, (suffix, _) in enumerate(out) if suffix == "")
        out[i] = ("", f"StdConv({out[i][1]}, {self.eps!r}, {bool(self.gain)}, {self.scale!r})")
        return out

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return Layer.keras_code(self, row)


class DWConv(Layer):
    keyword = "dwconv"
    autocast = runs_half
    also = ("depthwiseconv2d", "depthwiseconv1d")
    doc = ("depthwise convolution (Keras DepthwiseConv2D): one kernel per channel, times the "
           "multiplier; the filters are the channels x the multiplier")
    example = "dwconv 3x3 stride 2 same"
    args = (PerAxis("kernel", "the kernel", example="3x3"),)
    options = (*padding_options(("valid", "same")), Amount("stride"), Amount("dilation"),
               Amount("multiplier", per_axis=False, example="1"),
               Flag("nobias", "bias", False, True), activations.option(), FROZEN, SHARES)
    colour = "#42a5f5"

    def rule(self, x, ex):  # conv_rule refuses a flat vector first
        return conv_rule(self, x, ex, x[-1] * self.multiplier, x[-1])

    kept = weighted_kept
    padded_copy = padded_input

    def module(self, row):
        from ..backends.modules import Conv
        return Conv(self, row, filters=row.output[-1], groups=row.input[-1])

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return conv_code(self, row, row.output[-1], row.input[-1], self.bias)

    keras_reads = ("DepthwiseConv1D", "DepthwiseConv2D")

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        return cls.write(kernel=k.sizes(cfg["kernel_size"]),
                         multiplier=cfg.get("depth_multiplier", 1), **k.window(cfg),
                         **k.weighted(cfg))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return keras_window(self, row, "DepthwiseConv", picture(self.kernel),
                            strides=unless(picture(self.stride), 1),
                            depth_multiplier=self.multiplier if self.multiplier != 1 else None,
                            dilation_rate=unless(picture(self.dilation), 1),
                            use_bias=None if self.bias else False,
                            activation=keras_act(self.activation))


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
        raise RuleError(f"kernel=: the array is {fmt.shape(given) or 'empty'}, expected "
                        f"{fmt.shape(expected)} (filters x channels x kernel; leading 1s may be "
                        "left out)")

