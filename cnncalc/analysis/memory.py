"""Memory estimates from the calculator's rows: activation bytes per layer, the peak of
inference (the largest set of tensors alive at once) and the total for training.

Definitions (also in the README): activations are the tensors layers output, at
``batch`` examples and the dtype's size; inference frees a tensor once nothing needs it
(no in-place operations); training keeps what autograd saves for the backward pass
(analysis/kept.py: each kind says what), and its figure is the training step's peak
(analysis/step.py): parameters, the optimizer's state, the batch, and the larger of the
backward pass's peak and the optimizer step's."""

from __future__ import annotations

from math import prod

from ..layers import referenced
from ..layers.activations import fused
from .kept import keep
from .options import DTYPES, OPTIMIZERS, check_options  # noqa: F401 (where callers look)
from .step import larger, step_peak


class Memory:
    """Bytes: parameters; each row's activations at the batch; the inference peak; the
    activations kept for the backward pass; all of training."""

    def __init__(self, batch, param_bytes, activation_bytes, peak_activation_bytes, kept_bytes,
                 step):
        self.batch, self.param_bytes, self.activation_bytes = batch, param_bytes, activation_bytes
        self.peak_activation_bytes, self.kept_bytes = peak_activation_bytes, kept_bytes
        self.step = step  # the training step's peak and its parts (analysis/step.py)
        self.training_bytes = step["peak"]


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
                    peak, done, grown = larger(peak, p), done + out, grown + g
                peak = larger(peak, held + grown + done + cur + row.units)
            else:  # a reference merge reads a saved tensor, already held
                peak = larger(peak, held + grown + cur + row.units)
                if _copies(row):  # its activation's result beside its own, input freed
                    peak = larger(peak, held + grown + 2 * row.units)
            x, counted = row.units, row.name in keep
            if counted:
                grown += x
        return peak, x, grown

    return seq(summary.tree, prod(summary.input), 0, False)[0]


def _copies(row) -> bool:
    """A layer whose activation cannot run in place (GELU, sigmoid): its result is a
    second tensor of its output's size."""
    a = fused(row)
    return a is not None and not a.inplace


def estimate(summary, batch: int = 1, dtype: str = "float32", optimizer: str = "adam",
             foreach: bool = True, amp: bool = False, checkpoint=()) -> Memory:
    """``foreach``: the optimizer steps all parameters at once (PyTorch's default on CUDA;
    on CPU it steps one at a time). ``amp``: mixed precision, the forward pass under
    autocast to ``dtype`` while parameters, gradients and the optimizer's state stay
    float32; else everything is ``dtype``. ``checkpoint``: blocks run again in the backward
    pass instead of keeping their activations (names, prefixes, macros or 'all')."""
    check_options(batch, dtype, optimizer)
    size = DTYPES[dtype]
    param_size = DTYPES["float32"] if amp else size
    k = keep(summary, amp)
    acts = [r.units * size * batch for r in summary.rows]
    step = step_peak(summary, batch, size, optimizer, foreach, param_size, k, amp,
                     tuple(checkpoint))
    return Memory(batch, summary.totals.params * param_size, acts,
                  peak_units(summary) * size * batch, k.total(size) * batch, step)


def fit(summary, memory_bytes: int, dtype: str = "float32", optimizer: str = "adam",
        foreach: bool = True, amp: bool = False, checkpoint=()) -> dict:
    """Largest batch that fits for training and for inference (0 if none does). A training
    step's peak grows with the batch, but not in proportion (the optimizer's step may be
    the peak at small batches): the batch is found by halving the range."""
    one = estimate(summary, 1, dtype, optimizer, foreach, amp, checkpoint)

    def step(batch):
        return estimate(summary, batch, dtype, optimizer, foreach, amp,
                        checkpoint).training_bytes

    lo, hi = 0, 1
    while step(hi) <= memory_bytes:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if step(mid) <= memory_bytes else (lo, mid)
    return {"training": lo, "training_bytes": step(max(lo, 1)),
            "inference": max((memory_bytes - one.param_bytes) // one.peak_activation_bytes, 0),
            "fixed_training_bytes": one.step["fixed"], "param_bytes": one.param_bytes,
            "per_example_inference_bytes": one.peak_activation_bytes}
