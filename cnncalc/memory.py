"""Memory estimates from the calculator's rows: activation bytes per layer, the peak of
inference (the largest set of tensors alive at once) and the total for training.

Definitions (also in the README): activations are the tensors layers output, at
``batch`` examples and the dtype's size; inference frees a tensor once nothing needs it
(no in-place operations); training keeps every activation for the backward pass and
holds parameters, their gradients and the optimizer's state."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from . import model as m
from .errors import CnnCalcError

DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # values kept per parameter


@dataclass
class Memory:
    itemsize: int
    batch: int
    param_bytes: int
    activation_bytes: list  # per row, for the batch
    peak_activation_bytes: int  # inference
    kept_bytes: int  # activations kept for the backward pass
    training_bytes: int


def peak_units(summary) -> int:
    """Largest number of activation values alive at once in inference, per example."""
    keep = m.referenced(summary.network.layers)
    rows = iter(summary.rows)

    def walk(nodes, x, held):
        peak = held + x
        for node in nodes:
            row = next(rows)
            if isinstance(node, (m.Add, m.Concat)):
                done = 0  # finished branch outputs wait for the merge, the input for the rest
                for branch in node.branches:
                    p, out = walk(branch, x, held + x + done)
                    peak, done = max(peak, p), done + out
                peak = max(peak, held + done + row.units)
            else:
                extra = row.units if node.kind in ("add_ref", "concat_ref") else 0
                peak = max(peak, held + x + row.units + extra)
            x = row.units
            if node.name in keep:
                held += row.units
        return peak, x

    return walk(summary.network.layers, prod(summary.input), 0)[0]


def estimate(summary, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> Memory:
    if dtype not in DTYPES:
        raise CnnCalcError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if optimizer not in OPTIMIZER_STATES:
        raise CnnCalcError(f"--optimizer {optimizer}: expected one of {', '.join(OPTIMIZER_STATES)}")
    if batch < 1:
        raise CnnCalcError(f"--batch must be at least 1, received {batch}")
    size = DTYPES[dtype]
    params = summary.total("params")
    trainable = summary.total("trainable")
    acts = [r.units * size * batch for r in summary.rows]
    kept = (sum(r.units for r in summary.rows) + prod(summary.input)) * size * batch
    training = params * size + trainable * size * (1 + OPTIMIZER_STATES[optimizer]) + kept
    return Memory(size, batch, params * size, acts, peak_units(summary) * size * batch, kept,
                  training)


def fit(summary, memory_bytes: int, dtype: str = "float32", optimizer: str = "adam") -> dict:
    """Largest batch that fits for training and for inference (0 if none does)."""
    one = estimate(summary, 1, dtype, optimizer)
    fixed = one.training_bytes - one.kept_bytes  # parameters, gradients, optimizer state
    return {"training": max((memory_bytes - fixed) // one.kept_bytes, 0),
            "inference": max((memory_bytes - one.param_bytes) // one.peak_activation_bytes, 0),
            "fixed_training_bytes": fixed, "per_example_training_bytes": one.kept_bytes,
            "param_bytes": one.param_bytes,
            "per_example_inference_bytes": one.peak_activation_bytes}
