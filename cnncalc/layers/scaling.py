"""Scaling the whole tensor by constants: rescale (Keras' Rescaling) and normalize (Keras'
Normalization, its mean and variance)."""

from __future__ import annotations

from math import prod

from .base import Factor, Flag, Foreign, Layer, Outcome, Real, nn_call, promotes, saves_nothing


class Rescale(Layer):
    keyword = "rescale"
    also = ("rescaling",)
    doc = ("x times S, plus or minus an offset, over the whole tensor (Keras' Rescaling: "
           "1/255 for pictures); no parameters")
    example = "rescale 0.0078431 minus 1"
    args = (Factor("scale", "the scale"),)
    options = (Real("plus", "offset", 0.0, help="plus O"),
               Real("minus", "offset", 0.0, help="minus O", sign=-1))
    colour = "#eceff1"
    fold = True

    kept = saves_nothing  # (constants: no gradient needs the input)

    def transient(self, row):  # x * scale, before the offset is added
        return row.units

    def rule(self, x, ex):
        if ex is not None:
            ex.append(f"x x {self.scale:g}" + (f" + {self.offset:g}" if self.offset else ""))
        return Outcome(x, ops=prod(x) * (2 if self.offset else 1))

    def module(self, row):
        from ..backends.modules import Affine
        return Affine(self.scale, self.offset)

    keras_reads = ("Rescaling",)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        scale, offset = cfg.get("scale", 1.0), cfg.get("offset", 0.0)
        if not isinstance(scale, (int, float)) or not isinstance(offset, (int, float)) \
                or scale <= 0:
            raise Foreign(f"Rescaling by {scale!r} (per-channel or negative scales)")
        return cls.write(scale=float(scale), offset=float(offset))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return [nn_call("layers.Rescaling", self.scale, offset=self.offset or None)]

    torch_helper = '''class Rescale(nn.Module):
    """x times a scale plus an offset (Keras' Rescaling)."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return x * self.scale + self.offset
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("Rescale", self.scale, self.offset or None))]


class Normalize(Layer):
    keyword = "normalize"
    also = ("normalization",)
    doc = ("(x - mean) / std per channel (Keras' Normalization); with 'stats' the mean, "
           "variance and count it adapted are kept: 2C + 1 non-trainable")
    example = "normalize stats"
    autocast = promotes  # its float32 mean and std promote a half input
    options = (Flag("stats", "stats", True, False,
                    help="stats (adapted: mean, variance, count kept)"),)
    colour = "#eceff1"
    fold = True

    kept = saves_nothing  # (constants: no gradient needs the input)

    def transient(self, row):  # x - mean, before it is divided
        return row.units

    def rule(self, x, ex):
        kept = 2 * x[-1] + 1 if self.stats else 0
        if ex is not None:
            ex.append(f"non-trainable: mean and variance per channel and a count, 2 x {x[-1]} "
                      f"+ 1 = {kept:,}" if kept else "constants: no parameters")
        return Outcome(x, buffers=kept, ops=2 * prod(x))

    def module(self, row):
        from ..backends.modules import Affine
        return Affine(channels=row.input[-1], rank=len(row.input) - 1) if self.stats \
            else Affine()

    keras_reads = ("Normalization",)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        if cfg.get("invert"):
            raise Foreign("Normalization with invert=True")
        # constants given in the config are no weights; adapted statistics are Keras' 2C + 1
        return cls.write(stats=cfg.get("mean") is None)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        return ["layers.Normalization()" if self.stats else
                "layers.Normalization(mean=0.0, variance=1.0)"]

    torch_helper = '''class Normalize(nn.Module):
    """(x - mean) / sqrt(variance) per channel (Keras' Normalization): the statistics are
    buffers, to be loaded with the model's own (a fresh one is the identity)."""

    def __init__(self, channels, stats=True):
        super().__init__()
        if stats:  # as Keras keeps an adapted layer's: mean, variance, count
            self.register_buffer("mean", torch.zeros(channels))
            self.register_buffer("variance", torch.ones(channels))
            self.register_buffer("count", torch.zeros(()))

    def forward(self, x):
        if not hasattr(self, "mean"):
            return x
        return (x - self.mean[:, None, None]) / self.variance[:, None, None].sqrt()
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) != 3:  # the helper is written for pictures, (N, C, H, W)
            return super().code(row)
        return [("", nn_call("Normalize", row.input[-1], stats=None if self.stats else False))]
