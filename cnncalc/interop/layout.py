"""Where a tensor keeps its channels and in which order its spatial axes run, and the
per-side padding of F.pad in the spec's order: what the PyTorch and ONNX readers share."""

from __future__ import annotations


class Layout:
    """Where a tensor keeps its channels and in which order its spatial axes run: PyTorch
    models hold (N, C, H, W), 'picture' order; cnncalc's own module runs (N, C, W, H)."""
    __slots__ = ("first", "picture", "rank")

    def __init__(self, first, picture, rank):
        self.first, self.picture, self.rank = first, picture, rank

    def spec(self, sizes):
        """Per-axis sizes of this tensor's order → the spec's order (width first)."""
        sizes = tuple(sizes)
        if self.picture and len(sizes) >= 2:
            return (*sizes[:-2], sizes[-1], sizes[-2])
        return sizes

    def spatial(self, shape):
        """The spatial sizes (spec order) and channels of a tensor's shape (batch first)."""
        if self.rank == 0:
            return (), shape[1]
        if self.first:
            return self.spec(shape[2:]), shape[1]
        return self.spec(shape[1:-1]), shape[-1]

    def channel_dim(self):
        return 1 if self.first or self.rank == 0 else self.rank + 1


def each_axis(v, rank):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank


def pad_pairs(lay, padding) -> tuple:
    """F.pad's order (last axis first: left, right, top, bottom) → (before, after) per axis
    in the spec's order."""
    pads = list(each_axis(padding, 2 * lay.rank))
    per_axis = [(pads[2 * i], pads[2 * i + 1]) for i in range(lay.rank)][::-1]  # first axis first
    return tuple(lay.spec(per_axis)) if lay.rank >= 2 else tuple(per_axis)


def axis_labels(lay):
    """What each axis of a tensor holds: 'N', 'C', and spatial axes by their place in the
    spec (0 is the width for a 2-D map)."""
    spatial = list(range(lay.rank))
    if lay.picture and lay.rank >= 2:
        spatial[-2:] = spatial[-2:][::-1]
    return ["N", "C", *spatial] if lay.first else ["N", *spatial, "C"]


def permuted(lay, perm):
    """The layout after any permutation of a tensor's axes; None when the batch leaves the
    front, the channels land between spatial axes, or the spatial axes are scrambled beyond
    a swap of the last two."""
    old = axis_labels(lay)
    new = [old[p] for p in perm]
    if new[0] != "N" or "C" not in (new[1], new[-1]):
        return None
    first = new[1] == "C" and lay.rank > 0
    spatial = new[2:] if first else new[1:-1]
    for picture in (False, True):
        if axis_labels(Layout(first, picture, lay.rank)) == new:
            return Layout(first, picture, lay.rank)
    del spatial
    return None

