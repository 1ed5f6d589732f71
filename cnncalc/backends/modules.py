"""Torch modules the kinds build on (``Layer.module``). They never derive a size: padding
per side, transposed-convolution crops and concat offsets come from the calculator's row.
Tensors run channels first inside (N, C, *spatial); flat tensors are (N, C)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.activations import act_module


def picture(x):
    """Spec order (width before height: the spec writes 443x592 for 443 wide) ↔ picture
    order (rows first, as NumPy, Pillow, Keras and PyTorch hold images): the last two
    spatial axes swap. ``x`` is channels last, (N, *spatial, C); 1-D maps stay as they are."""
    return x.transpose(-3, -2) if x.dim() >= 4 else x


def picture_weight(w):
    """A kernel between the module's spec order (..., kW, kH) and a file's picture order
    (..., kH, kW): convolution weights have 4 or 5 axes."""
    return w.transpose(-2, -1) if w.dim() >= 4 else w


def flat_pads(pads) -> tuple:
    """[(before, after) per axis] → F.pad's order (last axis first)."""
    out = []
    for b, a in reversed(pads):
        out += [b, a]
    return tuple(out)


def symmetric(pads) -> bool:
    return all(b == a for b, a in pads)


class Conv(nn.Module):
    """A convolution; asymmetric padding (Keras' 'same' with a stride) is padded first,
    since PyTorch's own padding is symmetric."""

    def __init__(self, layer, row, inplace=False):
        super().__init__()
        rank, pads = len(layer.kernel), row.geometry["pads"]
        self.pad = None if symmetric(pads) else flat_pads(pads)
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
        self.op = cls(row.input[-1], layer.filters, layer.kernel, layer.stride,
                      tuple(b for b, _ in pads) if self.pad is None else 0,
                      layer.dilation, layer.groups, layer.bias)
        if getattr(layer, "weights", None) is not None:  # kernel=[[...]]; the bias starts at 0
            w = self.op.weight
            written = torch.tensor(layer.weights, dtype=w.dtype)  # rows first, as on the page
            with torch.no_grad():
                w.copy_(picture_weight(written.reshape(picture_weight(w).shape)))
                if self.op.bias is not None:
                    self.op.bias.zero_()
        self.act = _fused(layer.activation)

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.op(x)
        return x if self.act is None else self.act(x)


def _fused(name):
    """An activation applied to a layer's own fresh output: in place where torch can."""
    if not name or name == "linear":
        return None
    module = act_module(name)
    if hasattr(module, "inplace"):
        module.inplace = True
    return module


class Deconv(nn.Module):
    def __init__(self, layer, row):
        super().__init__()
        rank = len(layer.kernel)
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
        self.op = cls(row.input[-1], layer.filters, layer.kernel, layer.stride, 0,
                      row.geometry["output_padding"], 1, layer.bias, layer.dilation)
        self.crop = (slice(None), slice(None)) + tuple(
            slice(b, n + b) for (b, _), n in zip(row.geometry["crops"], row.output[:-1]))
        self.needs_crop = any(b or a for b, a in row.geometry["crops"])
        self.act = _fused(layer.activation)

    def forward(self, x):
        y = self.op(x)
        y = y[self.crop] if self.needs_crop else y
        return y if self.act is None else self.act(y)


class Pool(nn.Module):
    """Max or average pooling. Average pooling counts only real pixels, as Keras does."""

    def __init__(self, layer, row):
        super().__init__()
        rank, pads = len(layer.pool), row.geometry["pads"]
        self.is_max = layer.kind == "maxpool"
        self.pads = flat_pads(pads) if any(b or a for b, a in pads) else None
        # symmetric padding (at most half the window, as the rule checks) runs inside the
        # kernel, which PyTorch allows only when the input alone is as large as the window
        native = symmetric(pads) and all(n >= k for n, k in zip(row.input, layer.pool))
        self.padding = tuple(b for b, _ in pads) if native else None
        self.kernel, self.stride = layer.pool, layer.stride
        self.max_fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
        self.avg_fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        self.fn = self.max_fn if self.is_max else self.avg_fn

    def forward(self, x):
        if self.pads is None:
            return self.fn(x, self.kernel, self.stride)
        if self.padding is not None:
            if self.is_max:
                return self.fn(x, self.kernel, self.stride, self.padding)
            return self.fn(x, self.kernel, self.stride, self.padding, count_include_pad=False)
        if self.is_max:
            return self.fn(F.pad(x, self.pads, value=float("-inf")), self.kernel, self.stride)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        count = self.fn(F.pad(ones, self.pads), self.kernel, self.stride)
        return self.fn(F.pad(x, self.pads), self.kernel, self.stride) / count


class GlobalPool(nn.Module):
    def __init__(self, is_max):
        super().__init__()
        self.is_max = is_max

    def forward(self, x):
        dims = tuple(range(2, x.dim()))
        return x.amax(dims) if self.is_max else x.mean(dims)


def channels_last(x):
    """Channels-first map → channels-last (Keras order), so flatten and dense match Keras."""
    return x if x.dim() == 2 else x.movedim(1, -1)


class Flatten(nn.Module):
    """Flattens in the order Keras does on a picture array: rows, columns, channels."""

    def forward(self, x):
        return picture(channels_last(x)).flatten(1)


class Dense(nn.Module):
    def __init__(self, layer, row):
        super().__init__()
        self.op = nn.Linear(row.input[-1], layer.features, layer.bias)
        self.act = _fused(layer.activation)

    def forward(self, x):
        if x.dim() > 2:  # Keras applies Dense to the last axis of a map
            y = self.op(x.movedim(1, -1)).movedim(-1, 1)
        else:
            y = self.op(x)
        return y if self.act is None else self.act(y)


class Pad(nn.Module):
    def __init__(self, pads, mode="constant"):
        super().__init__()
        self.pads, self.mode = flat_pads(pads), mode

    def forward(self, x):
        return F.pad(x, self.pads, mode=self.mode)


# --- merges: a module that combines a list of tensors -----------------------------------------

def _aligned(xs):
    """A flat (N, C) tensor broadcast over a map (N, C, *spatial) needs trailing 1s."""
    rank = max(x.dim() for x in xs)
    return [x if x.dim() == rank else x.reshape(*x.shape, *(1,) * (rank - x.dim())) for x in xs]


class Sum(nn.Module):
    """Adds its inputs; with ``inplace`` into the first, which the caller owns."""

    def forward(self, xs, inplace=False):
        if len(xs) == 1:
            return xs[0]
        xs = _aligned(xs)
        y = xs[0] if inplace else xs[0] + xs[1]
        for o in xs[1 if inplace else 2:]:
            y = y.add_(o) if inplace else y + o
        return y


class Product(nn.Module):
    def forward(self, xs, inplace=False):
        if len(xs) == 1:
            return xs[0]
        xs = _aligned(xs)
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
