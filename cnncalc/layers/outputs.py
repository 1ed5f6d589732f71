"""Side outputs: detection heads, auxiliary classifiers and FPN levels are part of the
network's answer, not dead ends."""

from __future__ import annotations

from ..language.records import Word
from .. import fmt
from .base import Layer, Outcome, same_tensor


class Output(Layer):
    keyword = "output"
    doc = ("marks a network output: the current tensor ('output'), the saved output of layer "
           "ID ('output ID'), or what a head computes from the current tensor ('output { conv "
           "1x1x255 }'); the flow goes on unchanged. The last layer is always an output")
    example = "output { conv 3x3x64 same name=p5 }"
    colour = "#ef9a9a"
    block = True
    bare = True  # its block is one body, without 'branch'
    kept = same_tensor
    grad_view = True  # the identity: its gradient is its output's

    def inputs(self, x, n):
        return [x] * n

    @classmethod
    def read_args(cls, word, rest, r, fields):
        if rest and isinstance(rest[0], Word):
            fields["ref"] = rest.pop(0).text
        return rest

    def rule(self, x, ex):
        return Outcome(x)

    def combine(self, shapes, check, ex, names, x=None):
        """A reference passes the current tensor on; a head passes its input on."""
        if ex is not None:
            ex.append(f"an output of the network: {names[-1]} ({fmt.shape(shapes[-1])})")
        return Outcome(shapes[0] if self.branches is None else x)

    def module(self, row):
        from ..backends.modules import PassOn
        return PassOn(self.ref, head=self.branches is not None)

    @classmethod
    def validate(cls, fields, r):
        if r.block and fields.get("ref"):
            raise r.error("output takes a layer's name or a block, not both", None)
