"""Spec text, files and networks to summaries: what the API, the importers and the
exporters share (so that nothing below the API imports it)."""

from __future__ import annotations

import os

from .errors import CnnCalcError


def parse(text: str, file: str | None = None, limits=None, set: dict | None = None):
    """Spec text → the network (a tree of layers). ``set`` gives the spec's 'param' knobs
    other values: ``parse(text, set={"width": 48})``."""
    from .language.expand import load
    return load(text, file, limits, set)


def read_bytes(path, max_bytes: int = 1 << 20) -> bytes:
    """A spec file's bytes, never more than one past ``max_bytes``: a huge file is refused
    (by ``parse``'s limit) without being read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as e:
        text = str(path)
        inline = "|" in text or text.lstrip().startswith("input ")
        raise CnnCalcError(f"cannot read the spec: {e.strerror}", file=text,
                           hint="this looks like spec text, not a file name" if inline
                           else None) from None


def read(path, limits=None, set: dict | None = None):
    """A spec file → the network."""
    from .language.expand import Limits
    limits = limits or Limits()
    return parse(read_bytes(path, limits.max_bytes), str(path), limits, set)


def analyse(network, explain: bool = False, open_sizes: bool = False):
    """Every layer's shape, counts, MACs and receptive field: a ``Summary``. With
    ``open_sizes``, open input sizes (input HxWx3) become formulas."""
    from .analysis.walk import analyse as _analyse
    return _analyse(network, explain, open_sizes)


def summarize(spec, input: str | None = None, explain: bool = False, set: dict | None = None):
    """Text, a file (``pathlib.Path``) or a network → its ``Summary``. ``input`` replaces
    the input size for a what-if: ``summarize(text, input="512x512x3")``; ``set`` the
    spec's knobs: ``summarize(text, set={"width": 48})``."""
    if isinstance(spec, os.PathLike):
        network = read(spec, set=set)
    elif isinstance(spec, (str, bytes)):
        network = parse(spec, set=set)
    else:
        network = spec
    if input:
        network = with_input(network, input)
    return analyse(network, explain, open_sizes=True)


def with_input(network, shape: str, option: str = "--input"):
    """The same network on another input (``--input 512x512x3``, ``?x?x3``); the rank
    must stay, and the sizes are written channels last."""
    from .language.expand import load
    try:
        new = load(f"input {shape}").input
    except CnnCalcError as e:
        raise CnnCalcError(f"{option} {shape}: {e.message}" + _x_hint(shape)) from None
    old = network.input.shape
    if new.rank != network.input.rank:
        raise CnnCalcError(f"{option} {shape}: the spec's input is "
                           f"{'x'.join(map(str, old))}; give as many sizes")
    first, last = new.shape[0], new.shape[-1]
    if new.rank and first == old[-1] != last and isinstance(last, int) and last > first:
        flipped = "x".join(map(str, (*new.shape[1:], first)))
        raise CnnCalcError(f"{option} {shape}: did you mean {flipped}? cnncalc writes sizes "
                           f"channels last (the spec's input has {old[-1]} channels)")
    return network.with_input(new.shape)


def _x_hint(shape: str) -> str:
    """'224,224,3' or '32×32×3': say how sizes are written."""
    import re
    parts = [p for p in re.split(r"[,×*\s]+", shape.strip("()[] ")) if p]
    if len(parts) > 1 and all(p.isdigit() or p == "?" for p in parts):
        return f"; sizes are joined with x: {'x'.join(parts)}"
    return ""
