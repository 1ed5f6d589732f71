"""Layers that move values without weights: resampling, reshaping, slices and channel
shuffles (padding and cropping are in padding.py)."""

from __future__ import annotations

from math import prod

from .. import fmt
from .base import (
    Choice,
    Count,
    Flag,
    Foreign,
    Layer,
    Outcome,
    PerAxis,
    RuleError,
    Whole,
    anywhere,
    axis_names,
    need_map,
    nn_call,
    picture,
    saves_nothing,
    symbolic,
)
from .options import Shape


class Upsample(Layer):
    keyword = "upsample"
    also = ("upsampling2d", "upsampling1d")
    doc = ("repeats each value F times along each axis (Keras UpSampling, nearest), or "
           "interpolates ('bilinear': Keras' bilinear, PyTorch's align_corners=False; with "
           "'aligncorners', PyTorch's align_corners=True: the corner pixels of input and "
           "output line up)")
    example = "upsample 2 bilinear"
    args = (PerAxis("factor", "the factor", example="2"),)
    options = (Choice("mode", ("nearest", "bilinear"), "nearest"),
               Flag("aligncorners", "corners", True, False,
                    help="aligncorners (bilinear only: PyTorch's align_corners=True)"))
    colour = "#aed581"

    kept = saves_nothing
    torch_reads = ("Upsample",)
    onnx_reads = ("Resize", "Upsample")

    @classmethod
    def from_read(cls, r):
        """Nearest or (bi/tri)linear; by a whole factor per axis, else to the output's size."""
        if r.mode not in ("nearest", "linear", "bilinear", "trilinear"):
            r.refuse(f"upsampling mode {r.mode!r}")
        how = dict(mode="nearest" if r.mode == "nearest" else "bilinear",
                   corners=bool(r.corners) and r.mode != "nearest")
        factor = r.get("factor")
        if factor is None or any(float(f) != int(f) for f in factor):
            return Resize.write(size=r.out_sizes, **how)
        return cls.write(factor=tuple(int(f) for f in factor), **how)

    @classmethod
    def validate(cls, fields, r):
        if fields.get("corners") and fields.get("mode") != "bilinear":
            raise r.error("upsample aligncorners: corners align only when interpolating; "
                          "write 'upsample 2 bilinear aligncorners'", None)

    def rule(self, x, ex):
        rank = len(self.factor)
        need_map(x, rank, "upsample")
        outs = tuple(n * f for n, f in zip(x, self.factor))
        if ex is not None:
            for name, n, f, o in zip(axis_names(rank), x, self.factor, outs):
                ex.append(f"{name}: {n} x {f} = {o}")
        # on the fine grid, nearest copies each input f times (a window of f); bilinear also
        # reads the neighbour: f + 1, centred half an input pixel earlier
        k = 1 if self.mode == "bilinear" else 0
        return Outcome((*outs, x[-1]), window=tuple((f + k, f, 0) for f in self.factor),
                       up=True)

    keras_reads = ("UpSampling1D", "UpSampling2D", "UpSampling3D")
    darknet_reads = ("upsample",)

    @classmethod
    def from_darknet(cls, section):
        (h, w, c), s = section.shape, section.int("stride", 2)
        return [cls.write(factor=(s, s))], (h * s, w * s, c)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        mode = cfg.get("interpolation", "nearest")
        if mode not in ("nearest", "bilinear"):
            raise Foreign(f"UpSampling with interpolation={mode}")
        return cls.write(factor=k.sizes(cfg["size"]), mode=mode)

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = len(self.factor)
        if (self.mode == "bilinear" and rank != 2) or self.corners:
            return super().keras_code(row)  # Keras interpolates in 2-D, never corner-aligned
        size = picture(self.factor)
        return [nn_call(f"layers.UpSampling{rank}D", size[0] if rank == 1 else size,
                        interpolation="bilinear" if self.mode == "bilinear" else None)]

    def _torch_args(self):
        if self.mode == "nearest":
            return {"mode": "nearest"}
        return {"mode": ("linear", "bilinear", "trilinear")[len(self.factor) - 1],
                "align_corners": bool(self.corners)}

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        factor = tuple(float(f) for f in picture(self.factor))
        return [("", nn_call("nn.Upsample", scale_factor=factor, **self._torch_args()))]

    def module(self, row):
        from torch import nn
        return nn.Upsample(scale_factor=self.factor, **self._torch_args())


class Resize(Upsample):
    keyword = "resize"
    also = ("resizing", "interpolate")
    doc = ("interpolates to a fixed size, W x H as the spec writes sizes (PyTorch's "
           "F.interpolate(size=...), Keras' Resizing): nearest (PyTorch's), 'bilinear', "
           "'bilinear aligncorners'; a size that is a whole factor of the input is upsample's")
    example = "resize 16x16 bilinear"
    args = (PerAxis("size", "the output size", example="16x16"),)
    semantics = "PyTorch (F.interpolate to a size)"

    def rule(self, x, ex):
        rank = len(self.size)
        need_map(x, rank, "resize")
        shape = (*self.size, x[-1])
        if any(symbolic(n) or hasattr(n, "dtype") for n in x[:-1]):
            return Outcome(shape, note="the resize's scale depends on the input size")
        from fractions import Fraction
        window, up = [], all(o >= n for n, o in zip(x, self.size))
        for name, n, o in zip(axis_names(rank), x, self.size):
            if ex is not None:
                ex.append(f"{name}: {n} to {o}, a scale of {o / n:.6g}")
            # an output reads the input under it, and with bilinear its neighbour: on the
            # coarse grid when shrinking, the fine one when growing
            k = (-(-o // n) if up else -(-n // o)) + (self.mode == "bilinear")
            window.append((k, Fraction(o, n) if up else Fraction(n, o), 0))
        whole = all(o % n == 0 for n, o in zip(x, self.size)) if up else \
            all(n % o == 0 for n, o in zip(x, self.size))
        return Outcome(shape, window=tuple(window), up=up,
                       note=None if whole else "a scale that is not a whole number: the "
                       "receptive field is the widest window's, the jump the mean")

    keras_reads = ("Resizing",)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        """Keras' bilinear Resizing samples at half-pixel centres, as PyTorch's bilinear
        without align_corners; its nearest rounds where PyTorch's floors: refused."""
        how = cfg.get("interpolation", "bilinear")
        if how != "bilinear" or cfg.get("crop_to_aspect_ratio") or \
                cfg.get("pad_to_aspect_ratio") or cfg.get("antialias"):
            raise Foreign(f"Resizing by {how!r}" + (" with an aspect ratio kept" if how ==
                                                      "bilinear" else "") +
                          " (cnncalc's resize is bilinear or PyTorch's nearest)")
        return cls.write(size=picture((cfg["height"], cfg["width"])), mode="bilinear")

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(self.size) != 2 or self.mode != "bilinear" or self.corners:
            return Layer.keras_code(self, row)  # Keras' nearest rounds, PyTorch's floors
        h, w = picture(self.size)
        return [nn_call("layers.Resizing", h, w, interpolation="bilinear")]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.Upsample", size=tuple(picture(self.size)),
                             **self._torch_args()))]

    def module(self, row):  # the module runs in the spec's order (N, C, W, H)
        from torch import nn
        return nn.Upsample(size=tuple(self.size), **self._torch_args())

    def _torch_args(self):
        if self.mode == "nearest":
            return {"mode": "nearest"}
        return {"mode": ("linear", "bilinear", "trilinear")[len(self.size) - 1],
                "align_corners": bool(self.corners)}


class Reshape(Layer):
    keyword = "reshape"
    doc = ("the same values in another shape (Keras Reshape, in the order rows, columns, "
           "channels); one size may be '?'")
    example = "reshape 4x4x1024"
    args = (Shape(),)
    colour = "#d7ccc8"

    @classmethod
    def rank_after(cls, fields, rank):
        return len(fields["shape"]) - 1

    kept = saves_nothing

    def rule(self, x, ex):
        total = prod(x)
        known = prod(n for n in self.shape if n != "?")
        if "?" in self.shape:
            if fmt.symbolic(total) or total % known:
                raise RuleError(f"reshape {fmt.shape(self.shape)}: {fmt.shape(x)} holds "
                                f"{fmt.count(total)} values, not a multiple of {known:,}")
            out = tuple(total // known if n == "?" else n for n in self.shape)
        else:
            out = tuple(self.shape)
            if total != known:
                raise RuleError(f"reshape {fmt.shape(self.shape)} needs {known:,} values, "
                                f"{fmt.shape(x)} holds {fmt.count(total)}")
        if ex is not None:
            ex.append(f"{fmt.shape(x)} = {fmt.count(total)} values as {fmt.shape(out)}")
        return Outcome(out, window="all" if len(out) != len(x) else None)

    keras_reads = ("Reshape",)

    @classmethod
    def from_keras(cls, keras_class, cfg):  # every axis written: 1x1x16 is a map
        target = cfg["target_shape"]
        return cls.write(shape=(*picture(tuple(target[:-1])), target[-1]))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        out = row.output
        return [nn_call("layers.Reshape", Whole((*picture(out[:-1]), out[-1])))]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        if len(row.input) != 1 or len(row.output) < 2:
            return super().code(row)
        out = row.output
        return [("", nn_call("nn.Unflatten", 1, Whole((out[-1], *picture(out[:-1])))))]

    def module(self, row):
        from ..backends.tensor_ops import Reshape
        return Reshape(row.input, row.output)


class PixelShuffle(Layer):
    keyword = "pixelshuffle"
    also = ("depthtospace",)
    doc = ("depth to space (PyTorch PixelShuffle): C channels become C / R^2 on a map R "
           "times larger, as ESPCN's upsampling")
    example = "pixelshuffle 3"
    args = (Count("factor", "the factor", example="2"),)
    torch_reads = ("PixelShuffle",)
    colour = "#c5e1a5"
    semantics = "PyTorch (PixelShuffle)"

    kept = saves_nothing

    def rule(self, x, ex):
        need_map(x, 2, self.kind)
        r = self.factor
        if x[-1] % (r * r):
            raise RuleError(f"pixelshuffle {r} needs channels divisible by {r * r}, received "
                            f"{x[-1]}")
        out = (x[0] * r, x[1] * r, x[-1] // (r * r))
        if ex is not None:
            ex.append(f"{fmt.shape(x)} -> {x[0]} x {r}, {x[1]} x {r}, {x[-1]} / {r * r}")
        # output u holds input u // r, as nearest upsampling copies it: the same window
        return Outcome(out, window=((r, r, 0), (r, r, 0)), up=True)

    def module(self, row):
        from ..backends.tensor_ops import PixelShuffle
        return PixelShuffle(self.factor, False)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.PixelShuffle", self.factor))]


class PixelUnshuffle(Layer):
    keyword = "pixelunshuffle"
    doc = "space to depth (PyTorch PixelUnshuffle): R x R blocks become R^2 times the channels"
    example = "pixelunshuffle 2"
    args = (Count("factor", "the factor", example="2"),)
    torch_reads = ("PixelUnshuffle",)
    colour = "#c5e1a5"
    semantics = "PyTorch (PixelUnshuffle)"

    kept = saves_nothing

    def rule(self, x, ex):
        need_map(x, 2, self.kind)
        r = self.factor
        for name, n in zip(("width", "height"), x):
            if not symbolic(n) and anywhere(n % r):
                raise RuleError(f"pixelunshuffle {r} needs the {name} divisible by {r}, "
                                f"received {n}")
        out = (x[0] // r, x[1] // r, x[-1] * r * r)
        return Outcome(out, window=((r, r, 0), (r, r, 0)))

    def module(self, row):
        from ..backends.tensor_ops import PixelShuffle
        return PixelShuffle(self.factor, True)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call("nn.PixelUnshuffle", self.factor))]
