"""A spec as an ONNX file: the exported PyTorch module (to_pytorch.py), traced by PyTorch's
ONNX exporter with a dynamic batch, every value's shape inferred, and each node named by
its spec layer (the node names start with the module attribute, which is the layer's)."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..layers.base import axis_names, picture


def to_onnx(spec, path: str, code: str | None = None, module=None) -> None:
    """Write the spec (text, a Path, a network or a summary) to ``path`` as ONNX (opset 20:
    GELU is one node). ``module``: an instance of the exported class, with trained weights,
    to write instead of a freshly initialised one. A spec with open sizes (``input ?x?x3``)
    gets a dynamic height and width, right at its exact sizes ('cnncalc sizes' lists them:
    a 'same' padding at a stride is traced for one parity), and checked at two of them."""
    try:
        import onnx
        import torch
    except ImportError:
        raise CnnCalcError("exporting ONNX needs PyTorch and onnx: "
                           "pip install 'cnncalc[torch,onnx]'") from None
    from ..analysis.summary import Summary
    from ..specs import summarize
    from .to_pytorch import load_class, to_pytorch_code
    summary = spec if isinstance(spec, Summary) else summarize(spec)
    check = None
    if any(isinstance(v, str) for v in summary.network.input.shape):
        # open sizes: traced at one exact size with height and width dynamic, then run at
        # another and held against the calculator there
        summary, check = _stand_ins(summary.network)
    model = (module or load_class(code or to_pytorch_code(summary))()).eval()
    shape = summary.network.input.shape
    x = torch.zeros(1, shape[-1], *picture(shape[:-1]))
    names = [n.replace(".", "_") for n, _ in summary.outputs]
    axes = {0: "batch"}
    if check is not None:
        axes.update({i + 2: a for i, a in enumerate(picture(axis_names(len(shape) - 1)))})
    import io
    import warnings
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes on constant folding
        warnings.simplefilter("ignore")
        try:  # no constant folding: batchnorm stays a node of its own, as the spec has it
            torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["input"],
                              output_names=names, opset_version=20, do_constant_folding=False,
                              dynamic_axes={k: axes for k in ["input", *names]})
        except Exception as e:  # noqa: BLE001 - the exporter's own refusal, said plainly
            raise CnnCalcError(f"PyTorch's ONNX exporter refused {summary.network.name}: "
                               f"{str(e).splitlines()[0][:300]}") from None
    proto = onnx.shape_inference.infer_shapes(onnx.load_from_string(buffer.getvalue()))
    proto.doc_string = f"{summary.network.name}, written by cnncalc"
    if check is not None:
        _same_at(proto, check)
    from ..files import write
    write(path, proto.SerializeToString())


def _stand_ins(network):
    """The summary at an exact input size to trace (the middle of the exact sizes from 32
    to 512) and the summary at another (the smallest) to check the file at."""
    from ..analysis.sizes import sweep
    from ..specs import summarize, with_input
    sizes = {}
    for axis, v in zip(sweep(network, 1, 512), [v for v in network.input.shape[:-1]
                                                 if isinstance(v, str)]):
        exact = [int(n) for n in axis.values[axis.exact] if n >= 16] or \
            [int(n) for n in axis.values[axis.exact]]
        if len(exact) < 2:
            raise CnnCalcError(f"export --to onnx: {network.name} has fewer than two exact "
                               f"sizes up to 512 along {v}; give one with --input")
        sizes[v] = (exact[len(exact) // 2], exact[0])
    def at(k):
        return "x".join(str(sizes[v][k]) if isinstance(v, str) else str(v)
                        for v in network.input.shape)
    return summarize(with_input(network, at(0))), summarize(with_input(network, at(1)))


def _same_at(proto, summary):
    """Run the file at another size; its outputs must have the calculator's shapes there,
    or it fixed a size (a crop, a reshape) while being traced."""
    import numpy as np
    import onnxruntime as ort
    shape = summary.network.input.shape
    x = np.zeros((1, shape[-1], *picture(shape[:-1])), np.float32)
    size = "x".join(map(str, shape))
    fixed = (f"export --to onnx: {summary.network.name} fixes a size while it is traced (a "
             "centre crop, a reshape), so its file cannot take open sizes; export it at one "
             "size with --input")
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its failure is said below, once
    try:
        got = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"]).run(None, {"input": x})
    except Exception as e:  # noqa: BLE001 - the runtime's own refusal at the other size
        raise CnnCalcError(f"{fixed} (at {size}: {str(e).splitlines()[0][-160:]})") from None
    for y, (name, out) in zip(got, summary.outputs):
        want = (out[-1], *picture(out[:-1])) if len(out) > 1 else tuple(out)
        if tuple(y.shape[1:]) != want:
            raise CnnCalcError(f"{fixed} (at {size} it gives {tuple(y.shape[1:])} for {name}, "
                               f"not {want})")
