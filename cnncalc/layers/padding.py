"""Padding and cropping: zeropad, reflectpad (Keras ZeroPadding*D, PyTorch's ZeroPad and
ReflectionPad) and crop (Keras Cropping*D)."""


from __future__ import annotations

from .. import fmt
from .base import (
    Arg,
    Layer,
    Outcome,
    RuleError,
    axis_names,
    need_map,
    picture,
    same_tensor,
    saves_nothing,
)


class Pads(Arg):
    """One number for every side, one per axis (both sides), or a pair per axis
    (before and after): zeropad 1, zeropad 1x2, zeropad 2x0 on a sequence (causal)."""
    label = "the padding"
    example = "1"

    def __init__(self, label="the padding"):
        self.label = label

    def read(self, item, r):
        v = r.numbers(item, self.label, 0, None)
        if len(v) == 1:
            pairs = ((v[0], v[0]),) * r.rank
        elif len(v) == r.rank:
            pairs = tuple((p, p) for p in v)
        elif len(v) == 2 * r.rank:
            pairs = tuple(zip(v[0::2], v[1::2]))
        else:
            raise r.error(f"{self.label} {item.text}: expected 1 number, {r.rank} (one per axis) "
                          f"or {2 * r.rank} (before and after each axis) for the {r.rank}-D "
                          "input", item)
        return {"pads": pairs}

    def describe(self, layer):
        pairs = layer.pads
        if all(b == a for b, a in pairs):
            return fmt.axes([b for b, _ in pairs])
        return "x".join(f"{b}x{a}" for b, a in pairs)


def _keras_pairs(pads, keras_class) -> tuple:
    """Keras' padding or cropping (one number, one per axis, or a pair per axis; rows
    first) as (before, after) per axis in the spec's order."""
    pads = [pads] if isinstance(pads, int) or (pads and isinstance(pads[0], int)
                                               and keras_class.endswith("1D")) else pads
    return picture(tuple((p, p) if isinstance(p, int) else tuple(p) for p in pads))


class _Pad(Layer):
    args = (Pads(),)
    colour = "#e0e0e0"

    kept = saves_nothing

    def rule(self, x, ex):
        rank = len(self.pads)
        need_map(x, rank, self.kind)
        self.check(x)
        outs = tuple(n + b + a for n, (b, a) in zip(x, self.pads))
        if ex is not None:
            for name, n, (b, a), o in zip(axis_names(rank), x, self.pads, outs):
                ex.append(f"{name}: {b} + {n} + {a} = {o}")
        return Outcome((*outs, x[-1]), window=tuple((1, 1, b) for b, _ in self.pads))

    def check(self, x):
        pass


class ZeroPad(_Pad):
    keyword = "zeropad"
    also = ("zeropadding2d", "zeropadding1d")
    transparent = True
    doc = ("zeros around the map (Keras ZeroPadding): P on every side, one P per axis, or "
           "before and after per axis (zeropad 2x0: causal padding of a sequence)")
    example = "zeropad 1x2"

    def module(self, row):
        from ..backends.tensor_ops import Pad
        return Pad(self.pads)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        from .window import pad_code
        return [("", pad_code(picture(self.pads), len(self.pads))[0][1])]

    keras_reads = ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
    torch_reads = ("ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
                   "ConstantPad3d")
    onnx_reads = ("Pad",)

    @classmethod
    def from_read(cls, r):  # ONNX's Pad has a mode: 'reflect' is reflectpad's
        if any(p < 0 for pair in r.pads for p in pair):
            return cls._cropping(r)
        if r.get("mode") == "reflect":
            return ReflectPad.write(pads=r.pads)
        if r.get("value", 0) != 0 or r.get("mode", "constant") != "constant":
            r.refuse(f"padding with {r.value}, not zeros")
        return cls.write(pads=r.pads)

    @classmethod
    def _cropping(cls, r):
        """A negative pad crops (PyTorch's and ONNX's; timm's NASNet shifts a map by one
        with ZeroPad2d((-1, 1, -1, 1))): a crop, noted for the reader to put before the
        padding that is left ('crop_before')."""
        if r.get("mode", "constant") != "constant" or r.get("value", 0) != 0:
            r.refuse(f"a negative padding in mode {r.get('mode')} with {r.get('value', 0)}")
        cut = tuple((max(-b, 0), max(-a, 0)) for b, a in r.pads)
        pads = tuple((max(b, 0), max(a, 0)) for b, a in r.pads)
        if not any(b or a for b, a in pads):
            return Crop.write(pads=cut)
        r.meta["crop_before"] = cut
        return cls.write(pads=pads)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(pads=_keras_pairs(cfg["padding"], keras_class))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        from .window import keras_pad
        return [keras_pad(self.pads, len(self.pads))]


class ReflectPad(_Pad):
    keyword = "reflectpad"
    doc = "mirrors the map at its borders (PyTorch ReflectionPad); each pad below the size"
    example = "reflectpad 3"
    semantics = "PyTorch (ReflectionPad; Keras has no such layer)"
    torch_reads = ("ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d")
    kept = Layer.kept  # (autograd saves the input of a reflection)

    def autocast(self, row):  # CPU autocast runs 1-D and 2-D reflection in float32
        return "float32" if len(row.input) <= 3 else None

    def check(self, x):
        for n, (b, a) in zip(x, self.pads):
            if isinstance(n, int) and max(b, a) >= n:
                raise RuleError(f"reflectpad {max(b, a)} needs a size above it, received {n}")

    def module(self, row):
        from ..backends.tensor_ops import Pad
        return Pad(self.pads, "reflect")

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        from .window import pad_code
        zero = pad_code(picture(self.pads), len(self.pads))[0][1]
        return [("", zero.replace("ZeroPad", "ReflectionPad"))]


class Crop(Layer):
    keyword = "crop"
    also = ("cropping2d", "cropping1d")
    doc = "cuts rows off the borders (Keras Cropping): as zeropad, the other way"
    example = "crop 2"
    args = (Pads("the crop"),)
    colour = "#eeeeee"

    kept = same_tensor  # a view: what keeps it keeps the whole uncropped tensor

    def rule(self, x, ex):
        rank = len(self.pads)
        need_map(x, rank, self.kind)
        outs = tuple(n - b - a for n, (b, a) in zip(x, self.pads))
        for name, n, o in zip(axis_names(rank), x, outs):
            if isinstance(o, int) and o < 1:
                raise RuleError(f"crop {fmt.axes([b + a for b, a in self.pads])} leaves nothing "
                                f"of the {name} {n}")
            if ex is not None:
                ex.append(f"{name}: {n} - {n - o} = {o}")
        return Outcome((*outs, x[-1]), window=tuple((1, 1, -b) for b, _ in self.pads))

    keras_reads = ("Cropping1D", "Cropping2D", "Cropping3D")

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(pads=_keras_pairs(cfg["cropping"], keras_class))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = len(self.pads)
        pairs = tuple(tuple(p) for p in picture(self.pads))
        return [f"layers.Cropping{rank}D({pairs[0] if rank == 1 else pairs!r})"]

    def module(self, row):
        from ..backends.tensor_ops import Crop
        return Crop(self.pads, row.output[:-1])

    torch_helper = '''class Crop(nn.Module):
    """Cuts rows off the borders, (before, after) per spatial axis, rows first (Keras'
    Cropping layers)."""

    def __init__(self, *pairs):
        super().__init__()
        self.pairs = pairs

    def forward(self, x):
        return x[(..., *(slice(b, x.shape[i - len(self.pairs)] - a)
                         for i, (b, a) in enumerate(self.pairs)))]
'''

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", crop_code(picture(self.pads)))]


def crop_code(pairs) -> str:  # pragma: no mutate block (export, tested apart)
    """The file's Crop module (``Crop.torch_helper``) for (before, after) per axis."""
    return "Crop(" + ", ".join(repr(tuple(p)) for p in pairs) + ")"

