"""A PyTorch module as a cnncalc spec: the module runs on meta tensors (``torch_trace``), so
its own Python decides what runs, and every ATen operator outside torch.nn's layers is
seen with its shapes; each node maps to a statement (``graph.Op``) and ``emit.emit``
writes the spec. Module paths become layer names (layer1.0.conv1). Anything without a
counterpart is listed, with its node and operator, and nothing is guessed."""

from __future__ import annotations

from ..errors import CnnCalcError
from .emit import emit
from .graph import Imported, Unsupported, fuse, reaching
from .rewrite import rewrite, settled, unfolded
from .layout import Layout
from .torch_graph import flat as _flat
from .torch_importer import _Importer
from .torch_modules import _is_cnncalc, module_handler


def trace(module, input_shape: tuple, layout: str):
    """The graph of ``module`` run on meta tensors (``torch_trace``), for a spec-order input
    (width first) fed as the module expects it: 'nchw' or 'nhwc' (picture order)."""
    from .torch_trace import record
    *spatial, c = input_shape
    picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
    example = (1, *picture, c) if layout == "nhwc" else (1, c, *picture)
    try:
        return record(module, example, lambda m: module_handler(m) is not None)
    except CnnCalcError:
        raise
    except Exception as e:  # the model's own code failed on this input
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        if "meta" in reason and ("item()" in reason or "data-dependent" in reason
                                 or "Cannot copy out" in reason):
            reason += (" (its forward reads a tensor's values, and the import runs on shapes "
                       "alone: a model whose Python decides by its values cannot be read)")
        raise CnnCalcError(f"{type(module).__name__} does not run on an input of "
                           f"{'x'.join(map(str, input_shape))}: {reason}"
                           + _channels_hint(module, input_shape)) from None


def _channels_hint(module, shape) -> str:
    """'3x32x32' for a module whose first convolution takes 3 channels: PyTorch's order."""
    import torch
    first = next((m for m in module.modules() if isinstance(
        m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))), None)
    if first is None or len(shape) < 2 or shape[0] != first.in_channels or \
            shape[-1] == first.in_channels:
        return ""
    flipped = "x".join(map(str, (*shape[1:], shape[0])))
    return f"\ndid you mean --input {flipped}? cnncalc writes sizes channels last"


def from_torch(module, input: str = "224x224x3", layout: str | None = None,
               network: str | None = None, partial: bool = False) -> Imported:
    """The spec of a PyTorch module, and its summary. ``input`` is the spec's input (width
    first); ``layout`` how the module takes it: 'nchw' (PyTorch's convention, the default)
    or 'nhwc' (cnncalc's own modules)."""
    import torch

    from ..language.expand import load
    from ..specs import summarize
    if not isinstance(module, torch.nn.Module):
        raise CnnCalcError(f"expected a torch.nn.Module to import, received "
                           f"{type(module).__name__}")
    shape = load(f"input {input}").input.shape
    if any(isinstance(v, str) for v in shape):
        raise CnnCalcError(f"--input {input}: importing needs numbers, e.g. 224x224x3")
    layout = layout or ("nhwc" if _is_cnncalc(module) else "nchw")
    rank = len(shape) - 1
    gm = trace(module, shape, layout)
    imp = _Importer(gm, Layout(layout == "nchw", True, rank) if rank else Layout(True, False, 0),
                    type(module).__name__)
    ops = imp.run(shape)
    imp.name_functions()
    order = {node.name: i for i, node in enumerate(gm.graph.nodes)}
    imp.problems.sort(key=lambda p: order.get(p[0], 0))
    if imp.problems and not partial:  # with the views no pass reads, which come first
        left = unfolded(rewrite(list(ops), list(imp.outputs))[0])
        raise Unsupported(sorted(imp.problems + left, key=lambda p: order.get(p[0], 0)),
                          type(module).__name__)
    outputs = imp.outputs
    if imp.problems:  # --partial: what the nodes without a counterpart read is the output
        ops, outputs = _frontier(imp, gm, ops)
    ops, outputs = settled(ops, outputs, partial, imp.problems, type(module).__name__)
    ops, outputs = fuse(ops, outputs)
    name = network or getattr(module, "spec_name", None) or _snake(type(module).__name__)
    text = emit(ops, outputs, "x".join(map(str, shape)), name)
    if imp.problems:
        text += (f"# import stopped at node {imp.problems[0][0]}: {imp.problems[0][1]} has no "
                 "cnncalc counterpart\n")
    else:
        text += _never_run(module, gm)
    return Imported(text, summarize(text))


def _frontier(imp, gm, ops):
    """--partial: the tensors the first nodes without a counterpart read become the
    outputs (a detector's raw maps, before the decoding the language does not say), with
    the outputs that did import; only what they are made from is kept."""
    outputs = []
    failed = {name for name, _ in imp.problems}
    for node in gm.graph.nodes:
        if node.name in failed:
            for a in _flat(node.args) + _flat(node.kwargs.values()):
                k = imp.ids.get(getattr(a, "name", None))
                if k is not None and k != "input" and k not in outputs:
                    outputs.append(k)
    outputs += [o for o in imp.outputs if o not in outputs and o != "input"]
    order = {op.id: i for i, op in enumerate(ops)}
    outputs.sort(key=lambda k: order.get(k, -1))
    return reaching(ops, outputs), outputs


def _owners(name, used):
    """The module paths above a parameter's name that ran as leaves."""
    parts = name.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in used]


def _never_run(module, gm) -> str:
    """A comment naming the parameters of modules that never run (smp's PSPNet keeps a
    ResNet's layer3 and layer4 it does not use) or whose results no output reads (an
    encoder's stage a decoder skips): PyTorch's parameters() counts them, the spec, which
    is what computes the outputs, does not."""
    used = set()
    for node in _reaching_output(gm.graph):
        if node.op in ("get_attr", "call_module"):  # a leaf: its parameters (and any below)
            used.add(node.target)
    idle = [(n, p.numel()) for n, p in module.named_parameters() if n not in used and
            not any(n.startswith(u + ".") for u in _owners(n, used))]
    if not idle:
        return ""
    owners = list(dict.fromkeys(".".join(n.split(".")[:2]) for n, _ in idle))
    more = ", ..." if len(owners) > 4 else ""
    return (f"# not in this spec: {sum(c for _, c in idle):,} parameters of modules that never "
            f"run or whose results no output reads ({', '.join(owners[:4])}{more})\n")


def _reaching_output(graph) -> list:
    """The nodes of a recorded graph that the output is computed from."""
    live, todo = {}, [n for n in graph.nodes if n.op == "output"]
    while todo:
        node = todo.pop()
        if node.name not in live:
            live[node.name] = node
            todo += [a for a in _flat(node.args) + _flat(node.kwargs.values())
                     if hasattr(a, "op")]
    return list(live.values())


def _snake(name: str) -> str:
    """A class name as a network's: ResNet -> res_net, DLA -> dla, VGG16Net -> vgg16_net."""
    import re
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower() \
        or "network"


def load_factory(where: str, meta: bool = False):
    """'path/to/models.py:make_model' → the module its factory returns (running that file:
    it is the user's own code, and importing it is the point); ``meta``: built on PyTorch's
    meta device, its weights shapes without memory."""
    import importlib.util
    import sys
    from pathlib import Path
    path, _, factory = where.rpartition(":")
    if not path or not factory:
        raise CnnCalcError(f"{where}: expected FILE.py:FACTORY, e.g. models.py:resnet50")
    file = Path(path)
    if not file.is_file():
        raise CnnCalcError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(f"_cnncalc_user_{file.stem}", file)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise CnnCalcError(f"{path}: running it failed: {type(e).__name__}: {e}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(mod, factory, None)
    if fn is None or not callable(fn):
        names = [n for n in dir(mod) if callable(getattr(mod, n)) and not n.startswith("_")]
        raise CnnCalcError(f"{path} has no callable {factory!r}; it has: {', '.join(names[:12])}")
    import contextlib

    import torch
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            module = fn()
    except Exception as e:
        raise CnnCalcError(f"{where}(): {type(e).__name__}: {e}") from None
    if not isinstance(module, torch.nn.Module):
        raise CnnCalcError(f"{where}() returned {type(module).__name__}, not a torch.nn.Module")
    return module

