"""Pooling: max and average windows (Keras MaxPooling/AveragePooling, with PyTorch's
ceil mode), and the global pools."""

from __future__ import annotations

from math import prod

from .. import fmt
from ..limits import MAX_ADAPTIVE
from .base import (Amount, Flag, Foreign, Layer, Outcome, PerAxis, RuleError, anywhere, axis_names,
                   need_map, nn_call, picture, saves_nothing, symbolic)
from .reading import read_padding
from .window import pad_code, padding_options, save_padded, window_axis


class _Pool(Layer):
    args = (PerAxis("pool", "the pool size", example="2"),)
    options = (*padding_options(), Amount("stride", default=None),
               Flag("ceil", "ceil", True, False, help="ceil (PyTorch's ceil_mode)"))

    def autocast(self, row):  # CPU autocast runs 3-D pooling in float32
        return "float32" if len(row.input) == 4 else None

    @classmethod
    def validate(cls, fields, r):
        if fields["stride"] is None:  # the stride defaults to the pool size, as in Keras
            fields["stride"] = fields["pool"]

    @classmethod
    def from_read(cls, r):
        """A pool: its own even padding as sizes ('pad 1', never 'half'), a pad before it
        folded in as 'same' or sizes; 'countpad' where its own padding's zeros count."""
        if any(d != 1 for d in r.get("dilation") or ()):
            r.refuse("a pool with dilation")
        fields = dict(pool=r.kernel, ceil=bool(r.get("ceil")),
                      padding=read_padding(r, half=False))
        if tuple(r.stride) != tuple(r.kernel):
            fields["stride"] = r.stride
        if fields["padding"] != "valid" and not r.get("folded") and r.get("countpad"):
            fields["countpad"] = True
        return cls.write(**fields)

    def describe(self):
        text = super().describe()
        if self.stride == self.pool:
            text = text.replace(f" stride {fmt.axes(self.stride)}", "")
        return text

    def kept(self, row, k):
        """Its input; padded first, as the backend runs it, where PyTorch's own padding
        cannot (uneven, or the input smaller than the window): then the padded copy."""
        pads, padded, native = row.geometry["pads"], False, True
        for (b, a), n, p in zip(pads, row.input, self.pool):
            padded = padded | (b != 0) | (a != 0)
            native = native & (b == a) & (n >= p)
        save_padded(row, k, padded & (~native if hasattr(native, "dtype") else not native))
        k.new()

    def rule(self, x, ex):
        rank = len(self.pool)
        need_map(x, rank, self.kind)
        names = axis_names(rank)
        outs, pads, dropped = [], [], []
        for i in range(rank):
            p = self.padding if isinstance(self.padding, str) else self.padding[i]
            if not isinstance(p, str) and p > self.pool[i] // 2:
                raise RuleError(f"pad {p} is more than half the pool size {self.pool[i]}: a "
                                "window could see only padding")
            o, b, a, d = window_axis(x[i], self.pool[i], self.stride[i], 1, p, self.ceil,
                                     names[i], ex)
            outs.append(o)
            pads.append((b, a))
            dropped.append(d)
        shape = (*outs, x[-1])
        # PyTorch's ceil mode drops a last window that would start in the padding. A formula
        # cannot say when; the last start s ceil((n + 2p - k) / s) is at most n + 2p - k + s - 1,
        # past the input (n + p) for some n exactly when p + s > k.
        note = None
        if self.ceil and self.padding != "same" and any(map(symbolic, outs)):
            if any(pads[i][0] + self.stride[i] > self.pool[i] for i in range(rank)):
                note = ("ceil mode: PyTorch drops a last window that would start in the "
                        "padding, which this formula leaves out for some sizes; 'cnncalc "
                        "sizes' applies it")
        if ex is not None:
            ex.append(f"{self.kind}: {fmt.shape(shape)} outputs, each over "
                      f"{' x '.join(map(str, self.pool))} values" + (
                          ("; the padding's zeros count in the average (PyTorch's "
                           "count_include_pad)" if getattr(self, "countpad", False) else
                           "; the average counts real pixels only, as Keras does")
                          if self.kind == "avgpool" and any(b or a for b, a in pads) else ""))
        return Outcome(shape, ops=prod(shape) * prod(self.pool),
                       geometry={"pads": tuple(pads), "dropped": tuple(dropped)},
                       window=tuple(zip(self.pool, self.stride, (p[0] for p in pads))), note=note)

    def module(self, row):
        from ..backends.modules import Pool
        return Pool(self, row)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        from . import keras_config as k
        pool = cfg["pool_size"] if isinstance(cfg["pool_size"], list) else [cfg["pool_size"]]
        return cls.write(pool=k.sizes(pool), **k.window(cfg, default_stride=pool))

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        explicit = not isinstance(self.padding, str) or self.padding == "half"
        padded = any(b or a for b, a in row.geometry["pads"])
        if self.ceil or (padded and (explicit or getattr(self, "countpad", False))):
            # Keras has neither ceil_mode nor a pad for pools, and averages real pixels only
            return super().keras_code(row)
        cls = "MaxPooling" if self.kind == "maxpool" else "AveragePooling"
        return [nn_call(f"layers.{cls}{len(self.pool)}D", picture(self.pool),
                        strides=None if self.stride == self.pool else picture(self.stride),
                        padding="same" if self.padding == "same" else None)]

    def _ceil_after(self, row, pads) -> bool:  # pragma: no mutate block (export, tested apart)
        """Padding after only, to take the last partial window: PyTorch's ceil_mode (as
        torchvision's GoogLeNet writes it)."""
        return all(b == 0 for b, _ in pads) and all(
            -(-(n - k) // s) + 1 == o for n, k, s, o in zip(
                picture(row.input[:-1]), picture(self.pool), picture(self.stride),
                picture(row.output[:-1])))

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        rank, pads = len(self.pool), picture(row.geometry["pads"])
        is_max = self.kind == "maxpool"
        padded = any(b or a for b, a in pads)
        native = all(b == a for b, a in pads) and all(
            n >= k for n, k in zip(picture(row.input[:-1]), picture(self.pool)))
        out = []
        ceil = self.ceil
        if padded and not native and is_max and self._ceil_after(row, pads):
            padded, ceil = False, True
        countpad = getattr(self, "countpad", False)
        if padded and not native:
            if not is_max and not countpad:  # Keras averages the real pixels of each window only
                return super().code(row)
            out = pad_code(pads, rank, "0.0" if countpad else 'float("-inf")')
        return out + [("", self._pool_call(rank, pads, padded and native, ceil, countpad))]

    def _pool_call(self, rank, pads, inside, ceil, countpad):  # pragma: no mutate block (export, tested apart)
        """torch.nn's pool; ``inside``: the padding is its own (even, and smaller than the
        input)."""
        is_max = self.kind == "maxpool"
        return nn_call(
            f"nn.{'Max' if is_max else 'Avg'}Pool{rank}d", picture(self.pool),
            stride=None if self.stride == self.pool else picture(self.stride),
            padding=tuple(b for b, _ in pads) if inside else None,
            ceil_mode=True if ceil else None,
            count_include_pad=False if inside and not is_max and not countpad else None)


class MaxPool(_Pool):
    keyword = "maxpool"
    torch_reads = ("MaxPool1d", "MaxPool2d", "MaxPool3d")
    onnx_reads = ("MaxPool",)
    pad_fill = float("-inf")
    keras_reads = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")
    darknet_reads = ("maxpool",)

    @classmethod
    def from_darknet(cls, section):
        """Darknet pads size - 1 (by default), half of it before; its windows often reach
        less of it. What they reach is Keras' 'same', symmetric padding, or refused."""
        (h, w, c), k = section.shape, section.int("size", 1)
        s = section.int("stride", 1)
        pad = section.int("padding", k - 1)
        before = pad // 2
        out = ((h + pad - k) // s + 1, (w + pad - k) // s + 1)
        used = {(before, max((o - 1) * s + k - before - n, 0)) for o, n in zip(out, (h, w))}
        same = {(t // 2, t - t // 2) for t in (max((-(-n // s) - 1) * s + k - n, 0)
                                               for n in (h, w))}
        if used == same:
            return [cls.write(pool=(k, k), stride=(s, s),
                              **({"padding": "same"} if same != {(0, 0)} else {}))], (*out, c)
        if len(used) == 1 and (b := used.pop())[0] == b[1] and 2 * b[0] <= k:
            return [cls.write(pool=(k, k), stride=(s, s), padding=(b[0], b[0]))], (*out, c)
        raise Foreign(f"a max pool padded {before} before and {pad - before} after, unlike "
                      "Keras' 'same'", (*out, c))
    also = ("maxpooling2d", "maxpool2d", "maxpooling1d", "maxpool1d")
    doc = ("max pooling; the stride defaults to the pool size; pad P at most half the pool; "
           "ceil is PyTorch's ceil_mode with its last-window rule")
    example = "maxpool 3 stride 2 pad 1"
    colour = "#e57373"

    def kept(self, row, k):  # and the int64 index of each maximum
        _Pool.kept(self, row, k)
        k.bytes(8 * row.units)


class AvgPool(_Pool):
    keyword = "avgpool"
    torch_reads = ("AvgPool1d", "AvgPool2d", "AvgPool3d")
    onnx_reads = ("AveragePool",)
    pad_fill = 0.0
    keras_reads = ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
    also = ("averagepooling2d", "avgpool2d", "averagepooling1d")
    doc = ("average pooling; the average counts real pixels only (Keras), or with countpad "
           "the padding's zeros too (PyTorch's count_include_pad, inception_v3's pools)")
    example = "avgpool 2"
    colour = "#f06292"
    options = (*_Pool.options,
               Flag("countpad", "countpad", True, False,
                    help="countpad (PyTorch's count_include_pad: padding zeros averaged in)"))


class _GlobalPool(Layer):
    colour = "#ffb74d"
    options = (Flag("keepdims", "keepdims", True, False,
                    help="keepdims (a 1x1xC map, Keras' keepdims=True)"),)

    @classmethod
    def rank_after(cls, fields, rank):
        return rank if fields["keepdims"] else 0

    def rule(self, x, ex):
        if len(x) < 2:
            raise RuleError(f"{self.kind} needs a feature map, received a flat vector of "
                            f"{fmt.count(x[0])} values")
        out = (*(1 for _ in x[:-1]), x[-1]) if self.keepdims else (x[-1],)
        if ex is not None:
            ex.append(f"one value per channel: {fmt.shape(x)} -> {fmt.shape(out)}")
        return Outcome(out, ops=prod(x), window=tuple((n, n, 0) for n in x[:-1]))

    def module(self, row):
        from ..backends.modules import GlobalPool
        return GlobalPool(self.kind == "globalmaxpool", len(row.input) - 1, self.keepdims)

    @classmethod
    def from_keras(cls, keras_class, cfg):
        return cls.write(keepdims=bool(cfg.get("keepdims")))

    @classmethod
    def from_read(cls, r):
        """A reduction over the spatial axes (ATen's mean and amax, ONNX's ReduceMean and
        ReduceMax): kept 1x1 it is written as the adaptive pool to 1."""
        if not r.on_spatial:
            r.refuse(f"a reduction over dimensions {r.reduced}, not the spatial ones")
        if r.get("keep"):
            return cls.adaptive.write(size=(1,) * len(r.sizes))
        return cls.write()

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        kind = "Max" if self.kind == "globalmaxpool" else "Average"
        keep = "keepdims=True" if self.keepdims else ""
        return [f"layers.Global{kind}Pooling{len(row.input) - 1}D({keep})"]

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        rank = len(row.input) - 1
        kind = "Max" if self.kind == "globalmaxpool" else "Avg"
        pool = ("", nn_call(f"nn.Adaptive{kind}Pool{rank}d", 1))
        return [pool] if self.keepdims else [pool, ("flat", "nn.Flatten()")]


class GlobalAvgPool(_GlobalPool):
    keyword = "globalavgpool"
    torch_reads = ("aten.mean",)
    onnx_reads = ("ReduceMean",)
    keras_reads = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")
    darknet_reads = ("avgpool",)

    @classmethod
    def from_darknet(cls, section):  # Darknet's result is a 1x1 map
        return [cls.write()], (1, 1, section.shape[2])
    also = ("globalaveragepooling2d", "globalaveragepooling1d")
    doc = "the mean of each channel: a vector of C values"
    example = "globalavgpool"
    kept = saves_nothing  # a mean: its gradient needs only the sizes


class GlobalMaxPool(_GlobalPool):
    keyword = "globalmaxpool"
    torch_reads = ("aten.amax",)
    onnx_reads = ("ReduceMax",)
    keras_reads = ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
    also = ("globalmaxpooling2d", "globalmaxpooling1d")
    doc = "the maximum of each channel: a vector of C values"
    example = "globalmaxpool"

    def kept(self, row, k):  # its input, and its output: where the maximum was
        k.save_input()
        k.new()
        k.save_output()


def adaptive_windows(n: int, o: int) -> list:
    """PyTorch's adaptive pooling: output i pools inputs floor(i n / o) to ceil((i+1) n / o)."""
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


class _Adaptive(Layer):
    args = (PerAxis("size", "the output size", example="7x7"),)
    colour = "#ffcc80"
    semantics = "PyTorch (AdaptiveAvgPool/AdaptiveMaxPool; Keras has no such layer)"

    @classmethod
    def from_read(cls, r):  # an ONNX global pool has no size: 1 per axis
        size = r.get("size")
        if size is not None and None in size:
            r.refuse("adaptive pooling that keeps an axis (None)")
        return cls.write(size=size or (1,) * len(r.sizes))

    def autocast(self, row):  # CPU autocast runs 3-D pooling in float32
        return "float32" if len(row.input) == 4 else None

    def rule(self, x, ex):
        rank = len(self.size)
        need_map(x, rank, self.kind)
        shape = (*self.size, x[-1])
        lanes = any(hasattr(n, "dtype") for n in x[:-1])  # a sweep's arrays of sizes
        if any(symbolic(n) for n in x[:-1]) or lanes and any(
                anywhere(n % o) for n, o in zip(x, self.size)):
            # open sizes, or lanes of uneven windows: the windows depend on each size
            return Outcome(shape, note="window sizes depend on the open input size")
        from fractions import Fraction
        counts, window = [], []
        for name, n, o in zip(axis_names(rank), x, self.size):
            if hasattr(n, "dtype"):  # lanes of sizes, each a whole number of windows
                counts.append(n)
                window.append((n // o, n // o, 0))
                continue
            if n % o == 0:  # equal windows: no need to list them
                sizes = (n // o,)
            elif o > MAX_ADAPTIVE:  # the windows are listed one by one: keep that bounded
                raise RuleError(f"{o:,} outputs of unequal windows over {n} along the "
                                f"{name}: at most {MAX_ADAPTIVE:,} (or a whole factor of {n})")
            else:
                sizes = [b - a for a, b in adaptive_windows(n, o)]
            counts.append(n if n % o == 0 else sum(sizes))
            window.append((max(sizes), Fraction(n, o), 0))
            if ex is not None:
                even = n % o == 0
                ex.append(f"{name}: {o} windows over {n}: " + (
                    f"each {n // o} wide, stride {n // o}" if even else
                    f"window i covers floor(i x {n} / {o}) to ceil((i + 1) x {n} / {o}), "
                    f"{min(sizes)} to {max(sizes)} wide"))
        uneven = not lanes and any(n % o for n, o in zip(x, self.size))
        return Outcome(shape, ops=prod(counts) * x[-1], window=tuple(window),
                       note="windows of unequal width: the receptive field is the widest's, "
                            "the jump the mean" if uneven else None)


class AdaptiveAvgPool(_Adaptive):
    keyword = "adaptiveavgpool"
    torch_reads = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
    onnx_reads = ("GlobalAveragePool",)  # ONNX keeps the 1x1: a flatten follows
    also = ("adaptiveavgpool2d",)
    doc = ("average pooling to a fixed output size, with PyTorch's windows (torchvision's "
           "classifier heads)")
    example = "adaptiveavgpool 7x7"

    def kept(self, row, k):  # to 1x1 it is a mean, which needs only the sizes
        if any(o != 1 for o in self.size):
            k.save_input()
        k.new()

    def module(self, row):
        from torch import nn
        return (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[
            len(self.size) - 1](self.size)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call(f"nn.AdaptiveAvgPool{len(self.size)}d", picture(self.size)))]

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        if any(n != 1 for n in self.size):  # Keras has only the global form
            return super().keras_code(row)
        return [f"layers.GlobalAveragePooling{len(self.size)}D(keepdims=True)"]


class AdaptiveMaxPool(_Adaptive):
    keyword = "adaptivemaxpool"
    torch_reads = ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
    onnx_reads = ("GlobalMaxPool",)
    doc = "max pooling to a fixed output size, with PyTorch's windows"
    example = "adaptivemaxpool 1"

    def kept(self, row, k):  # its input, and the int64 index of each maximum
        k.save_input()
        k.new()
        k.bytes(8 * row.units)

    def module(self, row):
        from torch import nn
        return (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)[
            len(self.size) - 1](self.size)

    def code(self, row):  # pragma: no mutate block (export, tested apart)
        return [("", nn_call(f"nn.AdaptiveMaxPool{len(self.size)}d", picture(self.size)))]

    def keras_code(self, row):  # pragma: no mutate block (export, tested apart)
        if any(n != 1 for n in self.size):
            return super().keras_code(row)
        return [f"layers.GlobalMaxPooling{len(self.size)}D(keepdims=True)"]


GlobalAvgPool.adaptive, GlobalMaxPool.adaptive = AdaptiveAvgPool, AdaptiveMaxPool
