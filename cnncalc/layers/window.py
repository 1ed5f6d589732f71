"""A sliding window along one axis, as Keras and PyTorch compute it (its output size, padding
per side, the explanation beside the formula): what convolutions, pooling and the size
solver share; and the padding words every windowed kind takes, written as code."""


from __future__ import annotations

from math import prod

from .base import SIDES, Amount, Choice, RuleError, nn_call, picture, symbolic


def window_axis(n, k, s, d, pad, ceil, axis, ex):
    """Output size, (before, after) padding and the input rows a floor leaves unused, of a
    sliding window (conv, pooling). ``n`` may be an int, a formula or a numpy array."""
    ke = d * (k - 1) + 1
    kt = f"{ke}" if d == 1 else f"{ke} (kernel {k}, dilation {d})"
    before, after = SIDES.get(axis, ("before", "after"))
    if pad in ("same", "causal"):
        return _keras_axis(n, ke, s, pad, axis, before, after, ex)
    if pad == "half":  # PyTorch's padding=k//2 on both sides (torchvision's layouts)
        pad = ke // 2
        if ex is not None:
            ex.append(f"{axis}: half padding: {ke} // 2 = {pad} on each side")
    p = 0 if pad == "valid" else pad
    span = n + 2 * p - ke

    def too_large():  # (made only when raised: n may be an array of a million sizes)
        return RuleError(f"the window {kt} is larger than the {axis} {n}"
                         f"{f' + 2 x {p} padding' if p else ''}; use 'same' padding or a "
                         "smaller kernel")
    if isinstance(span, int) and span < 0 and not ceil:
        raise too_large()
    if ceil:  # PyTorch lets the last window hang over the end, even past a small input
        out, text = _ceil_out(n, ke, s, p, span, axis, ex)
        if isinstance(out, int) and out < 1:
            raise too_large()
        if ex is not None:
            ex.append(text)
        return out, p, p + _relu((out - 1) * s + ke - n - 2 * p), 0
    out = span + 1 if s == 1 else span // s + 1
    dropped = 0 if s == 1 else span % s
    if ex is not None:
        ex.append(f"{axis}: floor(({n} + {2 * p} - {ke}) / {s}) + 1 = {out}"
                  + (f" ({dropped} left unused at the {after})" if dropped else ""))
    return out, p, p, dropped


def _keras_axis(n, ke, s, pad, axis, before, after, ex):
    """Keras' 'same' (the extra pixel of an odd total goes after) and 'causal' (all
    before, so no output sees the future)."""
    if pad == "same":
        out = n if s == 1 else -(-n // s)
        total = ke - 1 if s == 1 else _relu((out - 1) * s + ke - n)
        b, a = total // 2, total - total // 2
        if ex is not None:
            ex.append(f"{axis}: same padding, stride {s}: ceil({n} / {s}) = {out}, "
                      f"pad {b} {before}, {a} {after}")
        return out, b, a, 0
    out = n if s == 1 else (n - 1) // s + 1
    if ex is not None:
        ex.append(f"{axis}: causal padding: {ke - 1} before, none after; "
                  f"floor(({n} - 1) / {s}) + 1 = {out}")
    return out, ke - 1, 0, 0 if s == 1 else (n - 1) % s


def _ceil_out(n, ke, s, p, span, axis, ex):
    """PyTorch's ceil_mode: windows up to one hanging over the end, but none that would
    start in the padding after; the size and its explanation."""
    out = -(-span // s) + 1
    text = f"{axis}: ceil(({n} + {2 * p} - {ke}) / {s}) + 1 = {out}" if ex is not None else ""
    if not symbolic(out):  # (a formula leaves out PyTorch's last-window rule)
        drop = (out - 1) * s >= n + p  # the last window would start in the padding
        if drop is True and ex is not None:
            text += (f"; PyTorch drops the last window, which would start at "
                     f"{(out - 1) * s}, in the padding after {n} + {p}: {out - 1}")
        out = out - drop
        out = out * (out > 0)  # arrays: no window at all gives no output
    return out, text


def _relu(v):
    """max(v, 0) for an int, a numpy array or a formula."""
    return v.relu() if symbolic(v) else v * (v > 0)


def deconv_axis(n, k, s, d, pad, axis, ex):
    """Keras Conv*DTranspose: output size, (crop_before, crop_after) and output padding."""
    ke = d * (k - 1) + 1
    if pad == "same":
        out = n * s
        total = max(ke - s, 0)
        crop = (total // 2, total - total // 2)
        if ex is not None:
            ex.append(f"{axis}: same: {n} x {s} = {out}" + (
                f", crop {crop[0]} before and {crop[1]} after" if total else ""))
    else:
        out = (n - 1) * s + max(ke, s)
        crop = (0, 0)
        if ex is not None:
            ex.append(f"{axis}: ({n} - 1) x {s} + max({ke}, {s}) = {out}")
    return out, crop, max(s - ke, 0)


def padding_options(words=("valid", "same")):
    """'valid' (none), 'same' (Keras: the extra pixel after), 'pad P' per axis, and 'pad half'
    (PyTorch's k // 2 on both sides, as torchvision writes its layers)."""
    return (Choice("padding", words, "valid", help=" | ".join(words)),
            Amount("pad", "padding", default=0, minimum=0, example="1",
                   help="pad P | pad half", value_words=("half",)))


def padded_input(self, row):
    """``Layer.padded_copy`` of a window padded first, by a copy, where its padding is
    uneven (a convolution's)."""
    pads = (row.geometry or {}).get("pads")
    if not pads:
        return 0
    return prod(n + b + a for n, (b, a) in zip(row.input, pads)) * row.input[-1] * uneven(pads)


def uneven(pads):
    """Whether padding is uneven (Keras' 'same' with a stride, causal), for every lane of a
    sweep: the backend pads first, as PyTorch's own padding is even on both sides."""
    out = False
    for b, a in pads or ():
        out = out | (b != a)
    return out


def save_padded(row, k, copied):
    """A window keeps what it reads: its input, or (``copied``) the padded copy."""
    pads = (row.geometry or {}).get("pads") or ()
    k.save_read(False if copied is None else copied,
                prod(n + b + a for n, (b, a) in zip(row.input, pads)) * row.input[-1])


def resolve_pad(padding, i):
    return padding if isinstance(padding, str) else padding[i]


def unless(values: tuple, default):  # pragma: no mutate block (export, tested apart)
    """None (an argument left out) when every axis has PyTorch's default."""
    return None if all(v == default for v in values) else values


def pad_code(pads, rank, value=None):  # pragma: no mutate block (export, tested apart)
    """[(suffix, expression)] padding ahead of a window when PyTorch's own symmetric
    padding cannot say it: ``nn.ZeroPad2d((0, 1, 0, 1))`` (left, right, top, bottom)."""
    flat = []
    for b, a in reversed(pads):
        flat += [b, a]
    if value is None:
        return [("pad", nn_call(f"nn.ZeroPad{rank}d", tuple(flat)))]
    return [("pad", f"nn.ConstantPad{rank}d({tuple(flat)!r}, {value})")]


def keras_pad(pads, rank) -> str:  # pragma: no mutate block (export, tested apart)
    """Keras' ZeroPadding, rows first: ((top, bottom), (left, right))."""
    pairs = tuple(tuple(p) for p in picture(pads))  # written whole: one pair per axis
    return f"layers.ZeroPadding{rank}D({pairs[0] if rank == 1 else pairs!r})"


def _flat(v) -> tuple:  # pragma: no mutate block (export, tested apart)
    return tuple(v) if isinstance(v, tuple) else (v,)


def keras_window(layer, row, cls, *args, **kwargs) -> list:  # pragma: no mutate block (export, tested apart)
    """A windowed Keras layer: Keras' own padding word, or explicit pads first."""
    rank = len(getattr(layer, "kernel", None) or getattr(layer, "pool"))
    pads = row.geometry["pads"] if "pads" in (row.geometry or {}) else ()
    word = layer.padding if isinstance(layer.padding, str) and layer.padding != "half" \
        else "valid"
    strides, dilation = kwargs.get("strides") or (1,), kwargs.get("dilation_rate") or (1,)
    if any(v > 1 for v in _flat(strides)) and any(v > 1 for v in _flat(dilation)):
        from ..errors import CnnCalcError
        raise CnnCalcError(f"layer '{row.name}' ({layer.describe()}): Keras refuses a stride "
                           "above 1 together with a dilation above 1")
    out = []
    if word == "valid" and any(b or a for b, a in pads):
        out.append(keras_pad(pads, rank))
    out.append(nn_call(f"layers.{cls}{rank}D", *args,
                       padding=word if word != "valid" else None, **kwargs))
    return out

