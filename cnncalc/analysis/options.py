"""The settings memory estimates take, in one light module (the command line lists them
without importing the calculator)."""

from __future__ import annotations

DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}

# per trainable parameter: values the optimizer keeps, and whether its step makes
# temporaries the size of a parameter (Adam's sqrt(v) and its quotient: one parameter at a
# time, or, with 'foreach', PyTorch's default on CUDA, one for every parameter at once)
OPTIMIZERS = {"sgd": (0, False), "momentum": (1, False), "adam": (2, True),
              "adamw": (2, True)}


def check_options(batch: int, dtype: str, optimizer: str):
    from ..errors import CnnCalcError
    if dtype not in DTYPES:
        raise CnnCalcError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if optimizer not in OPTIMIZERS:
        raise CnnCalcError(f"--optimizer {optimizer}: expected one of {', '.join(OPTIMIZERS)}")
    if batch < 1:
        raise CnnCalcError(f"--batch must be at least 1, received {batch}")
