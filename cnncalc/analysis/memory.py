"""Memory estimates from the calculator's rows: activation bytes per layer, the peak of
inference (the largest set of tensors alive at once) and the total for training.

Definitions (also in the README): activations are the tensors layers output, at
``batch`` examples and the dtype's size; inference frees a tensor once nothing needs it
(no in-place operations); training keeps what autograd saves for the backward pass
(analysis/kept.py: each kind says what) and holds parameters, their gradients and the
optimizer's state."""

from __future__ import annotations

from math import prod

from ..errors import CnnCalcError
from ..layers import referenced
from .kept import kept_bytes

DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # values kept per parameter


class Memory:
    """Bytes: parameters; each row's activations at the batch; the inference peak; the
    activations kept for the backward pass; all of training."""

    def __init__(self, batch, param_bytes, activation_bytes, peak_activation_bytes, kept_bytes,
                 training_bytes):
        self.batch, self.param_bytes, self.activation_bytes = batch, param_bytes, activation_bytes
        self.peak_activation_bytes, self.kept_bytes = peak_activation_bytes, kept_bytes
        self.training_bytes = training_bytes


def peak_units(summary) -> int:
    """Largest number of activation values alive at once in inference, per example."""
    keep = referenced(summary.network.layers)

    def seq(rows, x, held, counted):
        """Run ``rows`` on the current tensor of ``x`` values. ``held``: values others keep
        alive (saved outputs, a block's input for its later branches, finished branches);
        ``counted``: the current tensor is one of them. Returns the peak, the output's
        values and the values the rows newly keep alive."""
        peak, grown = held + (0 if counted else x), 0
        for row in rows:
            cur = 0 if counted else x
            if row.branches is not None:
                # the block's input lives until the merge, as in a module's forward (its
                # argument is referenced until it returns): measured on real runs
                done = 0
                for branch in row.branches:
                    if not branch:
                        continue
                    p, out, g = seq(branch, x, held + grown + done + cur, True)
                    peak, done, grown = _larger(peak, p), done + out, grown + g
                peak = _larger(peak, held + grown + done + cur + row.units)
            else:  # a reference merge reads a saved tensor, already held
                peak = _larger(peak, held + grown + cur + row.units)
            x, counted = row.units, row.name in keep
            if counted:
                grown += x
        return peak, x, grown

    return seq(summary.tree, prod(summary.input), 0, False)[0]


def _larger(a, b):
    """max(a, b) for numbers and for a sweep's lanes of them (numpy arrays) alike."""
    if hasattr(a, "dtype") or hasattr(b, "dtype"):
        import numpy as np
        return np.maximum(a, b)
    return a if a >= b else b


def check_options(batch: int, dtype: str, optimizer: str):
    if dtype not in DTYPES:
        raise CnnCalcError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if optimizer not in OPTIMIZER_STATES:
        raise CnnCalcError(f"--optimizer {optimizer}: expected one of {', '.join(OPTIMIZER_STATES)}")
    if batch < 1:
        raise CnnCalcError(f"--batch must be at least 1, received {batch}")


def estimate(summary, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> Memory:
    check_options(batch, dtype, optimizer)
    size = DTYPES[dtype]
    totals = summary.totals
    params, trainable = totals.params, totals.trainable
    acts = [r.units * size * batch for r in summary.rows]
    kept = kept_bytes(summary, size) * batch
    training = params * size + trainable * size * (1 + OPTIMIZER_STATES[optimizer]) + kept
    return Memory(batch, params * size, acts, peak_units(summary) * size * batch, kept, training)


def fit(summary, memory_bytes: int, dtype: str = "float32", optimizer: str = "adam") -> dict:
    """Largest batch that fits for training and for inference (0 if none does)."""
    one = estimate(summary, 1, dtype, optimizer)
    fixed = one.training_bytes - one.kept_bytes  # parameters, gradients, optimizer state
    return {"training": max((memory_bytes - fixed) // one.kept_bytes, 0),
            "inference": max((memory_bytes - one.param_bytes) // one.peak_activation_bytes, 0),
            "fixed_training_bytes": fixed, "per_example_training_bytes": one.kept_bytes,
            "param_bytes": one.param_bytes,
            "per_example_inference_bytes": one.peak_activation_bytes}
