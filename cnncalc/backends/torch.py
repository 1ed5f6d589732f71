"""PyTorch backend: builds an ``nn.Module`` from the calculator's rows.

It never derives a size its own way: padding per side, transposed-convolution
crops and output padding, and concat crop offsets all come from ``calc``.
Input is channels-last as in the spec (N, *spatial, C); inside, tensors run
channels-first (N, C, *spatial), and flat tensors are (N, C)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import model as m
from ..calc import Summary, analyse

_ACTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
         "softmax": lambda: nn.Softmax(dim=1), "leakyrelu": lambda: nn.LeakyReLU(0.2),
         "gelu": nn.GELU, "linear": nn.Identity}


def _act(name):
    return _ACTS[name]() if name else nn.Identity()


def _flat_pads(pads) -> tuple:
    """[(before, after) per axis] → F.pad's order (last axis first)."""
    out = []
    for b, a in reversed(pads):
        out += [b, a]
    return tuple(out)


def _symmetric(pads) -> bool:
    return all(b == a for b, a in pads)


class Conv(nn.Module):
    def __init__(self, layer: m.Conv, row):
        super().__init__()
        rank, pads = len(layer.kernel), row.geometry["pads"]
        self.pad = None if _symmetric(pads) else _flat_pads(pads)
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
        self.op = cls(row.input[-1], layer.filters, layer.kernel, layer.stride,
                      tuple(b for b, _ in pads) if self.pad is None else 0,
                      layer.dilation, layer.groups, layer.bias)
        if layer.weights is not None:  # kernel=[[...]] in the spec; the bias starts at zero
            with torch.no_grad():
                self.op.weight.copy_(torch.tensor(layer.weights).reshape(self.op.weight.shape))
                if self.op.bias is not None:
                    self.op.bias.zero_()
        self.act = _act(layer.activation) if layer.activation else None

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.op(x)
        return x if self.act is None else self.act(x)


class Deconv(nn.Module):
    def __init__(self, layer: m.Deconv, row):
        super().__init__()
        rank = len(layer.kernel)
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
        self.op = cls(row.input[-1], layer.filters, layer.kernel, layer.stride, 0,
                      row.geometry["output_padding"], 1, layer.bias, layer.dilation)
        self.crop = (slice(None), slice(None)) + tuple(
            slice(b, n + b) for (b, _), n in zip(row.geometry["crops"], row.output[:-1]))
        self.needs_crop = any(b or a for b, a in row.geometry["crops"])
        self.act = _act(layer.activation)

    def forward(self, x):
        y = self.op(x)
        return self.act(y[self.crop] if self.needs_crop else y)


class Pool(nn.Module):
    """Max or average pooling. Average pooling counts only real pixels, as Keras does."""

    def __init__(self, layer, row):
        super().__init__()
        rank, pads = len(layer.pool), row.geometry["pads"]
        self.is_max = layer.kind == "maxpool"
        self.pads = _flat_pads(pads) if any(b or a for b, a in pads) else None
        # symmetric padding (at most half the window, as calc checks) runs inside the kernel,
        # which PyTorch allows only when the input alone is as large as the window
        native = _symmetric(pads) and all(n >= k for n, k in zip(row.input, layer.pool))
        self.padding = tuple(b for b, _ in pads) if native else None
        self.rank = rank
        self.kernel, self.stride = layer.pool, layer.stride
        self.layer_kind = layer.kind
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
    def __init__(self, layer, row):
        super().__init__()
        self.is_max = layer.kind == "globalmaxpool"

    def forward(self, x):
        dims = tuple(range(2, x.dim()))
        return x.amax(dims) if self.is_max else x.mean(dims)


def _last(x):
    """Channels-first map → channels-last (Keras order), so flatten and dense match Keras."""
    return x if x.dim() == 2 else x.movedim(1, -1)


class Flatten(nn.Module):
    def __init__(self, layer=None, row=None):
        super().__init__()

    def forward(self, x):
        return _last(x).flatten(1)


class Dense(nn.Module):
    def __init__(self, layer: m.Dense, row):
        super().__init__()
        self.op = nn.Linear(row.input[-1], layer.units, layer.bias)
        self.act = _act(layer.activation)

    def forward(self, x):
        if x.dim() > 2:  # Keras applies Dense to the last axis of a map
            return self.act(self.op(x.movedim(1, -1)).movedim(-1, 1))
        return self.act(self.op(x))


def _batchnorm(layer, row):
    rank = max(len(row.input) - 1, 1)
    cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[rank - 1]
    return cls(row.input[-1], eps=1e-3, momentum=0.01)  # Keras' epsilon and momentum 0.99


class ZeroPad(nn.Module):
    def __init__(self, layer, row):
        super().__init__()
        self.pads = _flat_pads(row.geometry["pads"])

    def forward(self, x):
        return F.pad(x, self.pads)


class AddRef(nn.Module):
    graph = True

    def __init__(self, layer, row):
        super().__init__()
        self.ref = layer.ref

    def forward(self, x, saved):
        return x + saved[self.ref]


class ConcatRef(nn.Module):
    graph = True

    def __init__(self, layer, row):
        super().__init__()
        self.ref = layer.ref
        self.crop = (slice(None), slice(None)) + tuple(
            slice(o, o + n) for o, n in zip(row.geometry["offsets"], row.input[:-1]))

    def forward(self, x, saved):
        return torch.cat([x, saved[self.ref][self.crop]], 1)


class Seq(nn.Module):
    """A chain of layers. Graph nodes get the saved tensors; plain layers do not."""
    graph = True

    def __init__(self, items, keep):
        super().__init__()
        self.steps = []
        for module, name in items:
            self.add_module(name, module)
            self.steps.append((module, getattr(module, "graph", False), name if name in keep else None))

    def forward(self, x, saved):
        for module, graph, keep in self.steps:
            x = module(x, saved) if graph else module(x)
            if keep is not None:
                saved[keep] = x
        return x


class Merge(nn.Module):
    graph = True

    def __init__(self, branches, is_add):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.is_add = is_add

    def forward(self, x, saved):
        outs = [b(x, saved) for b in self.branches]
        if self.is_add:
            y = outs[0]
            for o in outs[1:]:
                y = y + o
            return y
        return torch.cat(outs, 1)


_MODULES = {
    m.Conv: Conv, m.Deconv: Deconv, m.MaxPool: Pool, m.AvgPool: Pool,
    m.GlobalAvgPool: GlobalPool, m.GlobalMaxPool: GlobalPool, m.Flatten: Flatten,
    m.Dense: Dense, m.Dropout: lambda layer, row: nn.Dropout(layer.rate),
    m.BatchNorm: _batchnorm, m.ZeroPad: ZeroPad,
    m.Upsample: lambda layer, row: nn.Upsample(scale_factor=layer.factor, mode="nearest"),
    m.Act: lambda layer, row: _act(layer.activation),
    m.AddRef: AddRef, m.ConcatRef: ConcatRef,
}


class Net(nn.Module):
    """The whole spec. ``forward`` takes (N, *spatial, C) like the spec and Keras,
    and returns the output channels-last too. ``layers`` maps spec names to modules."""

    def __init__(self, summary: Summary):
        super().__init__()
        self.rank = len(summary.network.input.shape) - 1
        keep = m.referenced(summary.network.layers)
        rows = iter(summary.rows)
        self.layers: dict[str, nn.Module] = {}
        self.body = self._seq(summary.network.layers, rows, keep)
        self.depth = max((r.depth for r in summary.rows), default=0)

    def _seq(self, nodes, rows, keep):
        items = []
        for node in nodes:
            row = next(rows)
            if isinstance(node, (m.Add, m.Concat)):
                module = Merge([self._seq(b, rows, keep) for b in node.branches],
                               isinstance(node, m.Add))
            else:
                module = _MODULES[type(node)](node, row)
            self.layers[node.name] = module
            items.append((module, node.name))
        return Seq(items, keep)

    def forward(self, x):
        if x.dim() > 2:  # one copy to plain channels-first, so every layer runs its usual kernels
            x = x.movedim(-1, 1).contiguous()
        with _stack(self.depth):
            return _last(self.body(x, {}))


class _stack:
    """Nested blocks cost several Python frames each in nn.Module calls: give deep graphs
    room (the spec's nesting is capped, so this stays bounded)."""

    def __init__(self, depth: int):
        import sys
        self.sys, self.need = sys, 1000 + 40 * depth

    def __enter__(self):
        self.old = self.sys.getrecursionlimit()
        self.sys.setrecursionlimit(max(self.old, self.need))

    def __exit__(self, *exc):
        self.sys.setrecursionlimit(self.old)
        return False


def build(spec) -> Net:
    """An ``nn.Module`` for a network model or a calculator summary."""
    summary = spec if isinstance(spec, Summary) else analyse(spec)
    return Net(summary)
