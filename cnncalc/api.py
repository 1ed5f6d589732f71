"""The Python API: read a spec, analyse it, render it, build and check it in PyTorch.
Errors raised here carry the file, line, column and the line with a caret, as the CLI
prints them (``str(error)``)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CnnCalcError
from .specs import analyse, parse, read, summarize, with_input  # noqa: F401 (the API's own)


def sweep(spec, vary: dict, where: str | None = None, pareto=None, sort: str | None = None,
          batch: int = 1, dtype: str = "float32", optimizer: str = "adam", frame: bool = False,
          scheduler=None, foreach: bool = True, amp: bool = False, checkpoint=(),
          file: str | None = None, progress=None):
    """Every combination of the spec's knobs ('param width = 64'): ``vary`` maps a knob (or
    'input') to a list of values or a range text ('16:128:16'). Returns a list of records
    (knobs, params, trainable, macs, flops, rf, memory, training, output, valid, and
    'pareto' with ``pareto='params,macs'``), or a pandas DataFrame with ``frame=True``::

        cnncalc.sweep(text, vary={"width": "16:128:16", "depth": [1, 2, 3]},
                      where="params < 5M and rf >= 100", pareto="params,macs")

    Grids of 256 variants and more are walked as numpy lanes, a million variants a second;
    ``scheduler`` (a Dask address, Client or cluster) runs their chunks on Dask's workers;
    ``progress(n)`` is told each n variants done; ``file`` names the spec in messages.
    """
    from .analysis.sweep import sweep as _sweep, values
    grid = {k: values(k, v) if isinstance(v, str) else list(v) for k, v in vary.items()}
    records = _sweep(spec, grid, where, pareto, sort, batch, dtype, optimizer, file,
                     progress=progress, scheduler=scheduler, foreach=foreach, amp=amp,
                     checkpoint=checkpoint)
    if frame:
        try:
            import pandas
        except ImportError:
            raise CnnCalcError("frame=True needs pandas: pip install pandas") from None
        return pandas.DataFrame.from_records(records)
    return records


def sizes(spec, lo: int = 1, hi: int = 4096, open_all: bool = False) -> list:
    """Which input sizes the design (text, a file's Path or a network) accepts, per open
    size of its input ('input ?x?x3';
    ``open_all`` opens every spatial size): a list of ``Axis`` records (``name``, and numpy
    arrays ``values``, ``valid`` and ``exact`` masks, ``output``: the output size, or None
    where the output is a vector). Exact: valid, and no floor leaves input rows unused::

        axis = cnncalc.sizes("input ?x?x3 | conv 3x3x8 stride 2")[0]
        axis.values[axis.exact][:3]  # array([3, 5, 7])
    """
    from .analysis.sizes import check_range, sweep as _sweep
    check_range(lo, hi, f"sizes from {lo} to {hi}")
    network = read(spec) if isinstance(spec, os.PathLike) else \
        parse(spec) if isinstance(spec, (str, bytes)) else spec
    if open_all:
        network = with_input(network, "x".join(["?"] * network.input.rank
                                               + [str(network.input.shape[-1])]))
    return _sweep(network, lo, hi)


def solve(size_in: int, size_out: int, kernels=range(1, 8), strides=range(1, 5),
          dilations=range(1, 4)) -> list:
    """Every window (kernel, stride, padding, dilation) that takes ``size_in`` to
    ``size_out`` by conv's and pooling's rule: a list of dicts, exact ones (no input row
    left unused) first: ``cnncalc.solve(32, 16)[0]``."""
    from .analysis.solve import windows
    return windows(size_in, size_out, kernels, strides, dilations)


def fit(spec, memory, dtype: str = "float32", optimizer: str = "adam", foreach: bool = True,
        amp: bool = False, checkpoint=()) -> dict:
    """The largest batch that fits in ``memory`` (bytes, or '16GiB'), for training (with
    ``optimizer``) and for inference: a dict with 'training' and 'inference' (0 where not
    even one example fits) and the bytes behind them ('training_bytes', ...)."""
    from .analysis.memory import fit as _fit
    from .fmt import parse_bytes
    size = parse_bytes(memory) if isinstance(memory, str) else int(memory)
    return _fit(_summary(spec), size, dtype, optimizer, foreach, amp, checkpoint)


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
          against=None, max_memory: str | None = None, backend: str = "torch",
          progress=None):
    """Build the spec in PyTorch, run it and compare every layer; ``print`` the result for
    the table, ``result.ok`` for the verdict. ``max_memory`` ('2GiB') refuses a run that
    would need more, as the command's --max-memory; ``progress(1)`` ticks per layer run.
    ``backend='keras'`` builds it in Keras 3 instead and compares each layer's shape and
    ``count_params()``. With ``against`` (an nn.Module, or 'FILE.py:FACTORY', 'model.onnx',
    'model.cfg', 'model.keras'), compare the spec layer for layer with that model instead,
    imported at the spec's input size."""
    summary = _summary(spec)
    if backend not in ("torch", "keras"):
        raise CnnCalcError(f"backend {backend!r}: expected 'torch' or 'keras'")
    if backend == "keras":
        from .interop.to_keras import keras_check
        return keras_check(summary)
    if against is not None:
        from .analysis.compare import compare
        return compare(summary, _import_any(against, summary).summary,
                       against if isinstance(against, str) else type(against).__name__)
    from .backends.check import check as _check
    return _check(summary, device=device, batch=batch, weights=weights, max_memory=max_memory,
                  progress=progress)


def visualize(spec, layer: str, filters="all", steps: int = 100, seed: int = 0,
              weights: str | None = None, progress=None) -> list:
    """Filter visualisation (the lecture notes' gradient ascent): for each of ``layer``'s
    filters ('all', or a number), the input that maximises its mean activation, from
    noise in ``steps`` normalised steps. A list of (filter, image, mean before, after), each
    image a numpy array in the spec's input shape; ``weights``: a trained model's
    (safetensors or a state dict), else random ones (seed ``seed``)::

        for k, image, before, after in cnncalc.visualize(text, "conv_1", steps=50): ..."""
    from .backends.visualize import visualize as _visualize
    return _visualize(_summary(spec), layer, filters, steps, seed, weights, progress)


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
    from .analysis.summary import Summary
    return spec if isinstance(spec, Summary) else summarize(spec)
