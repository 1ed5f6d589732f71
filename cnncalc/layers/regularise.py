"""Layers that act only in training and change no shape."""

from __future__ import annotations

from .base import FROZEN, Flag, Layer, Outcome, Rate, Real, nn_call, promotes, uniform


class Dropout(Layer):
    keyword = "dropout"
    transparent = True
    doc = "drops values with the rate P in training; the identity in inference"
    example = "dropout 0.5"
    args = (Rate("rate", "the rate"),)
    fold = True
    # in training, dropping in place would overwrite a ReLU's output that its backward reads
    # (torchvision's AlexNet keeps Dropout out of place too); in inference it is the identity
    overwrites = False

    def passes(self, row):  # PyTorch's dropout of rate 0 returns its input
        return uniform(self.rate == 0)

    def kept(self, row, k):  # the mask it multiplied by, as large as its output
        if not self.passes(row):
            k.new()
            k.values(row.units)

    def rule(self, x, ex):
        return Outcome(x)

    def module(self, row):
        from torch import nn
        return nn.Dropout(self.rate)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.Dropout", self.rate))]

    keras_reads = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
    torch_reads = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d")

    @classmethod
    def from_read(cls, r):
        if not 0 <= r.rate < 1:
            r.refuse(f"dropout of rate {r.rate:g} (cnncalc's is below 1)")
        return cls.write(rate=r.rate)
    darknet_reads = ("dropout",)

    @classmethod
    def from_darknet(cls, section):
        return [cls.write(rate=section.fraction("probability", 0.5))], section.shape

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(rate=cfg["rate"])

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.Dropout", self.rate)]


class DropPath(Layer):
    keyword = "droppath"
    transparent = True
    doc = ("stochastic depth: drops a residual branch per example in training; the identity "
           "in inference, counted as nothing")
    example = "droppath 0.1"
    args = (Rate("rate", "the rate"),)
    fold = True
    semantics = "PyTorch (torchvision's StochasticDepth, row mode)"

    torch_reads = ("StochasticDepth", "DropPath")  # torchvision's and timm's

    def passes(self, row):  # its module returns its input at rate 0
        return uniform(self.rate == 0)

    def transient(self, row):  # x * mask, before it is divided by 1 - p
        return 0 if self.passes(row) else row.units

    def kept(self, row, k):  # its mask: one value an example
        if not self.passes(row):
            k.new()
            k.values(1)

    def rule(self, x, ex):
        return Outcome(x)

    def module(self, row):
        from ..backends.modules import DropPath
        return DropPath(self.rate, len(row.input) - 1)

    torch_helper = '''class DropPath(nn.Module):
    """Stochastic depth (torchvision's StochasticDepth, row mode): in training, drops a
    whole example's branch with probability p and scales the rest; in inference, nothing."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("DropPath", self.rate))]


class LayerScale(Layer):
    keyword = "layerscale"
    doc = "multiplies each channel by a learnt scale (ConvNeXt, CaiT): C parameters"
    example = "layerscale"
    options = (Real("init", "init", 1e-6, help="init 1e-6"), FROZEN)
    fold = True
    autocast = promotes  # its float32 scale promotes a half input
    semantics = "PyTorch (torchvision ConvNeXt's layer_scale)"
    keras_reads = ("LayerScale",)  # Keras' ConvNeXt's

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(init=float(cfg.get("init_values", 1e-6)))

    def scratch(self, row):  # the gradient times the input, before its sum per channel
        return row.units

    def rule(self, x, ex):
        if ex is not None:
            ex.append(f"weights: one scale per channel = {x[-1]:,}")
        return Outcome(x, weights=x[-1], ops=_prod(x))

    def module(self, row):
        from ..backends.modules import LayerScale
        return LayerScale(row.input[-1], self.init, len(row.input) - 1)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        # a bare parameter the input is multiplied by ('*'), as torchvision's ConvNeXt
        # holds it: its state_dict() loads as it is
        shape = (row.input[-1],) + (1,) * (len(row.input) - 1)
        return [("*", f"nn.Parameter(torch.full({shape!r}, {self.init!r}))")]


def _prod(x):
    from math import prod
    return prod(x)


class ScalarAffine(Layer):
    keyword = "affine"
    doc = ("x times one learnt scale, plus one learnt shift, over the whole tensor ('noshift': "
           "the scale alone): HGNetV2's LearnableAffineBlock, NFNet's skip gain; 2 parameters")
    example = "affine"
    options = (Flag("noshift", "shift", False, True, help="noshift (the scale alone)"),
               Real("init", "init", 1.0, help="init 1 (the scale's first value)"), FROZEN)
    fold = True
    autocast = promotes  # its float32 parameters promote a half input
    semantics = "PyTorch (timm's LearnableAffineBlock)"

    def scratch(self, row):  # the gradient times the input, before its sum
        return row.units

    def transient(self, row):  # x * scale, before the shift is added
        return row.units if self.shift else 0

    def rule(self, x, ex):
        if ex is not None:
            ex.append("weights: one scale" + (", biases: one shift" if self.shift else ""))
        return Outcome(x, weights=1, biases=int(self.shift), ops=_prod(x) * (1 + self.shift))

    def module(self, row):
        from ..backends.modules import ScalarAffine
        return ScalarAffine(self.init, self.shift)

    torch_helper = '''class ScalarAffine(nn.Module):
    """x times a learnt scalar, plus a learnt scalar (timm's LearnableAffineBlock)."""

    def __init__(self, init=1.0, shift=True):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([init]))
        self.bias = nn.Parameter(torch.zeros(1)) if shift else None

    def forward(self, x):
        return x * self.scale + self.bias if self.bias is not None else x * self.scale
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("ScalarAffine", init=self.init if self.init != 1 else None,
                             shift=None if self.shift else False))]
