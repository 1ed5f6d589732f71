"""A spec as an ONNX file: the exported PyTorch module (to_pytorch.py), traced by PyTorch's
ONNX exporter with a dynamic batch, every value's shape inferred, and each node named by
its spec layer (the node names start with the module attribute, which is the layer's)."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..layers.base import picture


def to_onnx(spec, path: str, code: str | None = None, module=None) -> None:
    """Write the spec (text, a Path, a network or a summary) to ``path`` as ONNX (opset 20:
    GELU is one node). ``module``: an instance of the exported class, with trained weights,
    to write instead of a freshly initialised one."""
    try:
        import onnx
        import torch
    except ImportError:
        raise CnnCalcError("exporting ONNX needs PyTorch and onnx: "
                           "pip install 'cnncalc[torch,onnx]'") from None
    from ..analysis.walk import Summary
    from ..api import summarize
    from .to_pytorch import load_class, to_pytorch_code
    summary = spec if isinstance(spec, Summary) else summarize(spec)
    model = (module or load_class(code or to_pytorch_code(summary))()).eval()
    shape = summary.network.input.shape
    x = torch.zeros(1, shape[-1], *picture(shape[:-1]))
    names = [n.replace(".", "_") for n, _ in summary.outputs]
    import io
    import warnings
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes on constant folding
        warnings.simplefilter("ignore")
        try:  # no constant folding: batchnorm stays a node of its own, as the spec has it
            torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["input"],
                              output_names=names, opset_version=20, do_constant_folding=False,
                              dynamic_axes={k: {0: "batch"} for k in ["input", *names]})
        except Exception as e:  # noqa: BLE001 - the exporter's own refusal, said plainly
            raise CnnCalcError(f"PyTorch's ONNX exporter refused {summary.network.name}: "
                               f"{str(e).splitlines()[0][:300]}") from None
    proto = onnx.shape_inference.infer_shapes(onnx.load_from_string(buffer.getvalue()))
    proto.doc_string = f"{summary.network.name}, written by cnncalc"
    from ..files import write
    write(path, proto.SerializeToString())
