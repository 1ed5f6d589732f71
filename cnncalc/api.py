"""The Python API: read a spec, analyse it, render it, build and check it in PyTorch.
Errors raised here carry the file, line, column and the line with a caret, as the CLI
prints them (``str(error)``)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CnnCalcError


def parse(text: str, file: str | None = None, limits=None, set: dict | None = None):
    """Spec text → the network (a tree of layers). ``set`` gives the spec's 'param' knobs
    other values: ``parse(text, set={"width": 48})``."""
    from .language.expand import load
    return load(text, file, limits, set)


def read(path, limits=None, set: dict | None = None):
    """A spec file → the network."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise CnnCalcError(f"cannot read the spec: {e.strerror}", file=str(path)) from None
    return parse(data, str(path), limits, set)


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


def sweep(spec, vary: dict, where: str | None = None, pareto=None, sort: str | None = None,
          batch: int = 1, dtype: str = "float32", optimizer: str = "adam", frame: bool = False,
          scheduler=None, foreach: bool = True, amp: bool = False, checkpoint=()):
    """Every combination of the spec's knobs ('param width = 64'): ``vary`` maps a knob (or
    'input') to a list of values or a range text ('16:128:16'). Returns a list of records
    (knobs, params, trainable, macs, flops, rf, memory, training, output, valid, and
    'pareto' with ``pareto='params,macs'``), or a pandas DataFrame with ``frame=True``::

        cnncalc.sweep(text, vary={"width": "16:128:16", "depth": [1, 2, 3]},
                      where="params < 5M and rf >= 100", pareto="params,macs")

    Grids of 256 variants and more are walked as numpy lanes, a million variants a second;
    ``scheduler`` (a Dask address, Client or cluster) runs their chunks on Dask's workers.
    """
    from .analysis.sweep import sweep as _sweep, values
    grid = {k: values(k, v) if isinstance(v, str) else list(v) for k, v in vary.items()}
    records = _sweep(spec, grid, where, pareto, sort, batch, dtype, optimizer,
                     scheduler=scheduler, foreach=foreach, amp=amp, checkpoint=checkpoint)
    if frame:
        try:
            import pandas
        except ImportError:
            raise CnnCalcError("frame=True needs pandas: pip install pandas") from None
        return pandas.DataFrame.from_records(records)
    return records


def to_torch(spec, inplace: bool = True, checkpoint=()):
    """An ``nn.Module`` computing the spec (channels last in and out, as the spec);
    ``checkpoint`` ('all', or block names, prefixes or macros) recomputes those blocks in
    the backward pass instead of keeping their activations."""
    try:
        from .backends.torch import to_torch as _to_torch
    except ImportError:
        raise CnnCalcError("this needs PyTorch: pip install 'cnncalc[torch]'") from None
    return _to_torch(_summary(spec), inplace, checkpoint)


def check(spec, device: str = "cpu", batch: int = 1, weights: str | None = None,
          against=None, max_memory: str | None = None):
    """Build the spec in PyTorch, run it and compare every layer; ``print`` the result for
    the table, ``result.ok`` for the verdict. ``max_memory`` ('2GiB') refuses a run that
    would need more, as the command's --max-memory. With ``against`` (an nn.Module, or
    'FILE.py:FACTORY', 'model.onnx', 'model.cfg'), compare the spec layer for layer with that
    model instead, imported at the spec's input size."""
    summary = _summary(spec)
    if against is not None:
        from .analysis.compare import compare
        return compare(summary, _import_any(against, summary).summary,
                       against if isinstance(against, str) else type(against).__name__)
    from .backends.check import check as _check
    return _check(summary, device=device, batch=batch, weights=weights, max_memory=max_memory)


def _import_any(model, summary):
    """The import of ``model`` at the spec's input size, by what it is."""
    from .fmt import shape
    size = shape(summary.network.input.shape)
    model = str(model) if isinstance(model, Path) else model
    if not isinstance(model, str):
        from .interop.from_torch import from_torch
        return from_torch(model, size)
    if model.endswith(".onnx"):
        from .interop.from_onnx import from_onnx
        return from_onnx(model, size)
    if model.endswith(".cfg"):
        from .interop.from_darknet import from_darknet
        return from_darknet(model, size)
    if model.endswith((".keras", ".json")):
        from .interop.from_keras import from_keras
        return from_keras(model, size)
    if ".py:" in model:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise CnnCalcError("comparing with a PyTorch module needs PyTorch: "
                               "pip install 'cnncalc[torch]'") from None
        from .interop.from_torch import from_torch, load_factory
        return from_torch(load_factory(model), size)
    raise CnnCalcError(f"--against {model}: expected FILE.py:FACTORY, MODEL.onnx, MODEL.cfg, "
                       "MODEL.keras or MODEL.json (Keras)")


def _summary(spec):
    from .analysis.walk import Summary
    return spec if isinstance(spec, Summary) else summarize(spec)
