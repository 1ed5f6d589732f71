"""Side outputs: detection heads, auxiliary classifiers and FPN levels are part of the
network's answer, not dead ends."""

from __future__ import annotations

from ..language.records import Word
from .base import Layer, Outcome


class Output(Layer):
    keyword = "output"
    doc = ("marks a network output: the current tensor ('output'), or the saved output of "
           "layer ID ('output ID'); the flow goes on unchanged. The last layer is always one")
    example = "output p3"
    colour = "#ef9a9a"

    @classmethod
    def read_args(cls, word, rest, r, fields):
        if rest and isinstance(rest[0], Word):
            fields["ref"] = rest.pop(0).text
        return rest

    def rule(self, x, ex):
        return Outcome(x)

    def combine(self, shapes, check, ex, names):
        if ex is not None:
            ex.append(f"an output of the network: {names[1]}")
        return Outcome(shapes[0])

    def module(self, row):
        from ..backends.modules import PassOn
        return PassOn(self.ref)
