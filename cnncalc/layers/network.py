"""The network: its input and its tree of layers (merges hold their branches)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Input:
    shape: tuple  # spatial sizes, then channels (channels last, as Keras); str: an open size
    line: int = 0
    column: int = 0

    @property
    def rank(self) -> int:
        return len(self.shape) - 1


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    input: Input
    layers: tuple
    warnings: tuple = field(default=())
    text: str = field(default="", repr=False)   # the spec it was read from, for errors
    file: str | None = None

    def with_input(self, shape: tuple) -> "Network":
        return replace(self, input=replace(self.input, shape=tuple(shape)))


def referenced(layers) -> set:
    """Names whose outputs are needed later: by 'add ID', 'concat ID', 'multiply ID', or
    as an output of the network ('output')."""
    names = set()
    for layer in layers:
        if layer.ref is not None:
            names.add(layer.ref)
        elif layer.kind == "output" and layer.branches and layer.branches[0]:
            names.add(layer.branches[0][-1].name)  # a head's result
        elif layer.kind == "output":
            names.add(layer.name)
        for branch in layer.branches or ():
            names |= referenced(branch)
    return names
