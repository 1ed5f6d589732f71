"""Side outputs: detection heads, auxiliary classifiers and FPN levels are part of the
network's answer, not dead ends."""

from __future__ import annotations

from .options import layer_name
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
    marks_output = True
    kept = same_tensor
    grad_view = True  # the identity: its gradient is its output's

    def inputs(self, x, n):
        return [x] * n

    @classmethod
    def read_args(cls, word, rest, r, fields):
        if rest and layer_name(rest[0]) is not None:
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


class From(Layer):
    keyword = "from"
    doc = ("goes on from the saved output of layer ID instead of the current tensor: any "
           "graph, where paths do not meet in one block (DenseNet-style skips, FPN, HRNet), "
           "is chains, 'from ID' and merges of saved outputs ('add ID', 'concat ID')")
    example = "from a"
    colour = "#ef9a9a"
    kept = same_tensor
    grad_view = True  # its result is ID's tensor: the gradient goes to ID as it is
    jump = True       # the current tensor is left, not read

    @classmethod
    def read_args(cls, word, rest, r, fields):
        if not rest or layer_name(rest[0]) is None:
            raise r.error("from needs the name of an earlier layer: 'from ID'",
                          rest[0] if rest else None)
        fields["ref"] = rest.pop(0).text
        return rest

    def describe(self):
        return f"from {self.ref}"

    def combine(self, shapes, check, ex, names, x=None):
        if ex is not None:
            ex.append(f"the flow goes on from {names[-1]} ({fmt.shape(shapes[-1])})")
        return Outcome(shapes[-1])

    def module(self, row):
        from ..backends.modules import PassOn
        return PassOn(self.ref, head=True)  # of [current, saved]: the saved one
