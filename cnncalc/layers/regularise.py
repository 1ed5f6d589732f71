"""Layers that act only in training and change no shape."""

from __future__ import annotations

from .base import Layer, Outcome, Rate


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
