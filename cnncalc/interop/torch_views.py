"""Operators that move or cut a tensor: views and reshapes (a flatten, a channel shuffle,
splits along a new axis, merged spatial axes), transposes, slices, splits, pads,
interpolation."""

from __future__ import annotations

from ..layers.padding import Crop
from ..layers.reshaping import Reshape
from ..layers.channels import Slice
from ..layers.splits import RadixSoftmax
from .graph import SPLIT, TAKE
from .layout import Layout, pad_pairs, permuted
from .rewrite import PERMUTE, VIEW, crop, primitive
from .torch_functions import _arg, _prod
from .torch_graph import flat as _flat
from .torch_modules import Record, flatten, read_as
from .torch_nodes import _VIEWS, _brief, _target_name


def _reshape(imp, node):
    x = node.args[0]
    lay = imp.layout_of(x)
    before, after = imp.shape(x), imp.shape(node)
    if after is None or before is None:
        imp.fail(node, "a reshape of unknown shape")
        return
    if _primitive(imp, x) is not None:
        _primitive_view(imp, node, x, lay, before, after)
        return
    if _split_view(imp, node, x, lay, before, after) or \
            _merged_view(imp, node, x, lay, before, after):
        return
    if len(after) == 2 and len(before) > 2:  # x.view(N, -1): a flatten
        flatten(imp, node, x)
        return
    if _primitive_view(imp, node, x, lay, before, after):
        return
    _reshape_to(imp, node, x, lay, before, after)


def _primitive_view(imp, node, x, lay, before, after) -> bool:
    """A view of a channels-first map as more axes that a permutation reads, or a view of
    such a permutation: a primitive, which ``rewrite.fold_views`` makes a kind (a shuffle,
    space to depth) with the permutation and the view after it."""
    users = list(node.users)
    opens = lay.first and lay.rank > 0 and len(after) > len(before) and \
        len(users) == 1 and _primitive(imp, x) is None and \
        _target_name(users[0]) in ("aten.transpose", "aten.permute")
    if not opens and _primitive(imp, x) is None:
        return False
    imp.add(node, "", [x], meta=primitive(
        VIEW, f"a reshape of a channels-first tensor {before} to {after}" +
              (" after a permutation" if not opens else ""),
        before=tuple(before), after=tuple(after), opens=opens, picture=lay.picture))
    imp.layouts[node.name] = lay
    return True


def _primitive(imp, x):
    """The primitive that makes ``x`` (through copies: contiguous, clone), or None."""
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    return op.meta.get("primitive") if op is not None else None


def _reshape_to(imp, node, x, lay, before, after):
    """A reshape cnncalc writes as 'reshape': in Keras' order (rows, columns, channels), or
    PyTorch's (N, C, ...) where one side is 1 (ECA's (N, C) -> (N, 1, C) -> (N, C, 1, 1)):
    its values lie in the order Keras' reshape reads."""
    if imp.input_layout.first and len(after) > 2 and lay.first and \
            _plain(before) and _plain(after):
        target = Layout(True, True, len(after) - 2)
    elif not lay.first or lay.rank == 0:
        target = Layout(False, True, len(after) - 2)
    else:
        imp.fail(node, f"a reshape of a channels-first tensor {before} to {after} (cnncalc "
                       "reshapes in Keras' order: rows, columns, channels)")
        return
    spatial, c = target.spatial(after)
    imp.add(node, Reshape.write(shape=(*spatial, c)), [x])
    imp.layouts[node.name] = target


def _split_view(imp, node, x, lay, before, after) -> bool:
    """(N, R x C, ...) viewed as (N, R, C, ...), R paths of C channels (SKNet, ResNeSt), and
    back; ResNeSt's radix softmax, view (N, G, R, K), transpose(1, 2), softmax(1)."""
    if x.name in imp.radix:
        if after != (before[0], before[1] * before[2], *before[3:]):
            return False
        imp.ids[node.name], imp.layouts[node.name] = imp.ids[x.name], lay
        return True
    users = list(node.users)
    if (lay.first or lay.rank == 0) and _radix_softmax(imp, node, x, lay, before, after, users):
        return True
    if not lay.first or lay.rank == 0:
        return False
    if len(after) == len(before) + 1 and after[0] == before[0] and after[3:] == before[2:] \
            and after[1] * after[2] == before[1] and after[1] > 1 and not (
                len(users) == 1 and _target_name(users[0]) == "aten.transpose"):
        imp.alias(node, x)
        imp.radix[node.name] = after[1]
        return True
    return False


def _radix_softmax(imp, node, x, lay, before, after, users) -> bool:
    """ResNeSt's rSoftMax: (N, G x R x K, ...) viewed as (N, G, R, K, ...) (timm: (N, G, R,
    K) of a 1x1 map), transpose(1, 2), softmax(1), and views back: 'rsoftmax R groups G'."""
    whole = len(after) == len(before) + 2 and after[4:] == tuple(before[2:])
    timm = len(after) == 4 and _prod(before[2:]) == 1
    if not (whole or timm) or after[0] != before[0] or _prod(after[1:4]) * _prod(after[4:]) \
            != _prod(before[1:]) or len(users) != 1 or \
            _target_name(users[0]) != "aten.transpose" or \
            {d % len(after) for d in users[0].args[1:3]} != {1, 2} or len(users[0].users) != 1:
        return False
    soft = next(iter(users[0].users))
    if _target_name(soft) != "aten._softmax" or soft.args[1] % len(after) != 1:
        return False
    groups, radix = after[1], after[2]
    imp.skip.update((users[0].name, soft.name))
    op = imp.add(soft, RadixSoftmax.write(radix=radix, groups=groups), [x])
    imp.layouts[soft.name] = lay
    # the views back to (N, R x C, ...) (or timm's (N, R x C)): the op's values as they are
    chain = list(_views_after(soft))
    back = [i for i, v in enumerate(chain) if imp.shape(v) in ((before[0], before[1]),
                                                               tuple(before))]
    for v in chain[:back[-1] + 1] if back else ():
        imp.skip.add(v.name)
        imp.ids[v.name], imp.layouts[v.name] = op.id, lay
    imp.ids[node.name] = op.id
    return True


def _merged_view(imp, node, x, lay, before, after) -> bool:
    """x.flatten(2) of a channels-first map: (N, C, H x W), the map's values as they are
    (Segformer's MLP, timm's patch embeddings); and the view back to (N, C, H, W)."""
    if x.name in imp.merged:
        if not lay.first or after != (*before[:2], *imp.merged[x.name]):
            imp.fail(node, f"a view of a map with its spatial axes merged {before} to {after}")
            return True
        imp.ids[node.name], imp.layouts[node.name] = imp.ids[x.name], lay
        return True
    if lay.first and lay.rank >= 2 and len(after) == 3 and after[:2] == before[:2] and \
            after[2] == _prod(before[2:]):
        imp.alias(node, x)
        imp.merged[node.name] = tuple(before[2:])
        return True
    return False


def _views_after(node):
    """The chain of views that reads ``node`` alone, one after another."""
    while len(node.users) == 1 and _target_name(next(iter(node.users))) in _VIEWS:
        node = next(iter(node.users))
        yield node


def _plain(shape) -> bool:
    """A batch-first shape whose channels-first and channels-last orders agree: a vector,
    one channel, or one position."""
    return len(shape) == 2 or shape[1] == 1 or _prod(shape[2:]) == 1


def _expand(imp, node):
    """expand(_as) of a 1x1xC gate to the map it multiplies: the multiply broadcasts."""
    x = node.args[0]
    lay = imp.layout_of(x)
    if lay.rank and all(n == 1 for n in lay.spatial(imp.shape(x))[0]) and \
            imp.shape(node)[1] == imp.shape(x)[1]:
        imp.alias(node, x)
        return
    imp.fail(node, f"expand of {imp.shape(x)} to {imp.shape(node)}")


def _transpose(imp, node):
    x = node.args[0]
    lay = imp.layout_of(x)
    if _primitive(imp, x) == VIEW:  # the axes of a view: a primitive for the view after it
        n = len(imp.shape(x))
        perm = tuple(d % n for d in _flat(node.args[1:])) \
            if _target_name(node) == "aten.permute" else _swap(n, *_flat(node.args[1:3]))
        imp.add(node, "", [x], meta=primitive(PERMUTE, f"a transpose {perm} of a view",
                                              perm=perm))
        imp.layouts[node.name] = lay
        return
    if x.name in imp.merged:  # (N, C, H x W) <-> (N, H x W, C)
        axes = _flat(node.args[1:]) if _target_name(node) == "aten.permute" else \
            [0, *_flat(node.args[1:3])]
        if sorted(d % 3 for d in axes[-2:]) != [1, 2] or axes[0] % 3 != 0:
            imp.fail(node, f"a transpose of a map with its spatial axes merged {_brief(node)}")
            return
        imp.alias(node, x, Layout(not lay.first, lay.picture, lay.rank))
        imp.merged[node.name] = imp.merged[x.name]
        return
    n = lay.rank + 2
    perm = tuple(d % n for d in _flat(node.args[1:])) \
        if _target_name(node) == "aten.permute" else _swap(n, *_flat(node.args[1:3]))
    new = permuted(lay, perm)
    if new is None:
        imp.fail(node, f"a transpose {perm} that mixes the channels with the spatial axes")
        return
    imp.alias(node, x, new)


def _swap(n, a, b) -> tuple:
    """The permutation of ``n`` axes that transpose(a, b) makes."""
    perm = list(range(n))
    perm[a % n], perm[b % n] = perm[b % n], perm[a % n]
    return tuple(perm)


def _getitem(imp, node):
    """A part of a split's result (chunk, split: the recorder makes one node per part)."""
    x, index = node.args[:2]
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    if op is None or op.kind != SPLIT:
        imp.fail(node, f"part {index} of {getattr(x, 'name', x)}")
        return
    take = imp.add(node, TAKE, [x], index=index)
    take.index = index
    imp.layouts[node.name] = imp.layout_of(x)


def _slice(imp, node):
    """x[..., a:b] on a spatial axis: a crop (after a ConvTranspose: its Keras 'same' crop);
    slices of several axes, one after another, are one crop."""
    x, dim = node.args[0], _arg(node, 1, "dim", 0)
    start, end, step = _arg(node, 2, "start"), _arg(node, 3, "end"), _arg(node, 4, "step", 1)
    lay, shape = imp.layout_of(x), imp.shape(x)
    dim %= len(shape)
    begin, stop, _ = slice(start, end, step).indices(shape[dim])
    if (begin, stop, step) == (0, shape[dim], 1):
        imp.alias(node, x)
        return
    axes = list(range(2, 2 + lay.rank)) if lay.first else list(range(1, 1 + lay.rank))
    if dim == lay.channel_dim() and step == 1 and stop > begin:  # x[:, a:b]
        imp.add(node, Slice.write(channels=stop - begin, start=begin), [x])
        imp.layouts[node.name] = lay
        return
    if dim not in axes or step != 1:
        what = "the channels" if dim == lay.channel_dim() else f"dimension {dim}"
        imp.fail(node, f"a slice of {what} ({begin}:{stop}" + (f":{step}" if step != 1 else "")
                 + f" of {shape[dim]})")
        return
    _crop(imp, node, x, lay, axes.index(dim), (begin, shape[dim] - stop))


def _crop(imp, node, x, lay, axis, cut):
    """A slice of spatial axis ``axis`` (its index among them; ``cut``: before, after): a
    crop, one with the crop of another axis just before it, or a deconv's 'same' crop."""
    pairs = [(0, 0)] * lay.rank
    pairs[axis] = cut  # crops of several axes, a deconv's 'same' crop: folded (rewrite)
    crop(imp.add(node, Crop.write(pads=tuple(lay.spec(pairs))), [x]), lay.spec(pairs))
    imp.layouts[node.name] = lay


def _split(imp, node):
    """split (chunk, split and split_with_sizes all end here) along the channels."""
    x = node.args[0]
    lay = imp.layout_of(x)
    c = lay.spatial(imp.shape(x))[1]
    dim = _arg(node, 2, "dim", 0)
    if dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"a split along dimension {dim}, not the channels")
        return
    arg = _arg(node, 1, "split_size")
    sizes = [arg] * (c // arg) + ([c % arg] if c % arg else []) if isinstance(arg, int) \
        else list(arg)
    imp.add(node, SPLIT, [x], sizes=sizes)
    imp.layouts[node.name] = lay


def _fpad(imp, node):
    """constant_pad_nd (F.pad), reflection_pad (F.pad mode 'reflect'): read as the padding
    module; a later window may fold it in (its pads, fill and input are noted)."""
    x = node.args[0]
    lay = imp.layout_of(x)
    pads = list(node.args[1])
    reflect = "reflection" in _target_name(node)
    value = 0.0 if reflect else (_arg(node, 2, "value", 0.0) or 0.0)
    if len(pads) > 2 * lay.rank:
        imp.fail(node, f"padding of {len(pads) // 2} axes of a tensor with {lay.rank} "
                       "spatial axes")
        return
    pads += [0] * (2 * lay.rank - len(pads))  # F.pad's order: the last axis first
    if not reflect and value not in (0, float("-inf")):
        imp.fail(node, f"padding with the value {value}")
        return
    op = read_as(imp, node, f"{'Reflection' if reflect else 'Constant'}Pad{lay.rank}d",
                 Record(padding=pads, value=0.0))  # -inf: a max pool's, folded into it
    if op is not None and min(pads) >= 0:  # a window may take it as its own padding
        op.meta.update(pads=list(pad_pairs(lay, pads)), value=value, of=x,
                       sizes=lay.spatial(imp.shape(x))[0])


def _interpolate(imp, node):
    """upsample_nearest / upsample_(bi|tri)linear: the factors read from the shapes."""
    x = node.args[0]
    lay = imp.layout_of(x)
    name = _target_name(node)
    (before, _), (after, _) = lay.spatial(imp.shape(x)), lay.spatial(imp.shape(node))
    if "exact" in name or "bicubic" in name:
        imp.fail(node, f"interpolation by {name[5:]}")
        return
    linear = "linear" in name
    read_as(imp, node, "Upsample", Record(
        mode="bilinear" if linear else "nearest", align_corners=linear and bool(
            _arg(node, 2, "align_corners")), scale_factor=lay.spec([a / b for a, b in
                                                                      zip(after, before)])))


def _pixel_f(module, factor):
    def handler(imp, node):
        lay = imp.layout_of(node.args[0])
        if lay.rank != 2 or not lay.first or not lay.picture:
            imp.fail(node, f"{module} on a tensor that is not (N, C, H, W)")
            return
        read_as(imp, node, module, Record(**{factor: _arg(node, 1, factor)}))
    return handler


def _unsqueeze(imp, node):
    """x[:, :, None, None] or x.unsqueeze(-1) on a vector (or a 1x1 map): its channels as a
    1x1 map (a broadcast, as squeeze-and-excitation writes it)."""
    x = node.args[0]
    lay, before, after = imp.layout_of(x), imp.shape(x), imp.shape(node)
    c = lay.spatial(before)[1]
    if (lay.rank and not lay.first) or any(n != 1 for n in before[2:]) or len(after) < 3 or \
            after[1] != c or any(n != 1 for n in after[2:]):
        imp.fail(node, f"unsqueeze of a tensor {before} to {after}")
        return
    imp.alias(node, x, Layout(True, True, len(after) - 2))


def _squeeze(imp, node):
    """A 1x1 map's spatial axes squeezed away: a flatten."""
    x = node.args[0]
    lay, after = imp.layout_of(x), imp.shape(node)
    if lay.rank and len(after) == 2 and after[0] == imp.shape(x)[0] and \
            all(n == 1 for n in lay.spatial(imp.shape(x))[0]):
        flatten(imp, node, x)
        return
    imp.fail(node, f"squeeze of a tensor {imp.shape(x)} to {after}")

