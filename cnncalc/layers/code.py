"""How kinds write themselves as source code: a torch.nn call, a fused activation, a Keras
layer."""


from __future__ import annotations

KINDS: dict = {}  # keyword → class


class Whole(tuple):
    """A tuple ``nn_call`` writes whole: a shape (4, 4, 4), not a kernel size 4."""


def nn_call(cls: str, *args, **kwargs) -> str:  # pragma: no mutate block (export, tested apart)
    """``nn.Conv2d(3, 64, kernel_size=3)``: keyword arguments left out when None; per-axis
    tuples of one repeated value written as that value. A class without 'nn.' is one of
    the file's own (a kind's ``torch_helper``): ``LayerScale(96, init=1e-06)``."""
    def text(v):
        if isinstance(v, tuple) and not isinstance(v, Whole) and v and all(i == v[0] for i in v):
            v = v[0]
        return repr(tuple(v)) if isinstance(v, Whole) else repr(v)
    parts = [text(a) for a in args] + [f"{k}={text(v)}" for k, v in kwargs.items()
                                       if v is not None]
    return f"{cls}({', '.join(parts)})"


def keras_code_default(layer, row):
    from ..errors import CnnCalcError
    raise CnnCalcError(f"layer '{row.name}' ({layer.describe()}): cnncalc cannot write "
                       f"'{layer.kind}' as Keras source yet")


def keras_act(name):  # pragma: no mutate block (export, tested apart)
    """A fused activation as Keras' argument: activation="relu" (None for none)."""
    from .activations import ACTIVATIONS
    return None if not name or name == "linear" else ACTIVATIONS[name].keras


def act_code(name, inplace=True):  # pragma: no mutate block (export, tested apart)
    """[(suffix, expression)] for a fused activation ('conv 3x3x64 relu'), in place where
    ``inplace``."""
    from .activations import ACTIVATIONS
    if not name or name == "linear":
        return []
    code = ACTIVATIONS[name].code()
    if inplace and code in ("nn.ReLU()", "nn.ReLU6()", "nn.Hardswish()", "nn.SiLU()",
                            "nn.Hardsigmoid()"):
        code = code[:-1] + "inplace=True)"
    return [("act", code)]

