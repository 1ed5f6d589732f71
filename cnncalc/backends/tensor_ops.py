"""The torch modules of the kinds that move, cut or merge tensors (reshape, pixel shuffle,
channel shuffle, crop, pad, the splits of split attention, add, subtract, multiply,
concat)."""


from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modules import channels_last, flat_pads, picture, to_first


def to_keras(x, rank):
    """Channels-first in the spec's order → channels-last in picture order (Keras' arrays)."""
    return picture(channels_last(x, rank), rank)


def from_keras(y, rank):
    """The way back: (N, *picture, C) → (N, C, *spec)."""
    return to_first(picture(y, rank), rank)


class Reshape(nn.Module):
    """Keras Reshape: the values in the order rows, columns, channels."""

    def __init__(self, before, after):
        super().__init__()
        spatial = tuple(after[:-1])
        self.shape = (*(spatial if len(spatial) < 2 else (*spatial[:-2], spatial[-1],
                                                          spatial[-2])), after[-1])
        self.before, self.after = len(before) - 1, len(after) - 1

    def forward(self, x):
        y = to_keras(x, self.before).reshape(-1, *self.shape)
        return from_keras(y, self.after)


class PixelShuffle(nn.Module):
    """PyTorch's pixel (un)shuffle, on the picture's rows and columns."""

    def __init__(self, factor, inverse):
        super().__init__()
        self.factor, self.inverse = factor, inverse

    def forward(self, x):
        fn = F.pixel_unshuffle if self.inverse else F.pixel_shuffle
        return fn(x.transpose(2, 3), self.factor).transpose(2, 3)


class SpaceToDepth(nn.Module):
    """'spacetodepth': blocks to channels, block row, block column, channel; the module
    runs (N, C, W, H), so the block's column comes before its row here."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, c, w, h = x.shape
        r = self.factor
        x = x.reshape(n, c, w // r, r, h // r, r).permute(0, 5, 3, 1, 2, 4)
        return x.reshape(n, c * r * r, w // r, h // r)


class ChannelShuffle(nn.Module):
    """torchvision's channel_shuffle: (N, G, C / G, ...) transposed to (N, C / G, G, ...)."""

    def __init__(self, groups, shape):
        super().__init__()
        self.groups, self.channels, self.spatial = groups, shape[-1], tuple(shape[:-1])

    def forward(self, x):
        g, c = self.groups, self.channels
        return x.reshape(-1, g, c // g, *self.spatial).transpose(1, 2) \
            .reshape(-1, c, *self.spatial)


class SplitSum(nn.Module):
    """'splitsum R': (N, R x C, ...) -> (N, C, ...), the R splits summed."""

    def __init__(self, radix, channels):
        super().__init__()
        self.shape = (radix, channels // radix)

    def forward(self, x):
        return x.unflatten(1, self.shape).sum(1)


class RadixSoftmax(nn.Module):
    """'rsoftmax R groups G': channels (g, r, i) in, softmax over r, (r, g, i) out."""

    def __init__(self, radix, groups, channels):
        super().__init__()
        self.shape = (groups, radix, channels // (groups * radix))

    def forward(self, x):
        return x.unflatten(1, self.shape).transpose(1, 2).softmax(1).flatten(1, 3)


class Crop(nn.Module):
    def __init__(self, crops, size):
        super().__init__()
        self.slices = (slice(None), slice(None)) + tuple(
            slice(b, b + n) for (b, _), n in zip(crops, size))

    def forward(self, x):
        return x[self.slices]


class Pad(nn.Module):
    def __init__(self, pads, mode="constant"):
        super().__init__()
        self.pads, self.mode = flat_pads(pads), mode

    def forward(self, x):
        return F.pad(x, self.pads, mode=self.mode)


def align(xs, ranks):
    """A flat (N, C) tensor broadcast over a map (N, C, *spatial) needs trailing axes of 1;
    ``ranks`` are the inputs' spatial axes, known when the module is built."""
    top = max(ranks)
    return [x if r == top else x[(slice(None), slice(None)) + (None,) * (top - r)]
            for x, r in zip(xs, ranks)]


def _may_overwrite() -> bool:
    """A merge may write into its first input when no gradient is recorded; otherwise that
    tensor may be saved for the backward pass (a ReLU keeps its output). A plain bool, not a
    tensor's attribute: torch.fx traces the module."""
    return not torch.is_grad_enabled()


class Sum(nn.Module):
    """Adds its inputs; with ``inplace`` into the first, which the caller owns."""

    def forward(self, xs, inplace=False):
        if len(xs) == 1:
            return xs[0]
        inplace = inplace and _may_overwrite()
        y = xs[0] if inplace else xs[0] + xs[1]
        for o in xs[1 if inplace else 2:]:
            y = y.add_(o) if inplace else y + o
        return y


class Difference(nn.Module):
    """The first input minus the second ('subtract'); in place into the first when owned."""

    def forward(self, xs, inplace=False):
        if len(xs) == 1:
            return xs[0]
        return xs[0].sub_(xs[1]) if inplace and _may_overwrite() else xs[0] - xs[1]


class Product(nn.Module):
    def forward(self, xs, inplace=False):
        if len(xs) == 1:
            return xs[0]
        inplace = inplace and _may_overwrite()
        y = xs[0] if inplace else xs[0] * xs[1]
        for o in xs[1 if inplace else 2:]:
            y = y.mul_(o) if inplace else y * o
        return y


class Cat(nn.Module):
    def __init__(self, offsets=None, size=()):
        super().__init__()
        self.crop = None if offsets is None else (slice(None), slice(None)) + tuple(
            slice(o, o + n) for o, n in zip(offsets, size))

    def forward(self, xs, inplace=False):
        if self.crop is not None:  # centre-crop the saved tensor to the current size
            xs = [xs[0], xs[1][self.crop]]
        return torch.cat(xs, 1)

