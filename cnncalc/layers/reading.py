"""What an importer read of one foreign operation, in no framework's terms, and the
decisions every reader of windows shares. The PyTorch and ONNX readers find an operation's
attributes; the kind that declares the operation (``torch_reads``, ``onnx_reads``) writes
its statement from them (``from_read``, the inverse of its ``code()``), so a conv's words,
'pad half', a transposed conv's 'same' are decided here and in the kinds, once."""

from __future__ import annotations

import functools

from .base import Foreign


class Read:
    """One foreign operation: ``op``, its name in the file ('Conv2d', 'Conv'), and what the
    reader found, per axis in the spec's order (width first): kernel, stride, dilation,
    pads ((before, after) per axis), padding ('same' or 'valid' where the framework says it
    in words), extra (a transposed conv's output padding), sizes (the input's spatial sizes),
    out_sizes (the output's), channels (the input's), filters, units, groups, bias, eps,
    affine, stats (running statistics), rate, slope, factor, size, mode, corners, ceil,
    countpad, value (a pad's fill), on_channels (whether an axis it names is the
    channels'), channels_last (whether the channels are the last axis), approximate."""

    def __init__(self, op: str, **fields):
        self.op, self.meta = op, {}  # meta: what a kind notes for the reader's later passes
        self.__dict__.update(fields)

    def fields(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("op", "meta")}

    def get(self, name, default=None):
        return self.__dict__.get(name, default)

    def refuse(self, why: str):
        raise Foreign(why)


def symmetric(p, kernel, dilation, half=True):
    """Even padding per axis as the padding field: 'valid', 'half' (PyTorch's k // 2 on
    both sides, odd kernels; a window's, not a pool's) or the sizes."""
    p = tuple(p)
    if not any(p):
        return "valid"
    keff = tuple((d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilation))
    return "half" if half and p == keff and all(k % 2 for k in kernel) else p


def window_padding(pads, kernel, stride, dilation, sizes):
    """Padding per side, (before, after) per axis (a pad folded in, ONNX's pads), as a
    window's padding field: 'causal' for a sequence padded before only, Keras' 'same' where
    it is exactly that at these sizes, else the even sizes; None where none of these."""
    from .window import window_axis
    pads = [tuple(p) for p in pads]
    if len(pads) == 1 and pads[0] == (dilation[0] * (kernel[0] - 1), 0) and pads[0][0]:
        return "causal"
    if sizes is not None and all(isinstance(n, int) for n in sizes):
        same = [tuple(window_axis(n, k, s, d, "same", False, "", None)[1:3])
                for n, k, s, d in zip(sizes, kernel, stride, dilation)]
        if pads == same and any(b or a for b, a in pads):
            return "same"
    if all(b == a for b, a in pads):
        return symmetric([b for b, _ in pads], kernel, dilation, half=False)
    return None


def read_padding(r: Read, half=True):
    """A window's padding field from what was read: the framework's word; its own even
    padding ('pad half' where ``half``); padding per side (a pad before it, folded in:
    ``r.folded``; ONNX's uneven pads) as window_padding says it."""
    ones = (1,) * len(r.kernel)
    stride, dilation = r.get("stride") or ones, r.get("dilation") or ones
    if r.get("padding") in ("same", "valid"):  # ONNX's SAME_UPPER is Keras' 'same' at any stride
        return r.padding
    pads = [tuple(p) for p in r.pads]
    if not r.get("folded") and all(b == a for b, a in pads):
        return symmetric([b for b, _ in pads], r.kernel, dilation, half)
    field = window_padding(pads, r.kernel, stride, dilation, r.get("sizes"))
    if field is None:
        r.refuse(f"padding {pads} before and after")
    return field


@functools.cache
def registry(framework: str) -> dict:
    """A foreign operation's name → the kind that reads it, from each kind's own
    ``torch_reads`` or ``onnx_reads`` (not inherited: StdConv does not read Conv2d). ONNX's
    versions need no entry: the ONNX reader first rewrites what older opsets decompose
    (GELU as Erf before 20, LayerNormalization before 17) into the operator."""
    from . import kinds
    found = {}
    for cls in kinds():
        for name in cls.__dict__.get(f"{framework}_reads", ()):
            found.setdefault(name, cls)
    return found


def kind_for(framework: str, op: str):
    """The kind that reads ``op``, or None."""
    return registry(framework).get(op)
