"""Attention over a layer's splits: a tensor whose channels are R equal splits (R paths of
C channels, one after another), summed, and weighted per channel by a softmax across the
splits. SKNet's selective kernel (Li et al., CVPR 2019) and ResNeSt's split attention
(Zhang et al., 2020) are these two kinds around a small MLP:

    concat { branch { conv 3x3x64 ... } branch { conv 3x3x64 dilation 2 ... } }
    multiply { branch { } branch { splitsum 2 | globalavgpool | dense 32 relu
                                   | dense 128 | rsoftmax 2 } }
    splitsum 2
"""

from __future__ import annotations

from math import prod

from .base import Amount, Count, Layer, Outcome, RuleError, nn_call, saves_nothing


def _splits(layer, x, what):
    if x[-1] % layer.radix:
        raise RuleError(f"{what} {layer.radix}: the splits must divide the channels ({x[-1]})")


class SplitSum(Layer):
    keyword = "splitsum"
    also = ("splitsum",)
    doc = ("the sum of R equal splits of the channels (channel r x C / R + i of each split "
           "adds to i): SKNet's and ResNeSt's paths joined; C / R channels")
    example = "splitsum 2"
    args = (Count("radix", "the number of splits", example="2"),)
    colour = "#e1bee7"
    semantics = "PyTorch (timm's SelectiveKernel and SplitAttn: x.view(N, R, C / R, ...).sum(1))"

    kept = saves_nothing

    def rule(self, x, ex):
        _splits(self, x, "splitsum")
        c = x[-1] // self.radix
        if ex is not None:
            ex.append(f"channels: {x[-1]} / {self.radix} splits = {c}; each output the sum of "
                      f"{self.radix} values")
        out = (*x[:-1], c)
        return Outcome(out, ops=(self.radix - 1) * prod(out))

    def module(self, row):
        from ..backends.tensor_ops import SplitSum as Module
        return Module(self.radix, row.input[-1])

    torch_helper = '''class SplitSum(nn.Module):
    """The sum of R equal splits of the channels: (N, R x C, ...) -> (N, C, ...)."""

    def __init__(self, radix, channels):
        super().__init__()
        self.radix, self.channels = radix, channels

    def forward(self, x):
        return x.unflatten(1, (self.radix, self.channels // self.radix)).sum(1)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("SplitSum", self.radix, row.input[-1]))]


class RadixSoftmax(Layer):
    keyword = "rsoftmax"
    also = ("radixsoftmax",)
    doc = ("softmax across R splits, per channel (ResNeSt's rSoftMax, SKNet's attention): "
           "channels in G groups of R splits, (g, r, i), are weighted over r and come out "
           "split first, (r, g, i)")
    example = "rsoftmax 2"
    args = (Count("radix", "the number of splits", example="2"),)
    options = (Amount("groups", per_axis=False, example="1"),)
    colour = "#fff9c4"
    semantics = "PyTorch (timm's RadixSoftmax)"

    def kept(self, row, k):  # softmax's result; put split first, a copy unless G is 1
        k.new()
        k.save_output()
        if self.groups > 1:
            k.new()

    def rule(self, x, ex):
        if x[-1] % (self.radix * self.groups):
            raise RuleError(f"rsoftmax {self.radix} groups {self.groups}: {self.radix} x "
                            f"{self.groups} must divide the channels ({x[-1]})")
        if ex is not None:
            ex.append(f"a softmax over {self.radix} values for each of {x[-1] // self.radix} "
                      "channels")
        return Outcome(x, ops=prod(x))  # one per value, as softmax counts

    def module(self, row):
        from ..backends.tensor_ops import RadixSoftmax as Module
        return Module(self.radix, self.groups, row.input[-1])

    torch_helper = '''class RadixSoftmax(nn.Module):
    """Softmax across R splits per channel: channels (g, r, i) in, (r, g, i) out."""

    def __init__(self, radix, groups, channels):
        super().__init__()
        self.shape = (groups, radix, channels // (groups * radix))

    def forward(self, x):
        return x.unflatten(1, self.shape).transpose(1, 2).softmax(1).flatten(1, 3)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("RadixSoftmax", self.radix, self.groups, row.input[-1]))]
