"""The network: its input and its tree of layers (merges hold their branches)."""

from __future__ import annotations

class Input:
    """Spatial sizes, then channels (channels last, as Keras); a str is an open size."""
    __slots__ = ("shape", "line", "column")

    def __init__(self, shape, line, column):
        self.shape, self.line, self.column = tuple(shape), line, column

    @property
    def rank(self) -> int:
        return len(self.shape) - 1

    def __repr__(self):
        return f"Input({self.shape})"


class Network:
    """A spec's network: its name, input and layers, the warnings about it, and the text
    and file it was read from (for errors)."""
    __slots__ = ("name", "input", "layers", "warnings", "text", "file")

    def __init__(self, name, input, layers, warnings, text, file):
        self.name, self.input, self.layers = name, input, layers
        self.warnings, self.text, self.file = warnings, text, file

    def with_input(self, shape: tuple) -> "Network":
        return Network(self.name, Input(shape, self.input.line, self.input.column), self.layers,
                       self.warnings, self.text, self.file)

    def __repr__(self):
        return f"Network({self.name!r}, {self.input!r}, {len(self.layers)} layers)"


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
