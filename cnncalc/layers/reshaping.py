"""Layers that move values without weights: padding and upsampling."""

from __future__ import annotations

from .base import Layer, Outcome, PerAxis, axis_names, need_map


class ZeroPad(Layer):
    keyword = "zeropad"
    doc = "zeros around the map, P on each side of each axis (Keras ZeroPadding)"
    example = "zeropad 1x2"
    args = (PerAxis("padding", "the padding", minimum=0, example="1"),)
    colour = "#e0e0e0"

    def rule(self, x, ex):
        rank = len(self.padding)
        need_map(x, rank, "zeropad")
        outs = tuple(n + 2 * p for n, p in zip(x, self.padding))
        if ex is not None:
            for name, n, p, o in zip(axis_names(rank), x, self.padding, outs):
                ex.append(f"{name}: {n} + 2 x {p} = {o}")
        return Outcome((*outs, x[-1]), geometry={"pads": tuple((p, p) for p in self.padding)},
                       window=tuple((1, 1, p) for p in self.padding))

    def module(self, row):
        from ..backends.modules import Pad
        return Pad(row.geometry["pads"])


class Upsample(Layer):
    keyword = "upsample"
    doc = "repeats each value F times along each axis (nearest, Keras UpSampling)"
    example = "upsample 2"
    args = (PerAxis("factor", "the factor", example="2"),)
    colour = "#aed581"

    def rule(self, x, ex):
        rank = len(self.factor)
        need_map(x, rank, "upsample")
        outs = tuple(n * f for n, f in zip(x, self.factor))
        if ex is not None:
            for name, n, f, o in zip(axis_names(rank), x, self.factor, outs):
                ex.append(f"{name}: {n} x {f} = {o}")
        return Outcome((*outs, x[-1]), window=tuple((1, f, 0) for f in self.factor), up=True)

    def module(self, row):
        from torch import nn
        return nn.Upsample(scale_factor=self.factor, mode="nearest")

