"""Normalisation layers."""

from __future__ import annotations

from math import prod

from .base import (Foreign, FROZEN, Count, Flag, Layer, Outcome, Real, RuleError, nn_call, promotes)


class BatchNorm(Layer):
    keyword = "batchnorm"
    also = ("batchnormalization", "batchnorm2d", "batchnorm1d", "bn")
    doc = ("batch normalisation: 2C trainable (scale, offset), 2C non-trainable (moving mean "
           "and variance); Keras' momentum 0.99 and, unless given, epsilon 1e-3")
    example = "batchnorm"
    colour = "#b0bec5"
    fold = True
    # PyTorch's and ONNX's default is 1e-5: an imported model keeps its own, so its values stay
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default; PyTorch's is 1e-5)"),
               Flag("noscale", "scale", False, True, help="noscale (Keras' scale=False)"),
               Flag("nocenter", "center", False, True, help="nocenter (Keras' center=False)"),
               FROZEN)

    def rule(self, x, ex):
        c = x[-1]
        learnt = [w for w, on in (("scale", self.scale), ("offset", self.center)) if on]
        if ex is not None:
            ex.append(f"trainable: {' and '.join(learnt) or 'nothing'}, {len(learnt)} x {c} = "
                      f"{len(learnt) * c:,}; non-trainable: moving mean and variance, 2 x {c} "
                      f"= {2 * c:,}")
        # inference: one scale, one shift
        return Outcome(x, c * self.scale, c * self.center, 2 * c, ops=2 * prod(x))

    def module(self, row):
        from torch import nn
        rank = max(len(row.input) - 1, 1)
        if not (self.scale and self.center):
            from ..backends.modules import BatchNormPart
            return BatchNormPart(row.input[-1], self.eps, self.scale, self.center,
                                 len(row.input) - 1)
        cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[rank - 1]
        return cls(row.input[-1], eps=self.eps, momentum=0.01)  # Keras' momentum 0.99

    keras_reads = ("BatchNormalization",)
    torch_reads = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
    onnx_reads = ("BatchNormalization",)

    @classmethod
    def from_read(cls, r):
        if not r.affine or not r.stats:
            r.refuse("batch norm without its scale and offset or running statistics")
        return cls.write(eps=r.eps)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        if cfg.get("axis", -1) not in (-1, [-1], 3, [3]):
            raise Foreign(f"BatchNormalization on axis {cfg['axis']}")
        return cls.write(eps=cfg.get("epsilon", 1e-3), scale=bool(cfg.get("scale", True)),
                         center=bool(cfg.get("center", True)))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.BatchNormalization", epsilon=None if self.eps == 1e-3 else self.eps,
                        scale=None if self.scale else False,
                        center=None if self.center else False)]

    torch_helper = '''class BatchNormPart(nn.Module):
    """Batch normalisation with its scale or its offset left out (Keras' scale=False or
    center=False): PyTorch's BatchNorm has both or neither."""

    def __init__(self, channels, eps, scale, center, momentum=0.01):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if center else None

    def forward(self, x):
        y = self.norm(x)
        if self.weight is not None:
            y = y * self.weight[:, None, None]
        return y if self.bias is None else y + self.bias[:, None, None]
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = max(len(row.input) - 1, 1)
        if not (self.scale and self.center):
            if len(row.input) != 3:  # the helper is written for pictures, (N, C, H, W)
                return super().code(row)
            return [("", nn_call("BatchNormPart", row.input[-1], self.eps, self.scale,
                                 self.center))]
        return [("", nn_call(f"nn.BatchNorm{rank}d", row.input[-1], eps=self.eps, momentum=0.01))]


class _Normal(Layer):
    """Normalisation over the channels, with a learnt scale and offset per channel."""
    colour = "#b0bec5"
    fold = True
    spatial = False  # statistics over the map too: every output then sees the whole input

    def counts(self, c):
        return 2 * c  # scale and offset

    def rule(self, x, ex):
        c = x[-1]
        self.check(x)
        w = self.counts(c)
        if ex is not None:
            ex.append(f"trainable: scale and offset, {w:,}" if w else "no parameters")
        return Outcome(x, w // 2, w - w // 2, ops=2 * prod(x),
                       window="all" if self.spatial and len(x) > 1 else None)

    def check(self, x):
        pass


class LayerNorm(_Normal):
    keyword = "layernorm"
    also = ("layernormalization",)
    doc = ("normalises each position over its channels, as ConvNeXt and ViT use it (Keras "
           "LayerNormalization on the channel axis): 2C parameters")
    example = "layernorm eps 1e-6"
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default)"), FROZEN)

    def kept(self, row, k):  # its input, and a float32 mean and 1/std per position
        k.save_input()
        k.new()
        k.bytes(2 * 4 * (row.units // row.output[-1]))

    def module(self, row):
        from ..backends.modules import ChannelNorm
        return ChannelNorm(row.input[-1], self.eps, len(row.input) - 1)

    torch_helper = '''class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels at each position of an (N, C, H, W) map."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
'''

    keras_reads = ("LayerNormalization",)
    torch_reads = ("LayerNorm",)
    onnx_reads = ("LayerNormalization",)

    @classmethod
    def from_read(cls, r):
        if not r.on_channels:
            r.refuse(f"layer norm over {r.normalized} (cnncalc's layernorm is over the "
                     "channels, on a channels-last tensor)")
        if not r.affine:
            r.refuse("layer norm without its scale and offset")
        return cls.write(eps=r.eps)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(eps=cfg.get("epsilon", 1e-3))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.LayerNormalization", epsilon=self.eps)]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) == 1:
            return [("", nn_call("nn.LayerNorm", row.input[-1], eps=self.eps))]
        if len(row.input) != 3:
            return super().code(row)
        return [("", nn_call("LayerNorm2d", row.input[-1], eps=self.eps))]


class GroupNorm(_Normal):
    keyword = "groupnorm"
    also = ("groupnormalization",)
    doc = "normalises groups of channels per example (Keras GroupNormalization): 2C parameters"
    example = "groupnorm 32"
    spatial = True
    args = (Count("groups", "the number of groups", example="32"),)
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default)"), FROZEN)

    def kept(self, row, k):  # its input, and a float32 mean and 1/std per group
        k.save_input()
        k.new()
        k.bytes(2 * 4 * self.groups)

    def check(self, x):
        if x[-1] % self.groups:
            raise RuleError(f"groupnorm {self.groups}: the groups must divide the channels "
                            f"({x[-1]})")

    def module(self, row):
        from torch import nn
        return nn.GroupNorm(self.groups, row.input[-1], self.eps)

    keras_reads = ("GroupNormalization",)
    torch_reads = ("GroupNorm",)
    onnx_reads = ("GroupNormalization",)

    @classmethod
    def from_read(cls, r):
        if not r.affine:
            r.refuse("group norm without its scale and offset")
        return cls.write(groups=r.groups, eps=r.eps)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(groups=cfg["groups"], eps=cfg.get("epsilon", 1e-3))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.GroupNormalization", self.groups, epsilon=self.eps)]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.GroupNorm", self.groups, row.input[-1], eps=self.eps))]


class GRN(_Normal):
    keyword = "grn"
    doc = ("global response normalisation (ConvNeXt V2): each channel's L2 norm over the map, "
           "over the mean of those norms ('eps E', 1e-6); x + offset + scale * x * that: 2C "
           "parameters")
    example = "grn"
    spatial = True
    autocast = promotes  # its float32 scale and offset promote a half input
    options = (Real("eps", "eps", 1e-6, help="eps 1e-6 (ConvNeXt V2's)"), FROZEN)
    semantics = "PyTorch (timm's GlobalResponseNorm)"
    # ONNX has no such operator: the reader makes one of the ReduceL2 chain exporters write
    onnx_reads = ("GlobalResponseNormalization",)

    def rule(self, x, ex):
        if len(x) < 2:
            raise RuleError("grn normalises over a map: it needs one, received a vector")
        out = super().rule(x, ex)
        out.ops = 5 * prod(x)  # square and sum, the ratio, two products, the sum
        return out

    def kept(self, row, k):  # its input, x times the ratio (for the scale's gradient),
        k.save_input()        # and per channel the norms and the ratios, and their mean
        k.save(k.store(row.units))
        k.new()
        k.values(2 * row.output[-1] + 1)

    def first_gradient(self, row):  # x * n's, the output's times the scale
        return row.units

    def scratch(self, row):  # the output's gradient times x * n, summed for the scale's
        return row.units

    def module(self, row):
        from ..backends.modules import GRN
        return GRN(row.input[-1], self.eps, len(row.input) - 1)

    torch_helper = '''class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2) on an (N, C, H, W) map."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):  # timm's GlobalResponseNorm, channels first
        g = x.norm(p=2, dim=(2, 3), keepdim=True)
        n = g / (g.mean(dim=1, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1),
                                 x * n)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) != 3:
            return super().code(row)
        return [("", nn_call("GRN", row.input[-1], eps=self.eps))]


class InstanceNorm(_Normal):
    keyword = "instancenorm"
    doc = ("normalises each channel of each example (PyTorch InstanceNorm): no parameters, "
           "or 2C with 'affine'")
    example = "instancenorm affine"
    spatial = True
    options = (Flag("affine", "affine", True, False), Real("eps", "eps", 1e-5,
                                                           help="eps 1e-5 (PyTorch's default)"),
               FROZEN)
    semantics = "PyTorch (InstanceNorm; Keras has no such layer)"

    torch_reads = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
    onnx_reads = ("InstanceNormalization",)

    def counts(self, c):
        return 2 * c if self.affine else 0

    def kept(self, row, k):  # its input, a mean and 1/std per channel (and, affine, the scale
        k.save_input()       # repeated for each example: PyTorch runs it as a batchnorm)
        k.new()
        k.bytes(4 * row.output[-1] * (3 if self.affine else 2))

    def check(self, x):
        if len(x) == 1:  # PyTorch would read (N, C) as one unbatched example of length C
            raise RuleError(f"instancenorm needs a feature map: on a flat vector of {x[0]:,} "
                            "values each channel has one value per example, nothing to "
                            "normalise over")

    def module(self, row):
        from torch import nn
        rank = max(len(row.input) - 1, 1)
        return (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[rank - 1](
            row.input[-1], self.eps, affine=self.affine)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = max(len(row.input) - 1, 1)
        return [("", nn_call(f"nn.InstanceNorm{rank}d", row.input[-1], eps=self.eps,
                             affine=True if self.affine else None))]
