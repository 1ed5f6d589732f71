"""cnncalc: shapes, counts and more of convolutional networks, from a text spec.

    >>> import cnncalc
    >>> s = cnncalc.summarize("input 32x32x3 | conv 3x3x16 same relu | maxpool 2")
    >>> s.output, s.totals.params
    ((16, 16, 16), 448)

Names load lazily, so ``import cnncalc`` costs next to nothing."""

from .errors import CnnCalcError, LimitError, SpecDesignError, SpecSyntaxError

__version__ = "0.2.0"
__all__ = ["parse", "read", "analyse", "summarize", "with_input", "to_torch", "check", "visualize", "sweep",
           "sizes", "fit", "solve",
           "from_torch", "from_onnx", "from_darknet", "from_keras", "to_pytorch_code", "to_keras_code", "to_onnx", "Summary", "Row", "Network", "CnnCalcError", "SpecSyntaxError", "SpecDesignError",
           "LimitError"]

_LAZY = {"parse": "api", "read": "api", "analyse": "api", "summarize": "api",
         "with_input": "api", "to_torch": "api", "check": "api", "visualize": "api", "sweep": "api",
         "sizes": "api", "fit": "api", "solve": "api",
         "from_torch": "interop.from_torch", "from_onnx": "interop.from_onnx",
         "from_darknet": "interop.from_darknet", "from_keras": "interop.from_keras", "to_pytorch_code": "interop.to_pytorch",
         "to_onnx": "interop.to_onnx", "to_keras_code": "interop.to_keras",
         "Summary": "analysis.summary", "Row": "analysis.summary", "Network": "layers.network"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
