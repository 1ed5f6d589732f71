"""An imported model as a graph of cnncalc statements (``Op``), as every reader makes it: the
kinds write the statements, ``rewrite.py`` rewrites the graph the same way for every reader,
``emit.py`` writes it as a spec. Here: the op, the importers' entry guard (``foreign``),
the refusal that names every node without a counterpart, concats nested as DenseNet's list
grows, a separable conv's two halves made one, and the dominator tree the emitter reads."""

from __future__ import annotations

import functools
import os
import re

from ..errors import CnnCalcError
from ..layers import KINDS
from ..layers.merge import Concat
from ..layers.separable import SepConv

# a channel split (its parts' 'sizes') and each part ('index'): ops the readers write and
# the emitter places (a block's branches, or slices), no kind's
SPLIT, TAKE = "split", "take"

MERGES = tuple(w for w, c in KINDS.items() if getattr(c, "merge", False) and w == c.keyword)


def foreign(kind: str):
    """An importer's entry: a file that is missing, or is not what it claims to be, ends in
    one line naming the file, never in a traceback from deep inside the reader."""
    def wrap(read):
        @functools.wraps(read)
        def run(path, *args, **kwargs):
            if not os.path.exists(path):
                raise CnnCalcError("no such file", file=str(path))
            if os.path.isdir(path):
                raise CnnCalcError("is a folder; give the model's file", file=str(path))
            try:
                return read(path, *args, **kwargs)
            except RecursionError:
                raise CnnCalcError(f"not a {kind} this reader can follow: it nests too deeply",
                                   file=str(path)) from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                    ZeroDivisionError, OverflowError) as e:
                raise CnnCalcError(f"not a {kind} this reader understands ({type(e).__name__}: "
                                   f"{str(e)[:120]})", file=str(path)) from None
        return run
    return wrap


_STATEMENT = re.compile(r"[\w.\-+*/=?$()\[\], ]*")  # one statement: no line, '|', '{' or '#'


def safe_name(name):
    """A foreign name as the language's names are written ('conv2d/kernel:0' → 'conv2d_kernel_0')."""
    if name is None:
        return None
    name = re.sub(r"[^\w.\-]", "_", str(name)[:200])
    # a word, a number (nn.Sequential's '0') or an index then a dotted word ('1.conv')
    return name if re.match(r"[A-Za-z_]", name) or re.fullmatch(
        r"\d+|\d+(\.\d+)*\.[A-Za-z_][\w\-]*(\.[\w\-]+)*", name) else f"n{name}"


class Op:
    """One node: ``text`` is a cnncalc statement without its name ('conv 3x3x64 pad 1'), or
    a merge's keyword; ``inputs`` are op ids ('input' is the graph's input). A 'split' op
    divides the channels ('sizes'), and a 'take' op is one of its parts."""
    __slots__ = ("id", "text", "name", "inputs", "source", "sizes", "index", "meta")

    def __init__(self, id, text, inputs, name=None, source=None, sizes=None, index=None,
                 meta=None):
        self.source = source or id  # where it came from, for messages
        if not isinstance(text, str) or not _STATEMENT.fullmatch(text):
            # a foreign file's value is a number or a word, never more of the spec
            raise CnnCalcError(f"cannot import {self.source}: a value in it is not a number "
                               f"or a word ({str(text)[:80]!r})")
        self.id, self.text, self.inputs, self.name = id, text, list(inputs), safe_name(name)
        self.sizes, self.index = sizes, index
        self.meta = meta or {}  # what a later fusion needs (pads, the input's sizes)

    @property
    def kind(self):
        return self.text.split()[0] if self.text else ""

    def __repr__(self):
        return f"Op({self.id!r}, {self.text!r}, {self.inputs})"


class Imported:
    """An imported model: its spec ``text`` (``str()`` gives it) and its ``summary``."""

    def __init__(self, text, summary):
        self.text, self.summary = text, summary

    def __str__(self):
        return self.text


class Unsupported(CnnCalcError):
    """Nodes with no counterpart in cnncalc: each with its name, operator and place."""

    def __init__(self, problems, source):
        lines = [f"  {name}: {what}" for name, what in problems]
        super().__init__(f"cannot import {source}: {len(problems)} node(s) have no cnncalc "
                         "counterpart:\n" + "\n".join(lines) + "\n(--partial writes what comes "
                         "before them)")
        self.problems = problems


def nest_concats(ops):
    """A concat of another concat's inputs and more (DenseNet's torch.cat(features), each
    layer's list one longer) is a concat of that concat and the rest: the same channels in
    the same order, and a graph that nests."""
    earlier = []  # (concat, its inputs as read)
    for op in ops:
        if op.kind != Concat.keyword or op.meta.get("centre_crop"):
            continue
        read = list(op.inputs)
        best = max(((p, i) for p, i in earlier if len(i) < len(read) and read[:len(i)] == i),
                   key=lambda pair: len(pair[1]), default=None)
        if best is not None:
            op.inputs = [best[0].id] + read[len(best[1]):]
        earlier.append((op, read))
    return ops


def fuse(ops, outputs):
    """Statements that cnncalc writes as one but a module runs as two: a separable conv's
    depthwise and pointwise halves (X.depthwise, X.pointwise), and a wrapper's inner module
    (X.op). (A layer's activation is fused before, by the rewrite every reader runs.)"""
    nest_concats(ops)
    by_name, users = {}, {}
    for op in ops:
        if op.name and op.name.endswith(".op"):
            op.name = op.name[:-3]
        if op.name:
            by_name[op.name] = op
        for i in op.inputs:
            users.setdefault(i, []).append(op)
    gone = {}  # an op folded into another -> that op (None: its input stands for it)
    _fuse_separable(ops, by_name, users, gone)
    for op in ops:
        op.inputs = [gone.get(i) or i for i in op.inputs]
    kept = [op for op in ops if op.id not in gone]
    outputs = [gone.get(o) or o for o in outputs]
    return kept, outputs


def _fuse_separable(ops, by_name, users, gone):
    """X.depthwise then X.pointwise: sepconv (the names leave X itself unnamed), written by
    the kind from what was read of the two halves."""
    for op in ops:
        if not (op.name and op.name.endswith(".pointwise") and "read" in op.meta):
            continue
        dw = by_name.get(op.name[:-len("pointwise")] + "depthwise")
        if dw is None or op.inputs != [dw.id] or "read" not in dw.meta or \
                len(users.get(dw.id, ())) != 1:
            continue
        text = SepConv.from_halves(dw.meta["read"], op.meta["read"], op.meta.get("activation"))
        if text is None:
            continue
        op.text = text
        op.name = op.name[:-len(".pointwise")]
        op.inputs = dw.inputs
        gone[dw.id] = None


def network_name(name: str | None) -> str:
    """A model's or file's name as the spec's 'network' word."""
    return re.sub(r"[^\w.\-]", "_", name or "") or "network"


def dominators(ops: dict, order: list) -> dict:
    """Immediate dominators of a DAG whose only entry is 'input'."""
    idom = {"input": "input"}
    index = {"input": -1, **{k: i for i, k in enumerate(order)}}

    def meet(a, b):
        while a != b:
            while index[a] > index[b]:
                a = idom[a]
            while index[b] > index[a]:
                b = idom[b]
        return a

    for k in order:
        preds = ops[k].inputs
        d = preds[0]
        for p in preds[1:]:
            d = meet(d, p)
        idom[k] = d
    return idom


def reaching(ops, outputs) -> list:
    """The ops the outputs are computed from, in order: what a model computes and leaves
    unread (a branch an exporter kept, an encoder stage a decoder skips) is no part of the
    spec (the readers name its weights in a comment)."""
    by_id, keep, todo = {op.id: op for op in ops}, set(), list(outputs)
    while todo:
        k = todo.pop()
        if k in by_id and k not in keep:
            keep.add(k)
            todo += by_id[k].inputs
    return [op for op in ops if op.id in keep]
