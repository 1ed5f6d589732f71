"""Layers that move channels without weights: a slice of them, TensorFlow's space-to-depth,
a channel shuffle."""

from __future__ import annotations

from .base import (
    Amount,
    Count,
    Layer,
    Outcome,
    RuleError,
    nn_call,
    same_tensor,
    saves_nothing,
)
from .reshaping import PixelUnshuffle


class Slice(Layer):
    keyword = "slice"
    doc = ("keeps N channels, from channel S on ('start S', 0 by default): PyTorch's "
           "x[:, S:S + N], a part of a channel split (RexNet, DPN, Res2Net)")
    example = "slice 16 start 8"
    args = (Count("channels", "the number of channels kept", example="16"),)
    options = (Amount("start", default=0, minimum=0, per_axis=False, example="8",
                      help="start S (the first channel kept; 0 by default)"),)
    colour = "#eeeeee"
    semantics = "PyTorch (x[:, S:S + N])"

    kept = same_tensor  # a view: what keeps it keeps the whole tensor

    def rule(self, x, ex):
        c, end = x[-1], self.start + self.channels
        if isinstance(c, int) and end > c:
            raise RuleError(f"slice {self.channels} start {self.start}: channels {self.start} "
                            f"to {end - 1} of {c}; the input has {c}")
        if ex is not None:
            ex.append(f"channels {self.start} to {end - 1} of {c}: {self.channels}")
        return Outcome((*x[:-1], self.channels), window=tuple((1, 1, 0) for _ in x[:-1]))

    def module(self, row):
        from ..backends.modules import Channels
        return Channels(self.start, self.channels)

    torch_helper = '''class Channels(nn.Module):
    """Keeps n channels from channel start on: x[:, start:start + n]."""

    def __init__(self, start, n):
        super().__init__()
        self.start, self.n = start, n

    def forward(self, x):
        return x[:, self.start:self.start + self.n]
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("Channels", self.start, self.channels))]


class SpaceToDepth(PixelUnshuffle):
    keyword = "spacetodepth"
    also = ("space_to_depth",)
    doc = ("space to depth in TensorFlow's order: R x R blocks become R^2 times the channels, "
           "block row, then block column, then channel (TResNet's stem; pixelunshuffle is "
           "PyTorch's order, channel first)")
    example = "spacetodepth 4"
    semantics = "TensorFlow (tf.nn.space_to_depth)"

    def module(self, row):
        from ..backends.tensor_ops import SpaceToDepth
        return SpaceToDepth(self.factor)

    torch_helper = '''class SpaceToDepth(nn.Module):
    """R x R blocks to channels in TensorFlow's order: block row, block column, channel."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, c, h, w = x.shape
        r = self.factor
        x = x.view(n, c, h // r, r, w // r, r).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, c * r * r, h // r, w // r)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("SpaceToDepth", self.factor))]


class Shuffle(Layer):
    keyword = "shuffle"
    doc = ("channel shuffle over G groups (ShuffleNet): channel g x (C / G) + i goes to "
           "i x G + g")
    example = "shuffle 2"
    args = (Count("groups", "the number of groups", example="2"),)
    torch_reads = ("ChannelShuffle",)
    colour = "#e1bee7"
    fold = True
    semantics = "PyTorch (torchvision's channel_shuffle)"

    kept = saves_nothing

    def rule(self, x, ex):
        if x[-1] % self.groups:
            raise RuleError(f"shuffle {self.groups}: the groups must divide the channels "
                            f"({x[-1]})")
        return Outcome(x)

    def module(self, row):
        from ..backends.tensor_ops import ChannelShuffle
        return ChannelShuffle(self.groups, row.input)

    torch_helper = '''class ChannelShuffle(nn.Module):
    """torchvision's channel_shuffle: (N, G, C / G, H, W), transposed, flattened back."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) != 3:
            return super().code(row)
        return [("", nn_call("ChannelShuffle", self.groups))]

