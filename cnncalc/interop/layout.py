"""Where a tensor keeps its channels and in which order its spatial axes run, and the
spec words for padding and axis sizes: what every importer (PyTorch, ONNX) shares."""

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


def axes_text(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def each_axis(v, rank):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank


def padding_words(p, kernel, dilation) -> str:
    if all(v == 0 for v in p):
        return ""
    half = tuple((d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilation))
    if p == half and all(k % 2 for k in kernel):
        return " pad half"
    return f" pad {axes_text(p)}"


def side_padding(pads, kernel, stride, dilation, sizes):
    """Padding per side (before, after) per axis folded from an F.pad: Keras' 'same' when it
    is exactly that at these sizes, 'causal' for a sequence padded before only, else
    symmetric 'pad P'; None if none of these."""
    from ..layers.window import window_axis
    if len(pads) == 1 and pads[0] == (dilation[0] * (kernel[0] - 1), 0) and pads[0][0]:
        return " causal"
    same = []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        _, b, a, _ = window_axis(n, k, s, d, "same", False, "", None)
        same.append((b, a))
    if list(pads) == same:
        return " same"
    if all(b == a for b, a in pads):
        return f" pad {axes_text([b for b, _ in pads])}" if any(b for b, _ in pads) else ""
    return None


def pad_text(lay, padding):
    """F.pad's order (last axis first: left, right, top, bottom) → before and after per axis
    in the spec's order."""
    pads = list(each_axis(padding, 2 * lay.rank))
    per_axis = [(pads[2 * i], pads[2 * i + 1]) for i in range(lay.rank)][::-1]  # first axis first
    per_axis = list(lay.spec(per_axis)) if lay.rank >= 2 else per_axis
    if all(b == a for b, a in per_axis):
        return axes_text([b for b, _ in per_axis])
    return "x".join(f"{b}x{a}" for b, a in per_axis)


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

