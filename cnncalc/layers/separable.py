"""The separable convolution (Keras SeparableConv2D): a depthwise kernel per channel, then
a 1x1 convolution to the filters."""

from __future__ import annotations

from math import prod

from .. import fmt
from .base import Layer, Outcome, act_code, keras_act, need_map, nn_call, picture, runs_half
from .conv import DWConv, KernelFilters, bias_act_ops, conv_code, conv_rule
from .reading import read_padding
from .window import keras_window, padded_input, save_padded, uneven, unless


class SepConv(Layer):
    keyword = "sepconv"
    autocast = runs_half
    also = ("separableconv2d", "separableconv1d")
    doc = ("separable convolution (Keras SeparableConv2D): a depthwise kernel per channel, "
           "then a 1x1 convolution to the filters; the bias on the pointwise part only")
    example = "sepconv 3x3x64 same relu"
    args = (KernelFilters(),)
    options = DWConv.options
    colour = "#1e88e5"

    def rule(self, x, ex):
        need_map(x, len(self.kernel), self.kind)
        depth = conv_rule(_Depthwise(self), x, ex, x[-1] * self.multiplier, x[-1])
        cin = depth.shape[-1]
        points = prod(depth.shape[:-1])
        weights = depth.weights + cin * self.filters
        biases = self.filters if self.bias else 0
        macs = depth.macs + points * cin * self.filters
        shape = (*depth.shape[:-1], self.filters)
        if ex is not None:
            ex.append(f"pointwise: {cin} x {self.filters} = {cin * self.filters:,} weights, "
                      f"{biases:,} biases")
            ex.append(f"MACs: {depth.macs:,} depthwise + {fmt.shape(shape)} outputs x {cin} = "
                      f"{macs:,}")
        return Outcome(shape, weights, biases, 0, macs, bias_act_ops(self, prod(shape)),
                       depth.geometry, depth.window)

    def tensors(self, row):  # depthwise, pointwise, bias
        pointwise = row.input[-1] * self.multiplier * self.filters
        return (row.weights - pointwise, pointwise) + ((row.biases,) if self.bias else ())

    padded_copy = padded_input

    def kept(self, row, k):  # the input, then the depthwise result the pointwise reads
        save_padded(row, k, uneven(row.geometry.get("pads")))
        k.new(row.units // self.filters * row.input[-1] * self.multiplier)
        k.save_input()
        k.new()
        k.act(self.activation, True)

    def module(self, row):
        from ..backends.modules import SepConv
        return SepConv(self, row)

    keras_reads = ("SeparableConv1D", "SeparableConv2D")

    @classmethod
    def from_halves(cls, depthwise, pointwise, activation=None) -> str | None:
        """A depthwise convolution then a 1x1 one, each as read (a module's depthwise and
        pointwise halves), as one separable convolution; None where they are not that."""
        cin = depthwise.channels
        if not (depthwise.groups == cin > 0 and depthwise.filters % cin == 0 and
                pointwise.groups == 1 and set(pointwise.kernel) == {1} and
                set(pointwise.stride) == {1} and not depthwise.bias and
                depthwise.get("standard") is None):
            return None
        return cls.write(kernel=depthwise.kernel, filters=pointwise.filters,
                         padding=read_padding(depthwise), stride=depthwise.stride,
                         dilation=depthwise.dilation, multiplier=depthwise.filters // cin,
                         bias=pointwise.bias, activation=activation)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        return cls.write(kernel=k.sizes(cfg["kernel_size"]), filters=cfg["filters"],
                         multiplier=cfg.get("depth_multiplier", 1), **k.window(cfg),
                         **k.weighted(cfg))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return keras_window(self, row, "SeparableConv", self.filters, picture(self.kernel),
                            strides=unless(picture(self.stride), 1),
                            depth_multiplier=self.multiplier if self.multiplier != 1 else None,
                            dilation_rate=unless(picture(self.dilation), 1),
                            use_bias=None if self.bias else False,
                            activation=keras_act(self.activation))

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        cin = row.input[-1]
        depth = [("depthwise" if not s else s, c) for s, c in
                 conv_code(_Depthwise(self), row, cin * self.multiplier, cin, False)]
        rank = len(self.kernel)
        return depth + [("pointwise", nn_call(f"nn.Conv{rank}d", cin * self.multiplier,
                                              self.filters, 1, bias=None if self.bias else False))
                        ] + act_code(self.activation)


class _Depthwise:
    """A separable convolution's depthwise half, as conv_rule reads a layer."""
    kind, bias, activation, weights = "sepconv", False, None, None

    def __init__(self, layer):
        self.kernel, self.stride, self.dilation = layer.kernel, layer.stride, layer.dilation
        self.padding = layer.padding
