"""Layers that act only in training and change no shape."""

from __future__ import annotations

from .base import Layer, Outcome, Rate, Real


class Dropout(Layer):
    keyword = "dropout"
    doc = "drops values with the rate P in training; the identity in inference"
    example = "dropout 0.5"
    args = (Rate("rate", "the rate"),)
    fold = True

    def rule(self, x, ex):
        return Outcome(x)

    def module(self, row):
        from torch import nn
        return nn.Dropout(self.rate)


class DropPath(Layer):
    keyword = "droppath"
    doc = ("stochastic depth: drops a residual branch per example in training; the identity "
           "in inference, counted as nothing")
    example = "droppath 0.1"
    args = (Rate("rate", "the rate"),)
    fold = True
    semantics = "PyTorch (torchvision's StochasticDepth, row mode)"

    def rule(self, x, ex):
        return Outcome(x)

    def module(self, row):
        from ..backends.modules import DropPath
        return DropPath(self.rate, len(row.input) - 1)


class LayerScale(Layer):
    keyword = "layerscale"
    doc = "multiplies each channel by a learnt scale (ConvNeXt, CaiT): C parameters"
    example = "layerscale"
    options = (Real("init", "init", 1e-6, help="init 1e-6"),)
    fold = True
    semantics = "PyTorch (torchvision ConvNeXt's layer_scale)"

    def rule(self, x, ex):
        if ex is not None:
            ex.append(f"weights: one scale per channel = {x[-1]:,}")
        return Outcome(x, weights=x[-1], ops=_prod(x))

    def module(self, row):
        from ..backends.modules import LayerScale
        return LayerScale(row.input[-1], self.init, len(row.input) - 1)


def _prod(x):
    from math import prod
    return prod(x)
