"""The peak of one training step: forward, backward, the optimizer's step, as PyTorch runs
them. The forward pass leaves what autograd saved (analysis/kept.py); the backward pass
then runs the rows in reverse, each making its input's gradient (and its weights'), and
frees a saved tensor once the last row that needs it has run; the optimizer's step holds
every gradient and its own temporaries. This walk replays that with reference counts,
gradients that several rows share (an add passes one tensor to each branch; a concat,
views of one) and sums made in place where PyTorch may (autograd's input buffer adds
into a tensor nobody else holds). Checked against the allocator's events of a real step
(torch.profiler, tests/test_training_step.py)."""

from __future__ import annotations

from math import prod

from ..errors import CnnCalcError
from ..layers.activations import fused
from ..layers.base import anywhere, uniform
from .kept import keep
from .options import OPTIMIZERS


def larger(a, b):
    """max(a, b) for numbers and for a sweep's lanes of them (numpy arrays) alike."""
    if hasattr(a, "dtype") or hasattr(b, "dtype"):
        import numpy as np
        return np.maximum(a, b)
    return a if a >= b else b


def _plain(v):
    """A sweep's lanes as a plain int64 array: the walk's many small sums skip the lanes'
    bound on each operation, once ``_bounded`` has bounded them all."""
    if hasattr(v, "dtype"):
        import numpy as np
        return v.view(np.ndarray)
    return v


def _bounded(k, summary, batch, param_size):
    """Raises OverflowError (a sweep then halves its lanes, or goes variant by variant)
    where the walk's sums could pass int64: none is more than 16 times every value made,
    at 8 bytes, and every parameter (the lanes' own arithmetic checks this bound)."""
    units = prod(summary.input)
    for e in k.trace:
        units = units + e.row.units
    (units * (8 * batch) + summary.totals.params * param_size) * 16


def _kept_parts(k, batch, size, amp):
    """What the forward pass keeps, as (the entry whose backward frees it, bytes, storage),
    and the bytes of the outputs, which the caller holds throughout (as the batch,
    storage 0) for the loss."""
    parts = [(i, _plain((u * size + b) * batch), None) for i, (u, b) in k.extras.items()]
    outputs = {k.trace[e.inputs[0]].out if _head(e) else e.out for e in k.trace
               if e.row.layer.marks_output} | ({k.trace[-1].out} if k.trace else set())
    held = sum(_plain(k.units[s] * k.size(s, size) * batch) for s in outputs if s)
    parts += [(i, _plain(k.units[s] * k.saved[s] * k.size(s, size) * batch), s)
              for s, i in k.first.items() if s and s not in outputs]
    for i, e in enumerate(k.trace if amp else ()):
        # under autocast, a layer run in half precision keeps a half-precision copy of its
        # weights where its input needs a gradient
        if e.row.layer.autocast(e.row) == "half" and e.needs[0]:
            parts.append((i, _plain(e.row.weights * size), None))
    return parts, held


def _head(e) -> bool:
    """An 'output { ... }' head: its branch's result is a side output, its input goes on."""
    return e.row.layer.marks_output and e.row.branches is not None


def _by_entry(parts) -> dict:
    out = {}
    for i, n, _ in parts:
        out[i] = out.get(i, 0) + n
    return out


class _Backward:
    """The backward pass's walk: gradients alive (bytes and holders of each), the saved
    activations not yet freed, the weights' gradients made so far, and the peak of their
    sum."""

    def __init__(self, k, batch, size, param_size, x_units, amp=False, checkpoint=()):
        per = size * batch
        self.k, self.per, self.param_size, self.x_units = k, per, param_size, x_units
        self.amp, self.batch, self.size = amp, batch, size
        self.bytes, self.refs, self.live, self.peak = {}, {}, 0, 0
        self.pending = {}  # entry -> the gradient of its result, when it has one
        self.parts = {}  # entry -> the gradients of the parts a split block read of it
        self.grads = 0
        parts, held = _kept_parts(k, batch, size, amp)
        # what each entry's backward frees; a fused activation's saved tensors go first,
        # after the activation's backward
        fuses = {i for i, e in enumerate(k.trace) if fused(e.row) is not None}
        early = [s in k.by_act and i in fuses for i, _, s in parts]
        self.freed_act = _by_entry([p for p, a in zip(parts, early) if a])
        self.freed = _by_entry([p for p, a in zip(parts, early) if not a])
        # a checkpointed block keeps only its input; its backward first runs it again
        self.again = {}
        for end, e in checkpoint:
            self.again[end] = sum(n for i, n, s in parts if e.begin <= i <= end
                                  and s != e.storage and (s is None or k.last[s] <= end))
        self.kept = held + sum(self.freed.values()) + sum(self.freed_act.values()) - \
            sum(self.again.values())
        # what the forward pass has kept when each row runs (not inside checkpointed blocks)
        inside = [(k.trace[end].begin, end) for end in self.again]
        self.saving = _by_entry([(i, n, s) for i, n, s in parts if not any(
            a <= i <= b and s != k.trace[b].storage for a, b in inside)])

    def new(self, n, extra=0):
        t = len(self.bytes)
        self.bytes[t], self.refs[t] = n, 1
        self.live = self.live + n
        self.mark(extra)
        return t

    def mark(self, extra=0):
        self.peak = larger(self.peak, self.live + self.kept + self.grads + extra)

    def share(self, t):
        self.refs[t] += 1
        return t

    def drop(self, t):
        self.refs[t] -= 1
        if not self.refs[t]:
            self.live = self.live - self.bytes[t]

    def value(self, wide) -> int:
        """Bytes of one value at the batch: the activations' size, or under autocast
        float32's where ``wide``."""
        return (4 if self.amp and wide else self.size) * self.batch

    def units(self, i):
        """Bytes of entry ``i``'s result (-1: the input batch), as its gradient's."""
        if i < 0:
            return _plain(self.x_units * self.value(True))
        e = self.k.trace[i]
        return _plain(e.row.units * self.value(e.wide))

    def give(self, p, t, part=False):
        """Gradient ``t`` for entry ``p``'s result, summed with one already there: into
        whichever nobody else holds (autograd's input buffer), else into a new tensor;
        ``part``: of a part a split block read (``gather`` joins the parts)."""
        if part:
            self.parts.setdefault(p, []).append(t)
            return
        a = self.pending.get(p)
        if a is None:
            self.pending[p] = t
        elif self.refs[a] == 1 or self.refs[t] == 1:
            kept, other = (a, t) if self.refs[a] == 1 else (t, a)
            self.drop(other)
            self.pending[p] = kept
        else:
            self.pending[p] = self.new(self.bytes[a])
            self.drop(a)
            self.drop(t)

    def gather(self, p):
        """A split's backward: the gradients of its parts concatenated into a new tensor
        (a part no branch changed is a view of the merge's gradient)."""
        parts = self.parts.pop(p, None)
        if parts:
            whole = self.new(self.units(p))
            for t in parts:
                self.drop(t)
            self.give(p, whole)

    def merge(self, e, t):
        """A merge hands its gradient to each input (an add the tensor itself, a concat
        views of it), or a new one where its kind says (``Layer.fresh_gradient``)."""
        for j, (p, need) in enumerate(zip(e.inputs, e.needs)):
            if need:
                fresh = e.row.layer.fresh_gradient(j)
                self.give(p, self.new(self.units(p)) if fresh else self.share(t),
                          p == e.split)
        self.mark(_plain(e.row.layer.scratch(e.row)) * self.per)

    def layer(self, i, e, t):
        """A layer makes its input's gradient and its weights' (and first, where an
        activation is fused, the activation's own)."""
        row = e.row
        trainable = _plain(row.trainable)
        learnt = trainable * self.param_size
        a = fused(row)
        if a is not None and a.keeps is not None:
            inner = self.new(self.units(i))
            self.drop(t)
            t = inner
        self.kept = self.kept - self.freed_act.pop(i, 0)
        first = row.layer.first_gradient(row)
        if anywhere(first):
            inner = self.new(_plain(first) * self.value(e.wide))
            self.drop(t)
            t = inner
        # its input's gradient: of a split block's part, the part's size
        p = e.inputs[0]
        whole = self.units(p)
        read = whole if p < 0 else _plain(prod(row.input) * self.value(self.k.trace[p].wide))
        cut = False
        if self.amp and row.layer.autocast(row) == "half":
            # its weights' gradient in half precision, then (its saved tensors freed) cast
            half = trainable * self.size
            scratch = _plain(row.layer.scratch(row)) * self.per
            gin = self.new(read, half + scratch) if e.needs[0] else None
            self.mark(half)
            self.kept = self.kept - self.freed.pop(i, 0)
            self.mark(half + learnt)
        else:
            extra = learnt + _plain(row.layer.scratch(row)) * self.value(e.wide)
            if self.amp and e.wide and p >= 0 and not self.k.trace[p].wide:
                # a float32 result of a half input (promoted): its input's gradient is
                # made in float32, then cast
                extra = extra + _plain(prod(row.input) * self.value(True))
            # padded first by a copy (in the lanes where ``cut``): its input's gradient is
            # made at the padded size
            padded = _plain(row.layer.padded_copy(row))
            cut = padded != 0
            made = read + (padded * self.value(self.k.trace[p].wide if p >= 0 else True)
                           - read) * cut if e.needs[0] and anywhere(cut) else read
            gin = self.new(made, extra) if e.needs[0] else None
            self.mark(learnt + _plain(row.layer.scratch(row)) * self.value(e.wide))
        self.drop(t)
        self.grads = self.grads + learnt
        if gin is not None and anywhere(cut):
            # then (its saved tensors freed) the pad's backward cuts it to the input's: both
            # alive a moment
            self.kept = self.kept - self.freed.pop(i, 0)
            self.mark(read * cut)
            self.live = self.live + read - made
            self.bytes[gin] = read
        if gin is not None:
            self.give(p, gin, uniform(read != whole))

    def forward(self):
        """The forward pass's peak: what is kept so far, and beside it a row's inputs and
        result where they are not kept, and what the row makes for a moment."""
        k, kept = self.k, 0
        for i, e in enumerate(k.trace):
            kept = kept + self.saving.get(i, 0)
            ins = {k.trace[p].out if p >= 0 else 0 for p in e.inputs}
            live = _plain(e.row.layer.transient(e.row)) * self.per
            for s in ins | {e.out}:
                if s and not (s in k.first and k.first[s] <= i):
                    live = live + _plain(k.units[s] * self.value(s in k.wide))
            self.peak = larger(self.peak, kept + live)

    def run(self):
        trace = self.k.trace
        self.forward()
        for i, e in enumerate(trace):  # the loss's gradient of each output
            if _head(e):
                self.give(e.inputs[0], self.new(self.units(e.inputs[0])))
            if i == len(trace) - 1 or e.row.layer.marks_output and not _head(e):
                self.give(i, self.new(self.units(i)))
        for i in range(len(trace) - 1, -1, -1):
            self.gather(i)
            e, t = trace[i], self.pending.pop(i, None)
            if i in self.again:  # a checkpointed block's forward pass, run again
                self.kept = self.kept + self.again[i]
                self.mark()
            if t is None:
                pass
            elif _head(e):  # what comes after it reads its input
                self.give(e.inputs[-1], t)
            elif e.row.branches is not None or e.row.source is not None and not e.view:
                self.merge(e, t)
                self.drop(t)
            elif e.view:
                if e.needs[0]:
                    self.give(e.inputs[0], t)
                else:
                    self.drop(t)
            else:
                self.layer(i, e, t)
            self.kept = self.kept - self.freed.get(i, 0)
        return self.peak, self.grads


def checkpointed(row, names) -> bool:
    """A block that ``names`` checkpoints: 'all' blocks, or a block by its name, a dotted
    prefix of it ('layer1' for 'layer1.0.add_1') or its macro's name ('basic' for a
    block written by 'basic(64)')."""
    return row.branches is not None and any(_names(row, n) for n in names)


def _names(row, n) -> bool:
    macro = (row.layer.origin or "").split("(")[0]
    return n == "all" or n == row.name or row.name.startswith(n + ".") or n == macro


def _checkpointed(k, names) -> list:
    """(index, entry) of the outermost checkpointed blocks' merges."""
    found, floor = [], len(k.trace)
    for i in range(len(k.trace) - 1, -1, -1):
        e = k.trace[i]
        if i < floor and checkpointed(e.row, names):
            found.append((i, e))
            floor = e.begin  # blocks inside this one are run again with it
    blocks = [e.row for e in k.trace if e.row.branches is not None]
    for n in names:
        if n != "all" and not any(_names(row, n) for row in blocks):
            some = ", ".join(row.name for row in blocks[:3]) or "none: it has no blocks"
            raise CnnCalcError(f"--checkpoint {n}: no block is named so, starts so or is "
                               f"written by a macro of that name; its blocks: {some}")
    return found


def backward_peak(summary, batch: int, size: int, param_size: int, k=None, amp=False,
                  checkpoint=()):
    """(peak, gradients): the most bytes of saved activations, activation gradients and
    weight gradients alive at once in the backward pass, and all weight gradients' bytes.
    ``k``: the kept walk, when the caller has it; ``amp``: the forward pass ran under
    autocast, activations of ``size`` bytes and parameters of ``param_size``;
    ``checkpoint``: names of the blocks checkpointed (``checkpointed``)."""
    k = keep(summary, amp) if k is None else k
    _bounded(k, summary, batch, param_size)
    return _Backward(k, batch, size, param_size, prod(summary.input), amp,
                     _checkpointed(k, checkpoint)).run()


def optimizer_temporaries(summary, optimizer: str, foreach: bool, param_size: int):
    """Bytes the optimizer's step allocates beside the gradients."""
    if not OPTIMIZERS[optimizer][1]:
        return 0
    if foreach:
        return summary.totals.trainable * param_size
    largest = 0
    for row in summary.rows:
        if anywhere(row.trainable):
            for n in row.layer.tensors(row):
                largest = larger(largest, n)
    return 2 * largest * param_size


def step_peak(summary, batch: int, size: int, optimizer: str = "adam", foreach: bool = True,
              param_size: int | None = None, keeper=None, amp: bool = False,
              checkpoint=()) -> dict:
    """Bytes of one training step at its peak, and its parts: parameters, the optimizer's
    state, the input batch, and the larger of the backward pass's peak and the optimizer
    step's (all gradients and its temporaries)."""
    param_size = size if param_size is None else param_size
    totals = summary.totals
    backward, grads = backward_peak(summary, batch, size, param_size, keeper, amp, checkpoint)
    step = grads + optimizer_temporaries(summary, optimizer, foreach, param_size)
    fixed = totals.params * param_size + \
        totals.trainable * param_size * OPTIMIZERS[optimizer][0]
    data = prod(summary.input) * (param_size if amp else size) * batch  # the data, as given
    return {"peak": fixed + data + larger(backward, step), "fixed": fixed, "input": data,
            "backward": backward, "step": step}
