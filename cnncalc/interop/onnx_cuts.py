"""ONNX operators that pad, cut or resize a map: Pad (folded into the window after it where
it runs in that window's module), Slice (a channel slice, a crop, a deconv's 'same' crop),
Resize (upsampling by a factor or to a size)."""


from __future__ import annotations

from ..layers.base import Foreign
from ..layers.padding import Crop
from ..layers.reading import Read, kind_for
from ..layers.channels import Slice
from .rewrite import crop
from .onnx_nodes import _attrs, _scope


def _pad(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = a.get("pads")
    if pads is None:
        pads = imp.const(node.input[1])
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(imp.const(node.input[2]))
    if pads is None:
        imp.fail(node, "Pad whose sizes are not constants")
        return
    pads = [int(v) for v in pads]
    n = len(pads) // 2
    if any(pads[:2]) or any(pads[n:n + 2]):
        imp.fail(node, "Pad of the batch or channel axis")
        return
    per_axis = tuple(lay.spec(list(zip(pads[2:n], pads[n + 2:]))))
    if mode not in ("reflect", "constant") or value not in (0.0, float("-inf")):
        imp.fail(node, f"Pad in mode {mode} with {value}")
        return
    # -inf: a max pool's padding, folded into it
    read = Read("Pad", pads=per_axis, mode=mode, value=0.0)
    op = imp.add(node, kind_for("onnx", "Pad").from_read(read), [x])
    op.meta.update(read.meta, scope=_scope(node))
    if min(pads) >= 0:  # a window may take it as its own padding
        op.meta.update(pads=per_axis, value=value, of=x, sizes=lay.spatial(imp.shape(x))[0])
    imp.layouts[node.output[0]] = lay


def _slice(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    shape = imp.shape(x)
    cuts = _cuts(imp, node, shape)
    if cuts is None:
        return
    c = lay.channel_dim()
    if list(cuts) == [c] and _channel_slice(imp, node, x, lay, shape[c], cuts[c]):
        return
    if not lay.first or any(a < 2 for a in cuts):
        imp.fail(node, "Slice of the batch or channels")
        return
    pairs = list(lay.spec([_kept(shape[axis], cuts.get(axis, (0, shape[axis])))
                           for axis in range(2, len(shape))]))
    _crop(imp, node, x, lay, pairs)


def _crop(imp, node, x, lay, pairs):
    """A Slice of the spatial axes: a crop (the exporter slices one axis at a time; those
    crops, and a deconv's 'same' crop, are folded by the rewrite)."""
    crop(imp.add(node, Crop.write(pads=tuple(pairs)), [x]), pairs)
    imp.layouts[node.output[0]] = lay


def _cuts(imp, node, shape):
    """A Slice's (start, end) per axis it cuts, or None (a step: refused)."""
    starts, ends = imp.const(node.input[1]), imp.const(node.input[2])
    axes = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else \
        range(len(starts))
    steps = imp.const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if steps is not None and any(int(s) != 1 for s in steps):
        imp.fail(node, "Slice with a step")
        return None
    return {int(a) % len(shape): (int(s), int(e)) for a, s, e in zip(axes, starts, ends)}


def _kept(n, cut) -> tuple:
    """(cut before, cut after) of an axis of ``n`` sliced from start to end (Python's
    negative indices, clamped)."""
    s, e = cut
    s, e = max(0, s if s >= 0 else n + s), min(n, e if e >= 0 else n + e)
    return s, n - e


def _channel_slice(imp, node, x, lay, n, cut) -> bool:
    """x[:, a:b]: 'slice N start S' (False when it keeps nothing)."""
    s, after = _kept(n, cut)
    if n - after <= s:
        return False
    imp.add(node, Slice.write(channels=n - after - s, start=s), [x])
    imp.layouts[node.output[0]] = lay
    return True


def _text_attr(a, key, default) -> str:
    v = a.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _resize(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    mode = _text_attr(a, "mode", "nearest")
    spatial = list((imp.shapes.get(x) or ())[2:])  # the batch may be open; these are not
    scales = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    sizes = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if (scales is None or len(scales) == 0) and sizes is not None:
        scales = [1, 1] + [s / n for s, n in zip(list(sizes)[2:], spatial)]
    ct = _text_attr(a, "coordinate_transformation_mode", "half_pixel")
    if mode == "linear" and ct not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        imp.fail(node, f"Resize linear with {ct}")
        return
    corners = mode == "linear" and ct == "align_corners"
    if scales is None or any(float(v) != int(v) for v in scales):  # to a size
        _resize_to(imp, node, x, lay, mode, corners, spatial, scales, sizes)
        return
    _upsample(imp, node, x, lay, mode, corners, factor=lay.spec([int(v) for v in scales[2:]]))


def _resize_to(imp, node, x, lay, mode, corners, spatial, scales, sizes):
    """A Resize to a size (given, or the input's times a fraction): 'resize'."""
    out = list(sizes)[2:] if sizes is not None else \
        [int(n * f) for n, f in zip(spatial, list(scales)[2:])] if scales is not None \
        else None
    if out is None or mode not in ("nearest", "linear") or \
            any(not isinstance(n, int) for n in spatial):
        imp.fail(node, f"Resize ({mode}) to a size this reader cannot work out")
        return
    _upsample(imp, node, x, lay, mode, corners, factor=None,
              out_sizes=tuple(lay.spec([int(n) for n in out])))


def _upsample(imp, node, x, lay, mode, corners, **fields):
    """Written by the kind that reads Resize: by a factor, or to a size."""
    try:
        text = kind_for("onnx", node.op_type).from_read(
            Read(node.op_type, mode=mode, corners=corners, **fields))
    except Foreign as e:
        imp.fail(node, str(e))
        return
    imp.add(node, text, [x])
    imp.layouts[node.output[0]] = lay
