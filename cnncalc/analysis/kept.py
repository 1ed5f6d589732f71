"""What a training step keeps for the backward pass: the tensors autograd saves in the
forward pass, as PyTorch's modules save them, each storage counted once. Each kind says
what it saves (``Layer.kept``: its input, its output, a mask or indices); this walk tracks
which tensors share a storage (an activation run in place on a fresh output, a view) the
way the torch backend runs them. Checked against ``torch.autograd.graph.saved_tensors_hooks``
around a real forward pass, deduplicated by storage (tests/test_training.py)."""

from __future__ import annotations

from math import prod

from ..layers.activations import ACTIVATIONS
from ..layers import referenced
from ..layers.base import uniform


class Keeper:
    """The walk's state, which a kind's ``kept(row, k)`` moves on: the current tensor's
    storage (``cur``), whether the chain owns it (``fresh``: it may be overwritten), and the
    storages saved so far."""

    def __init__(self, input_units):
        self.units = {0: input_units}
        self.cur, self.fresh, self.row = 0, False, None
        # storage -> where it is saved: True, or per lane of a sweep (a bool array)
        self.saved, self.extra_bytes, self.extra_units = {}, 0, 0
        # for the training step's walk (analysis/step.py): the rows in the order they run,
        # each storage's first saver (autograd frees it once that row's backward has run)
        # and what each row saves beside storages (masks, indices, statistics)
        self.trace, self.first, self.last, self.extras = [], {}, {}, {}
        # mixed precision: autocast's copies, and which storages are float32 (the rest half)
        self.amp, self.wide = False, {0}
        # autograd saves nothing for an operation no gradient passes through: one on the
        # input before any weight (a pool on the image); ``saving`` is that, for this row
        self.grad = self.saving = False
        # storages saved by a layer's fused activation (freed after the activation's
        # backward, before the layer's own)
        self.by_act, self.in_act = set(), False

    def save(self, storage, where=True):
        if self.saving and self.in_act:
            self.by_act.add(storage)
        if self.saving:
            self.saved[storage] = self.saved.get(storage, False) | where
            self.first.setdefault(storage, len(self.trace))
            self.last[storage] = len(self.trace)

    def store(self, units):
        """A new tensor beside the current one (a padded copy); its storage."""
        self.units[len(self.units)] = units
        return len(self.units) - 1

    def save_read(self, copied, units):
        """What a window reads: the input, or where ``copied`` (uneven padding, applied
        first) a padded copy of ``units`` values."""
        if copied is False:
            self.save_input()
            return
        self.save(self.store(units), copied)
        self.save(self.cur, ~copied if hasattr(copied, "dtype") else not copied)

    def save_input(self):
        self.save(self.cur)

    def save_output(self):
        self.save(self.cur)

    def new(self, units=None):
        """The layer's result is a new tensor (of its output's size, or ``units``)."""
        self.cur = len(self.units)
        self.units[self.cur] = self.row.units if units is None else units

    def values(self, units):
        """A tensor of ``units`` values in the activations' dtype (a dropout mask)."""
        if self.saving:
            self.extra_units += units
            self._extra(units, 0)

    def bytes(self, n):
        """Bytes whatever the dtype (max pooling's int64 indices, layer norm's float32
        statistics)."""
        if self.saving:
            self.extra_bytes += n
            self._extra(0, n)

    def _extra(self, units, n):
        u, b = self.extras.get(len(self.trace), (0, 0))
        self.extras[len(self.trace)] = (u + units, b + n)

    def act(self, word, inplace):
        """An activation on the current tensor; ``inplace`` where torch may overwrite it."""
        a = ACTIVATIONS.get(word) if word else None
        if a is None or a.keeps is None:
            return
        inplace = inplace and a.inplace
        self.in_act = True
        if a.keeps == "output":
            if not inplace:
                self.new()
            self.save_output()
        elif inplace and a.copies:  # autograd saves a copy of the input it overwrites
            self.save(self.store(self.row.units))
        else:
            self.save_input()
            if not inplace:
                self.new()
        self.in_act = False

    def size(self, storage, size: int) -> int:
        """Bytes per value of a storage: ``size``, or under autocast float32's where wide."""
        return 4 if self.amp and storage in self.wide else size

    def total(self, size: int):
        return sum(self.units[s] * where * self.size(s, size) for s, where in self.saved.items()) \
            + self.extra_units * size + self.extra_bytes

    def cast(self, row):
        """Under autocast, a kind run in another precision than its input's reads a copy
        of it (which it may keep); its result's precision."""
        to = row.layer.autocast(row)
        wide = self.cur in self.wide
        if to == "half" and wide or to == "float32" and not wide:
            self.cur = self.store(prod(row.input))
            if to == "float32":
                self.wide.add(self.cur)
        return to in ("float32", "promotes") or to is None and self.cur in self.wide


class Entry:
    """One row as it runs, for the backward walk: the entries whose results it reads
    (-1: the network's input), whether each needs a gradient, and whether its result is
    a view of its input (a reshape: its gradient is a view too). A block's merge also says
    where its branches begin in the trace, and its input's storage."""
    __slots__ = ("row", "inputs", "needs", "view", "begin", "storage", "wide", "out", "split")

    def __init__(self, row, inputs, needs, view=False):
        self.row, self.inputs, self.needs, self.view = row, inputs, needs, view
        self.begin = self.storage = None
        self.wide = False  # under autocast, its result is float32
        self.out = None  # its result's storage
        self.split = None  # a block whose branches read parts of its input: that input's entry


def keep(summary, amp: bool = False) -> Keeper:
    """The walk over one example: what autograd saves, and in what order rows run;
    ``amp``: under autocast (mixed precision)."""
    keep_alive = referenced(summary.network.layers)
    k = Keeper(prod(summary.input))
    k.amp = amp
    named = {}

    def seq(rows, fresh, prev):
        for row in rows:
            k.row = row
            if row.branches is not None:
                start, grad, outs, grads, ends = k.cur, k.grad, [], [], []
                begin = len(k.trace)
                for branch in row.branches:
                    k.cur, k.grad = start, grad
                    ends.append(seq(branch, False, prev))
                    outs.append(k.cur)
                    grads.append(k.grad)
                if row.layer.marks_output:  # a head: its branch's result goes out, the input on
                    entry = Entry(row, ends + [prev], grads + [grad])
                    k.trace.append(entry)
                    k.cur, k.grad = start, grad
                    entry.wide, entry.out = k.amp and start in k.wide, start
                    out_fresh = False
                else:
                    k.row, k.grad = row, any(grads)
                    k.saving = k.grad and row.layer.keeps_inputs
                    for storage in outs:
                        k.save(storage)
                    entry = Entry(row, ends, grads)
                    k.trace.append(entry)
                    k.new()
                    entry.wide, entry.out = _wider(k, outs), k.cur
                    out_fresh = True
                entry.begin, entry.storage = begin, start
                entry.split = prev if row.layer.split else None
            elif row.layer.jump:  # 'from ID': the flow goes on with ID's tensor itself
                source, source_grad, at = named[row.source.name]
                entry = Entry(row, [at], [source_grad], view=True)
                k.trace.append(entry)
                k.cur, k.grad = source, source_grad
                entry.wide, entry.out = k.amp and source in k.wide, source
                out_fresh = False
            elif row.source is not None:
                source, source_grad, at = named[row.source.name]
                entry = Entry(row, [prev, at], [k.grad, source_grad])
                k.grad = k.grad or source_grad
                k.saving = k.grad and row.layer.keeps_inputs
                k.save(k.cur)
                k.save(source)
                k.trace.append(entry)
                inputs = (k.cur, source)
                k.new()
                entry.wide, entry.out = _wider(k, inputs), k.cur
                out_fresh = True
            else:
                k.fresh, grad = fresh, k.grad
                k.saving = k.grad = k.grad or uniform(row.learns != 0)
                entry = Entry(row, [prev], [grad])
                wide = k.cast(row) if amp else False
                made = len(k.units)
                row.layer.kept(row, k)
                if wide:  # what it makes is float32 (promoted: only its result)
                    k.wide.update(range(made, len(k.units)) if row.layer.autocast(row) != "promotes"
                                  else {k.cur} - set(range(made)))
                entry.wide, entry.out = k.amp and k.cur in k.wide, k.cur
                # a reshape's gradient is a view of its output's, and so is an identity's
                # (Layer.passes: 'linear', dropout 0);
                # a crop's (a view too) is a new tensor of its input's size
                entry.view = row.layer.grad_view or row.layer.passes(row)
                k.trace.append(entry)
                out_fresh = fresh if row.layer.fold else True
            prev = len(k.trace) - 1
            if row.name in keep_alive:
                named[row.name] = (k.cur, k.grad, prev)
            fresh = out_fresh and row.name not in keep_alive
        return prev

    seq(summary.tree, False, -1)
    return k


def _wider(k, inputs) -> bool:
    """A merge's result is float32 where any input is (type promotion)."""
    wide = k.amp and any(s in k.wide for s in inputs)
    if wide:
        k.wide.add(k.cur)
    return wide


def kept_bytes(summary, size: int) -> int:
    """Bytes autograd keeps for one example, activations of ``size`` bytes each."""
    return keep(summary).total(size)
