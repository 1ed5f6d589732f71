"""Dense (fully connected) layers and flatten."""

from __future__ import annotations

from math import prod

from .. import fmt
from . import activations
from .base import FROZEN, SHARES, Count, Flag, Layer, Outcome, act_code, keras_act, nn_call, runs_half, uniform
from .conv import bias_act_ops, weighted_kept


class Dense(Layer):
    keyword = "dense"
    autocast = runs_half
    also = ("linear", "fc", "fullyconnected")
    doc = "fully connected; on a feature map it acts on the last axis per position, as Keras"
    example = "dense 4096 relu"
    args = (Count("features", "the number of outputs", example="4096"),)
    options = (Flag("nobias", "bias", False, True), activations.option(), FROZEN, SHARES)
    colour = "#9575cd"

    kept = weighted_kept

    def rule(self, x, ex):
        cin = x[-1]
        weights = cin * self.features
        biases = self.features if self.bias else 0
        macs = prod(x[:-1]) * weights  # per position on a feature map
        out = (*x[:-1], self.features)
        if ex is not None:
            ex.append(f"weights: {cin:,} x {self.features:,} = {weights:,}")
            ex.append(f"biases: {biases:,}")
            if len(x) > 1:
                ex.append(f"applied to the last axis of {fmt.shape(x)} at each of "
                          f"{fmt.count(prod(x[:-1]))} positions, as Keras does")
            ex.append(f"MACs: {macs:,}")
        return Outcome(out, weights, biases, 0, macs, bias_act_ops(self, prod(out)),
                       window=None if len(x) > 1 else "all")

    def last_note(self, row):
        """A network ending in 'dense 10' on a map: a PyTorch user meant a classifier."""
        if len(row.input) > 1:
            return (f"on the {fmt.shape(row.input)} map it acts at each position, as Keras' "
                    "Dense; 'flatten' (or 'globalavgpool') before it makes a classifier")
        return None

    def module(self, row):
        from ..backends.modules import Dense
        return Dense(self, row)

    keras_reads = ("Dense",)
    torch_reads = ("Linear",)
    onnx_reads = ("Gemm", "MatMul")

    @classmethod
    def from_read(cls, r):  # on the channels: of a vector, or of a channels-last map
        if not r.on_channels:
            r.refuse("a linear layer on the last spatial axis of a channels-first map")
        return cls.write(features=r.units, bias=r.bias)
    darknet_reads = ("connected",)

    @classmethod
    def from_darknet(cls, section):  # on a map, Darknet flattens it first
        (h, w, _), n = section.shape, section.int("output", 1)
        return ([Flatten.write()] if (h, w) != (1, 1) else []) + [cls.write(features=n)], \
            (1, 1, n)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        return cls.write(features=cfg["units"], **k.weighted(cfg))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.Dense", self.features, use_bias=None if self.bias else False,
                        activation=keras_act(self.activation))]

    torch_helper = '''class ChannelLinear(nn.Linear):
    """nn.Linear on the channels at each position of an (N, C, ...) map (ConvNeXt's
    Permute, Linear, Permute): its weights are a Linear's."""

    def forward(self, x):
        y = super().forward(x.permute(0, *range(2, x.dim()), 1))
        return y.permute(0, y.dim() - 1, *range(1, y.dim() - 1))
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) > 1:  # per position on a map
            # not in place: on ChannelLinear's permuted result, autograd would copy the map
            return [("", nn_call("ChannelLinear", row.input[-1], self.features,
                                 bias=None if self.bias else False))] + \
                act_code(self.activation, inplace=False)
        return [("", nn_call("nn.Linear", row.input[-1], self.features,
                             bias=None if self.bias else False))] + act_code(self.activation)


class Flatten(Layer):
    keyword = "flatten"
    doc = "a feature map to a vector, in channels-last order (as Keras)"
    example = "flatten"
    colour = "#bdbdbd"

    grad_view = True

    @classmethod
    def rank_after(cls, fields, rank):
        return 0

    def kept(self, row, k):  # channels last, as Keras flattens: a copy, unless a view will do
        if any(uniform(n != 1) for n in row.input[:-1]):
            k.new()

    def rule(self, x, ex):
        n = prod(x)
        if ex is not None:
            ex.append(f"{' x '.join(map(str, x))} = {n:,}")
        return Outcome((n,))

    def module(self, row):
        from ..backends.modules import Flatten
        return Flatten(len(row.input) - 1)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", "nn.Flatten()")]

    keras_reads = ("Flatten",)
    torch_reads = ("Flatten",)
    onnx_reads = ("Flatten",)

    @classmethod
    def from_read(cls, r):  # a vector already: it passes its input on
        if r.get("dims", (1, -1)) != (1, -1):
            r.refuse(f"a flatten of dimensions {r.dims} (cnncalc's keeps the batch, flattens "
                     "the rest)")
        return cls.write() if r.sizes else None

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return ["layers.Flatten()"]
