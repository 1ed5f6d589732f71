"""Torch modules the kinds build on (``Layer.module``). They never derive a size: padding
per side, transposed-convolution crops and concat offsets come from the calculator's row.
Tensors run channels first inside (N, C, *spatial); flat tensors are (N, C). Every shape
decision is made when the module is built (from the row), none from a tensor at run time,
so that torch.fx traces these modules as plain torch code (``cnncalc import torch``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.activations import IDENTITY, act_module
from ..layers.pooling import MaxPool


def picture(x, rank):
    """Spec order (width before height: the spec writes 443x592 for 443 wide) ↔ picture
    order (rows first, as NumPy, Pillow, Keras and PyTorch hold images): the last two
    spatial axes swap. ``x`` is channels last, (N, *spatial, C), with ``rank`` spatial axes;
    1-D maps and vectors stay as they are."""
    return x.transpose(rank - 1, rank) if rank >= 2 else x


# Axes are moved with explicit, positive permutations: PyTorch's ONNX exporter writes an
# invalid Transpose for movedim(-1, 1).
def to_last(x, rank):
    """(N, C, *spatial) → (N, *spatial, C)."""
    return x.permute(0, *range(2, rank + 2), 1) if rank else x


def to_first(x, rank):
    """(N, *spatial, C) → (N, C, *spatial)."""
    return x.permute(0, rank + 1, *range(1, rank + 1)) if rank else x


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

    def __init__(self, layer, row, filters=None, groups=None, bias=None, activation=True):
        super().__init__()
        rank, pads = len(layer.kernel), row.geometry["pads"]
        self.pad = None if symmetric(pads) else flat_pads(pads)
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
        self.op = cls(row.input[-1], filters or layer.filters, layer.kernel, layer.stride,
                      tuple(b for b, _ in pads) if self.pad is None else 0,
                      layer.dilation, groups or layer.groups,
                      layer.bias if bias is None else bias)
        if getattr(layer, "weights", None) is not None:  # kernel=[[...]]; the bias starts at 0
            w = self.op.weight
            written = torch.tensor(layer.weights, dtype=w.dtype)  # rows first, as on the page
            with torch.no_grad():
                w.copy_(picture_weight(written.reshape(picture_weight(w).shape)))
                if self.op.bias is not None:
                    self.op.bias.zero_()
        self.act = _fused(layer.activation) if activation else None

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.op(x)
        return x if self.act is None else self.act(x)


class StdConv(Conv):
    """'stdconv': Conv with its weights standardised per filter on each call, and an
    optional learnable gain per filter times a constant (timm's ScaledStdConv2d)."""

    def __init__(self, layer, row):
        super().__init__(layer, row)
        self.eps, self.scale = layer.eps, layer.scale
        self.gain = nn.Parameter(torch.ones(layer.filters)) if layer.gain else None

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        w = self.op.weight
        g = None if self.gain is None else self.gain * self.scale
        w = F.batch_norm(w.reshape(1, w.shape[0], -1), None, None, g, training=True,
                         momentum=0.0, eps=self.eps).reshape_as(w)
        x = self.op._conv_forward(x, w, self.op.bias)
        return x if self.act is None else self.act(x)


def _fused(name):
    """An activation applied to a layer's own fresh output: in place where torch can."""
    if not name or name == IDENTITY:
        return None
    module = act_module(name)
    if hasattr(module, "inplace"):
        module.inplace = True
    return module


class SepConv(nn.Module):
    """Keras SeparableConv2D: depthwise (no bias), then pointwise (the bias)."""

    def __init__(self, layer, row):
        super().__init__()
        cin = row.input[-1]
        self.depthwise = Conv(layer, row, filters=cin * layer.multiplier, groups=cin,
                              bias=False, activation=False)
        rank = len(layer.kernel)
        self.pointwise = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1](
            cin * layer.multiplier, layer.filters, 1, bias=layer.bias)
        self.act = _fused(layer.activation)

    def forward(self, x):
        y = self.pointwise(self.depthwise(x))
        return y if self.act is None else self.act(y)


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
        self.is_max = isinstance(layer, MaxPool)
        self.pads = flat_pads(pads) if any(b or a for b, a in pads) else None
        # symmetric padding (at most half the window, as the rule checks) runs inside the
        # kernel, which PyTorch allows only when the input alone is as large as the window
        native = symmetric(pads) and all(n >= k for n, k in zip(row.input, layer.pool))
        self.padding = tuple(b for b, _ in pads) if native else None
        self.kernel, self.stride = layer.pool, layer.stride
        self.max_fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
        self.avg_fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        self.fn = self.max_fn if self.is_max else self.avg_fn
        self.countpad = getattr(layer, "countpad", False)  # PyTorch's count_include_pad
        if self.pads is not None and self.padding is None and not self.countpad:
            # (check reads max pools as average)
            ones = torch.ones((1, 1, *row.input[:-1]))
            count = self.avg_fn(F.pad(ones, self.pads), self.kernel, self.stride)
            self.register_buffer("count", count, persistent=False)  # not a weight: computed

    def forward(self, x):
        if self.pads is None:
            return self.fn(x, self.kernel, self.stride)
        if self.padding is not None:
            if self.is_max:
                return self.fn(x, self.kernel, self.stride, self.padding)
            return self.fn(x, self.kernel, self.stride, self.padding,
                           count_include_pad=self.countpad)
        if self.is_max:
            return self.fn(F.pad(x, self.pads, value=float("-inf")), self.kernel, self.stride)
        if self.countpad:  # the padding's zeros are averaged in
            return self.fn(F.pad(x, self.pads), self.kernel, self.stride)
        # Keras averages real pixels only: divide by how many each window holds
        return self.fn(F.pad(x, self.pads), self.kernel, self.stride) / self.count


class GlobalPool(nn.Module):
    def __init__(self, is_max, rank, keepdims=False):
        super().__init__()
        self.is_max, self.dims, self.keepdims = is_max, tuple(range(2, 2 + rank)), keepdims

    def forward(self, x):
        if self.is_max:
            return x.amax(self.dims, keepdim=self.keepdims)
        return x.mean(self.dims, keepdim=self.keepdims)


class BatchNormPart(nn.Module):
    """Batch normalisation with its scale or its offset left out (Keras' scale=False or
    center=False): the moving statistics as PyTorch keeps them, the learnt part kept."""

    def __init__(self, channels, eps, scale, center, rank):
        super().__init__()
        cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[max(rank, 1) - 1]
        self.norm = cls(channels, eps=eps, momentum=0.01, affine=False)
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if center else None
        self.shape = (channels,) + (1,) * rank

    def forward(self, x):
        y = self.norm(x)
        if self.weight is not None:
            y = y * self.weight.view(self.shape)
        if self.bias is not None:
            y = y + self.bias.view(self.shape)
        return y


class Affine(nn.Module):
    """x times a scale plus an offset, per tensor (Keras' Rescaling), or per channel with
    statistics kept as buffers (Keras' adapted Normalization: mean, variance, count)."""

    def __init__(self, scale=1.0, offset=0.0, channels=None, rank=0):
        super().__init__()
        self.scale, self.offset = scale, offset
        if channels is not None:
            self.register_buffer("mean", torch.zeros(channels))
            self.register_buffer("variance", torch.ones(channels))
            self.register_buffer("count", torch.zeros(()))
            self.shape = (channels,) + (1,) * rank

    def forward(self, x):
        if hasattr(self, "mean"):
            return (x - self.mean.view(self.shape)) / self.variance.view(self.shape).sqrt()
        return x * self.scale + self.offset


def channels_last(x, rank):
    """Channels-first map → channels-last (Keras order), so flatten and dense match Keras."""
    return to_last(x, rank)


class Flatten(nn.Module):
    """Flattens in the order Keras does on a picture array: rows, columns, channels."""

    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def forward(self, x):
        return picture(channels_last(x, self.rank), self.rank).flatten(1)


class Dense(nn.Module):
    def __init__(self, layer, row):
        super().__init__()
        self.op = nn.Linear(row.input[-1], layer.features, layer.bias)
        self.act = _fused(layer.activation)
        self.rank = len(row.input) - 1  # on a map, Keras applies Dense to its last axis

    def forward(self, x):
        # the activation before the channels go back: on the Linear's own contiguous
        # result, as a model written channels-last runs it (on the permuted view, an
        # in-place one makes autograd copy the whole map twice)
        y = self.op(to_last(x, self.rank) if self.rank else x)
        y = y if self.act is None else self.act(y)
        return to_first(y, self.rank) if self.rank else y


class ChannelNorm(nn.Module):
    """LayerNorm over the channels at each position (channels first inside)."""

    def __init__(self, channels, eps, rank):
        super().__init__()
        self.norm, self.rank = nn.LayerNorm(channels, eps=eps), rank

    def forward(self, x):
        return to_first(self.norm(to_last(x, self.rank)), self.rank) if self.rank else self.norm(x)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole example's input with probability p and
    scale the rest; in inference, the identity."""

    def __init__(self, p, rank):
        super().__init__()
        self.p, self.rank = p, rank

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (self.rank + 1), device=x.device,
                           dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class LayerScale(nn.Module):
    def __init__(self, channels, init, rank):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init)))
        self.shape = (1, channels, *(1,) * rank)

    def forward(self, x):
        return x * self.gamma.reshape(self.shape)


class Channels(nn.Module):
    """'slice N start S': channels S to S + N (the module runs channels first)."""

    def __init__(self, start, n):
        super().__init__()
        self.start, self.n = start, n

    def forward(self, x):
        return x[:, self.start:self.start + self.n]


class ScalarAffine(nn.Module):
    """'affine': x times a learnt scalar, plus a learnt scalar unless 'noshift'."""

    def __init__(self, init=1.0, shift=True):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))
        self.bias = nn.Parameter(torch.zeros(1)) if shift else None

    def forward(self, x):
        return x * self.scale + self.bias if self.bias is not None else x * self.scale


class GRN(nn.Module):
    """'grn': global response normalisation over the map's axes (channels first)."""

    def __init__(self, channels, eps, rank):
        super().__init__()
        self.eps, self.dims = eps, tuple(range(2, 2 + rank))
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * len(self.dims)
        g = x.norm(p=2, dim=self.dims, keepdim=True)
        n = g / (g.mean(dim=1, keepdim=True) + self.eps)
        # timm's GlobalResponseNorm: one fused product and sum on x * n
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * n)


class PassOn(nn.Module):
    """An output marker: the current tensor goes on unchanged (the network collects the
    output). A head's block gets [its output, the block's input]: the input goes on."""

    def __init__(self, ref=None, head=False):
        super().__init__()
        self.ref, self.head = ref, head

    def forward(self, xs, inplace=False):
        if not isinstance(xs, list):
            return xs
        return xs[-1] if self.head else xs[0]

