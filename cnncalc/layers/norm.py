"""Normalisation layers."""

from __future__ import annotations

from math import prod

from .base import Count, Flag, Layer, Outcome, Real, RuleError, nn_call


class BatchNorm(Layer):
    keyword = "batchnorm"
    also = ("batchnormalization", "batchnorm2d", "batchnorm1d", "bn")
    doc = ("batch normalisation: 2C trainable (scale, offset), 2C non-trainable (moving mean "
           "and variance); Keras' momentum 0.99 and, unless given, epsilon 1e-3")
    example = "batchnorm"
    colour = "#b0bec5"
    fold = True
    # PyTorch's and ONNX's default is 1e-5: an imported model keeps its own, so its values stay
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default; PyTorch's is 1e-5)"),)

    def rule(self, x, ex):
        c = x[-1]
        if ex is not None:
            ex.append(f"trainable: scale and offset, 2 x {c} = {2 * c:,}; non-trainable: moving "
                      f"mean and variance, 2 x {c} = {2 * c:,}")
        return Outcome(x, c, c, 2 * c, ops=2 * prod(x))  # inference: one scale, one shift

    def module(self, row):
        from torch import nn
        rank = max(len(row.input) - 1, 1)
        cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[rank - 1]
        return cls(row.input[-1], eps=self.eps, momentum=0.01)  # Keras' momentum 0.99

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.BatchNormalization", epsilon=None if self.eps == 1e-3 else self.eps)]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = max(len(row.input) - 1, 1)
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
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default)"),)

    def module(self, row):
        from ..backends.modules import ChannelNorm
        return ChannelNorm(row.input[-1], self.eps, len(row.input) - 1)

    torch_helper = '''class LayerNorm2d(nn.Module):
    """LayerNorm over the channels at each position of an (N, C, H, W) map."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
'''

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
    options = (Real("eps", "eps", 1e-3, help="eps 1e-3 (Keras' default)"),)

    def check(self, x):
        if x[-1] % self.groups:
            raise RuleError(f"groupnorm {self.groups}: the groups must divide the channels "
                            f"({x[-1]})")

    def module(self, row):
        from torch import nn
        return nn.GroupNorm(self.groups, row.input[-1], self.eps)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.GroupNormalization", self.groups, epsilon=self.eps)]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.GroupNorm", self.groups, row.input[-1], eps=self.eps))]


class InstanceNorm(_Normal):
    keyword = "instancenorm"
    doc = ("normalises each channel of each example (PyTorch InstanceNorm): no parameters, "
           "or 2C with 'affine'")
    example = "instancenorm affine"
    spatial = True
    options = (Flag("affine", "affine", True, False), Real("eps", "eps", 1e-5,
                                                           help="eps 1e-5 (PyTorch's default)"))
    semantics = "PyTorch (InstanceNorm; Keras has no such layer)"

    def counts(self, c):
        return 2 * c if self.affine else 0

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
