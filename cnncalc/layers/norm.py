"""Normalisation layers."""

from __future__ import annotations

from math import prod

from .base import Layer, Outcome


class BatchNorm(Layer):
    keyword = "batchnorm"
    doc = ("batch normalisation: 2C trainable (scale, offset), 2C non-trainable (moving mean "
           "and variance); Keras' epsilon 1e-3 and momentum 0.99")
    example = "batchnorm"
    colour = "#b0bec5"
    fold = True

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
        return cls(row.input[-1], eps=1e-3, momentum=0.01)  # Keras' epsilon and momentum 0.99
