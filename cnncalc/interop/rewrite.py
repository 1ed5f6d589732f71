"""Rewrites of an imported graph that no framework owns, written once for every reader:
they run on the ops (``graph.Op``) after a reader has written them, and read only what the
kinds noted (a crop's pairs, a rescale's scale and offset, a transposed conv's 'same'
statement) and the primitives the readers write where no kind says an operation alone (a
view of a channels-first tensor as more axes, a permutation of those). Each folds an op
into a neighbour that can say it, and rewires its readers; a primitive no pass folds is
refused (``unfolded``)."""

from __future__ import annotations

from ..layers import ACTIVATIONS, takes_activation
from ..layers.activations import GATED, SPELT, Act
from ..layers.base import Foreign
from .graph import Op, Unsupported
from ..layers.channels import Shuffle, SpaceToDepth
from ..layers.reshaping import PixelShuffle, PixelUnshuffle
from ..layers.merge import Concat, Multiply
from ..layers.padding import Crop
from ..layers.reading import Read
from ..layers.scaling import Rescale


class _Graph:
    def __init__(self, ops, outputs):
        self.ops, self.outputs = ops, outputs
        self.by_id = {op.id: op for op in ops}
        self._readers = None  # op id -> the ops that read it, made again after a change

    def users(self, op_id):
        if self._readers is None:
            self._readers = {}
            for op in self.ops:
                for i in dict.fromkeys(op.inputs):
                    self._readers.setdefault(i, []).append(op)
        return self._readers.get(op_id, [])

    def only_reader(self, op_id, reader) -> bool:
        """``reader`` is all that reads ``op_id``, which is no output of the network."""
        return op_id not in self.outputs and self.users(op_id) == [reader]

    def source(self, op):
        return self.by_id.get(op.inputs[0]) if op.inputs else None

    def absorb(self, op, inputs, gone):
        """``op`` reads ``inputs`` now; ``gone``, folded into it, leaves the graph."""
        op.inputs = list(inputs)
        self.ops.remove(gone)
        del self.by_id[gone.id]
        self._readers = None

    def insert(self, new, op):
        """``new`` reads what ``op`` read, and ``op`` reads ``new``."""
        self.ops.insert(self.ops.index(op), new)
        self.by_id[new.id] = new
        op.inputs = [new.id]
        self._readers = None

    def drop(self, op, into):
        """``op`` is gone; what read it reads ``into`` (an op id, or what op read)."""
        self.ops.remove(op)
        del self.by_id[op.id]
        for user in self.ops:
            user.inputs = [into if i == op.id else i for i in user.inputs]
        self.outputs[:] = [into if o == op.id else o for o in self.outputs]
        self._readers = None


# primitives, on a channels-first tensor (N, C, ...): a view as other sizes ('before' and
# 'after' its shapes; 'picture': rows before columns, as frameworks hold a map), a
# permutation of its axes ('perm')
VIEW, PERMUTE = "view", "permute"


def primitive(what: str, refused: str, **fields) -> dict:
    """The meta of an op that is primitive ``what`` (its text is empty): ``refused`` says
    what it is where no pass folds it into a kind."""
    return {"primitive": what, "refused": refused, **fields}


def inner(op) -> bool:
    """A primitive that a pass folds into the op after it: a view that a permutation
    reads, or the permutation (a chain's last view becomes the kind, named as its op)."""
    return op.meta.get("primitive") == PERMUTE or \
        op.meta.get("primitive") == VIEW and op.meta.get("opens", False)


def unfolded(ops) -> list:
    """(node, what it is) for each primitive no pass made a kind: the reader refuses them."""
    return [(op.meta.get("node", op.id), op.meta["refused"]) for op in ops
            if op.meta.get("primitive")]


def fold_pad(kind, r: Read, pad):
    """A pad before a window, taken as the window's own padding where the kind can say it
    (Keras' 'same' with a stride, a causal sequence); (statement, read) or None. Both
    readers decide which pad may fold (its fill, its module); the kind decides the words."""
    if pad is None or pad.meta["value"] != kind.pad_fill or \
            any(b or a for b, a in r.get("pads", ())) or r.get("padding") is not None:
        return None
    folded = Read(r.op, **{**r.fields(), "pads": pad.meta["pads"], "sizes": pad.meta["sizes"],
                           "folded": True})
    try:
        return kind.from_read(folded), folded
    except Foreign:
        return None


def settled(ops, outputs, partial, problems, source):
    """The graph rewritten; a primitive no pass folded refuses the import, or with
    --partial the graph stops before it (and ``problems`` names it first)."""
    ops, outputs = rewrite(ops, list(outputs))
    left = unfolded(ops)
    if left and not partial:
        raise Unsupported(left, source)
    if left:  # --partial: what those primitives read is the output
        ops, outputs = before_unfolded(ops, outputs)
        problems[:0] = left[:1]
    return ops, outputs


def before_unfolded(ops, outputs):
    """--partial: the ops before the primitives no pass folded, and as outputs the tensors
    those primitives read, with the outputs that do not depend on them (ops in order)."""
    bad = {op.id for op in ops if op.meta.get("primitive")}
    gone = set(bad)
    for op in ops:
        if any(i in gone for i in op.inputs):
            gone.add(op.id)
    read = [i for op in ops if op.id in bad for i in op.inputs if i not in gone]
    kept = list(dict.fromkeys(read + [o for o in outputs if o not in gone]))
    return [op for op in ops if op.id not in gone], [o for o in kept if o != "input"]


def split_cropping_pads(g: _Graph):
    """A padding that crops some sides (a negative pad, ``ZeroPad.from_read``): the crop
    its kind noted, then the padding."""
    for op in list(g.ops):
        cut = op.meta.pop("crop_before", None)
        if cut is None:
            continue
        g.insert(crop(Op(f"{op.id}:crop", "", op.inputs, source=op.source), cut), op)


def fold_rescales(g: _Graph):
    """x * a, then + b (NFNet's gains, relu6(x + 3) / 6 spelt out): one rescale."""
    for op in list(g.ops):
        before = g.source(op)
        if op.kind != Rescale.keyword or before is None or before.kind != Rescale.keyword:
            continue
        if op.meta.get("scale") == 1.0 and op.meta.get("offset") and \
                before.meta.get("offset") == 0.0 and g.only_reader(before.id, op):
            scale, offset = before.meta["scale"], op.meta["offset"]
            op.text = Rescale.write(scale=scale, offset=offset)
            op.meta.update(scale=scale, offset=offset)
            g.absorb(op, before.inputs, before)


def _noted(op) -> bool:
    """A crop whose pairs a reader noted (``crop``); the passes leave others be."""
    return op.kind == Crop.keyword and "pairs" in op.meta


def fold_crops(g: _Graph):
    """A crop after a crop (exporters slice one axis at a time): one crop; a crop that is a
    transposed conv's Keras 'same' crop: that conv, 'same'; a centre crop read only by a
    concat as its second input: 'concat ID crop' (U-Net's skips)."""
    for op in list(g.ops):
        before = g.source(op)
        if _noted(op) and before is not None and _noted(before) and \
                g.only_reader(before.id, op):
            pairs = [(b1 + b2, a1 + a2) for (b1, a1), (b2, a2) in
                     zip(before.meta["pairs"], op.meta["pairs"])]
            crop(op, pairs)
            g.absorb(op, before.inputs, before)
    for op in list(g.ops):
        before = g.source(op)
        if _noted(op) and before is not None and \
                before.meta.get("cropped_same") == list(op.meta["pairs"]) and \
                g.only_reader(before.id, op):
            before.text = before.meta["as_same"]
            g.drop(op, before.id)
    for op in list(g.ops):
        second = g.by_id.get(op.inputs[1]) if len(op.inputs) == 2 else None
        if op.kind == Concat.keyword and second is not None and _noted(second) \
                and second.meta["centre"] and g.only_reader(second.id, op):
            op.meta["centre_crop"] = True
            g.absorb(op, [op.inputs[0], second.inputs[0]], second)


def crop(op, pairs):
    """A crop's statement and what the passes read of it: its (before, after) pairs in the
    spec's order, whether it is centred."""
    op.text = Crop.write(pads=tuple(pairs))
    op.meta.update(pairs=list(pairs), centre=all(b == (b + a) // 2 for b, a in pairs))
    return op


def fold_spelt_activations(g: _Graph):
    """An activation spelt out as rescales around another (relu6(x + 3) / 6): itself,
    where each step is read by the next alone."""
    for word, (inner, offset, scale) in SPELT.items():
        for op in list(g.ops):
            mid = g.source(op)
            first = g.source(mid) if mid is not None else None
            if op.kind == Rescale.keyword and abs(op.meta.get("scale", 0) - scale) < 1e-6 \
                    and not op.meta.get("offset") and mid is not None and mid.text == inner \
                    and first is not None and first.kind == Rescale.keyword and \
                    first.meta.get("scale") == 1.0 and first.meta.get("offset") == offset \
                    and g.only_reader(first.id, mid) and g.only_reader(mid.id, op):
                first.text = Act.write(word)
                first.meta.pop("scale"), first.meta.pop("offset")
                g.drop(op, first.id)
                g.drop(mid, first.id)


def fold_gates(g: _Graph):
    """x times an activation of x that makes another when so multiplied (x * sigmoid(x):
    silu, as exporters write it), the activation read by the product alone."""
    for op in list(g.ops):
        if op.kind != Multiply.keyword or len(op.inputs) != 2:
            continue
        for a, b in (op.inputs, op.inputs[::-1]):
            gate = g.by_id.get(b)
            if gate is not None and gate.text in GATED and gate.inputs == [a] and \
                    g.only_reader(b, op):
                gate.text = Act.write(GATED[gate.text])
                g.drop(op, b)
                break


def _role(op):
    """(module, part): 'op' for a layer, 'act' for the activation its module applies after
    it; from the exporter's scope (ONNX: '/layer1/conv/act/Relu') or the module path
    (PyTorch: 'layer1.conv' and 'layer1.conv.act'; a wrapper's 'X.op' is X's layer)."""
    role = op.meta.get("role")
    if role or not op.name:
        return role
    base, _, last = op.name.rpartition(".")
    return (base, last) if last in ("act", "op") else (op.name, "op")


def fuse_activations(g: _Graph):
    """An activation its module applies right after its layer, read by it alone: the
    layer's own activation option (cnncalc's 'conv 3x3x64 relu'), one statement again."""
    for op in list(g.ops):
        role = _role(op)
        if not role or role[1] != "act" or len(op.inputs) != 1 or op.text not in ACTIVATIONS:
            continue
        owner = g.source(op)
        if owner is None or _role(owner) != (role[0], "op") or \
                not takes_activation(owner.kind) or not g.only_reader(owner.id, op):
            continue
        owner.text += f" {op.text}"
        owner.meta["activation"] = op.text
        g.drop(op, owner.id)


def fold_views(g: _Graph):
    """A view, a permutation of its axes and a view back, each read by the next alone,
    that a kind says (``_viewed``): ShuffleNet's channel shuffle, TResNet's space to
    depth, pixel (un)shuffle written out, as PyTorch and ONNX write them."""
    for op in list(g.ops):
        mid = g.source(op) if op.meta.get("primitive") == VIEW else None
        first = g.source(mid) if mid is not None else None
        if mid is None or mid.meta.get("primitive") != PERMUTE or first is None or \
                first.meta.get("primitive") != VIEW or not g.only_reader(mid.id, op) or \
                not g.only_reader(first.id, mid):
            continue
        text = _viewed(first.meta["before"], first.meta["after"], mid.meta["perm"],
                       op.meta["after"], first.meta.get("picture", True))
        if text is None:
            continue
        op.text = text
        del op.meta["primitive"], op.meta["refused"]
        g.drop(mid, first.id)
        g.absorb(op, first.inputs, first)


def _viewed(before, split, perm, after, picture=True):
    """The statement of view ``before`` -> ``split``, permute ``perm``, view -> ``after``
    (batch and channels first; the batch, which an exporter may leave open, unread), or
    None. Blocks of a map need its rows before its columns (``picture``)."""
    (c, *sizes), split, after, perm = before[1:], tuple(split[1:]), tuple(after[1:]), \
        tuple(perm)
    if after == (c, *sizes) and len(split) == len(sizes) + 2 and split[0] * split[1] == c \
            and list(split[2:]) == sizes and perm == (0, 2, 1, *range(3, len(split) + 1)):
        return Shuffle.write(groups=split[0])  # (N, G, C / G, ...), the groups swapped
    if len(sizes) != 2 or len(split) != 5 or not picture:
        return None
    (h, w), r = sizes, split[2]
    blocks = r > 1 and split == (c, h // r, r, w // r, r) and \
        after == (c * r * r, h // r, w // r)  # R x R blocks to channels
    if blocks and perm == (0, 3, 5, 1, 2, 4):  # block row, column, channel: TensorFlow's
        return SpaceToDepth.write(factor=r)
    if blocks and perm == (0, 1, 3, 5, 2, 4):  # channel first: pixel_unshuffle
        return PixelUnshuffle.write(factor=r)
    r = split[1]
    if r > 1 and split == (c // (r * r), r, r, h, w) and perm == (0, 1, 4, 2, 5, 3) and \
            after == (c // (r * r), h * r, w * r):
        return PixelShuffle.write(factor=r)  # channels to R x R blocks: pixel_shuffle
    return None


def rewrite(ops, outputs):
    """Every pass, in order; the ops and outputs, rewritten in place."""
    g = _Graph(ops, outputs)
    split_cropping_pads(g)
    fold_views(g)
    fold_rescales(g)
    fold_crops(g)
    fold_spelt_activations(g)
    fold_gates(g)
    fuse_activations(g)
    return g.ops, g.outputs
