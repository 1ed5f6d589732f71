"""The one emitter: any graph of statements (``graph.Op``) written as a spec: chains, merge
blocks where the graph nests, ``name=`` and references (``add ID``, ``from ID``) where it
does not, side outputs, and ``repeat`` for runs of the same block."""

from __future__ import annotations

import re

from ..errors import CnnCalcError
from ..layers import KINDS
from ..layers.activations import IDENTITY, Act
from ..layers.merge import Concat
from ..layers.options import SHARES
from ..layers.outputs import From, Output
from ..layers.channels import Slice
from .graph import MERGES, SPLIT, TAKE, Op, dominators, reaching, safe_name


class _NotNested(Exception):
    """A tensor read by parts of the network that do not meet in one block."""


class _Emitter:
    def __init__(self, ops: list, outputs: list):
        self.ops = {op.id: op for op in ops}
        self.order = [op.id for op in ops]
        self.idom = dominators(self.ops, self.order)
        self.users = {k: [] for k in ["input", *self.order]}
        for op in ops:
            for i in op.inputs:
                self.users[i].append(op.id)
        self.emitted = set()
        self.outputs = outputs
        self.heads = {}  # attach point -> side outputs branching off there
        self.marked = set()  # side outputs on the main path: 'output' after them
        self.final = outputs[-1]

    def fail(self, op_id, why):
        op = self.ops[op_id]
        raise CnnCalcError(f"cannot write {op.source} ({op.text}) in cnncalc's language: {why}")

    # a statement list is made of Ops and blocks (kind, ops_or_text, branches)
    def chain(self, stop: str, node: str) -> list:
        out = []
        while node != stop:
            if node == "input":
                raise CnnCalcError(f"internal: no path from {stop} to the output")
            op = self.ops[node]
            if node in self.emitted:
                raise _NotNested(node)
            self.emitted.add(node)
            for head in self.heads.get(node, ()):
                out.append(Block(None, Output.keyword, None, [self.chain(node, head)]))
            if node in self.marked:
                out.append(Op(f"{node}:output", Output.write(), []))
            if op.kind in MERGES and len(op.inputs) > 1:
                fork = self.idom[node]
                branches = []
                for members, meet in self._grouped(op, fork):
                    if len(members) == 1:
                        branches.append(self.chain(fork, members[0]))
                        continue
                    inner = Op(f"{op.id}:{members[0]}", Concat.write(), members, source=op.source)
                    nested = Block(inner, Concat.keyword, None,
                                   [self.chain(meet, i) for i in members],
                                   meet)
                    branches.append(self.chain(fork, meet) + [nested])
                block, node = self._split_block(op, fork, branches)
                out.append(block)
            elif op.kind == TAKE and op.inputs == [stop]:  # a branch's share of a split
                out.append(op)
                node = stop
            elif op.kind == TAKE:
                self.fail(node, "a part of a channel split that is not merged back by concat")
            else:
                out.append(op)
                node = op.inputs[0] if op.inputs else "input"
        return out[::-1]

    def _meet(self, a, b):
        index = {"input": -1, **{k: i for i, k in enumerate(self.order)}}
        while a != b:
            while index[a] > index[b]:
                a = self.idom[a]
            while index[b] > index[a]:
                b = self.idom[b]
        return a

    def _grouped(self, op, fork):
        """A merge's inputs as runs [(members, where they meet)]: for concat, consecutive
        inputs whose paths meet below the fork form one run, since an exporter flattens
        cat(a, cat(b, c)) into one concat of a, b, c."""
        runs = []
        for i in op.inputs:
            if op.kind == Concat.keyword and runs:
                members, meet = runs[-1]
                joined = self._meet(meet, i)
                if joined != fork:
                    runs[-1] = (members + [i], joined)
                    continue
            runs.append(([i], i))
        return runs

    def _split_block(self, op, fork, branches):
        """The block, and where the walk goes on: 'concat split { ... }' when every branch
        starts with its share of one split (the walk then goes on before the split)."""
        fork_op = self.ops.get(fork)
        if fork_op is not None and fork_op.kind == SPLIT:
            starts = [b[0] if b else None for b in branches]
            if all(isinstance(s, Op) and s.kind == TAKE and s.inputs == [fork]
                   for s in starts) and [s.index for s in starts] == list(range(len(starts))):
                sizes = fork_op.sizes
                word = "equal" if len(set(sizes)) == 1 else tuple(sizes)
                self.emitted.add(fork)
                return Block(op, op.kind, word, [b[1:] for b in branches]), fork_op.inputs[0]
        return Block(op, op.kind, None, branches, fork), fork

    def attach_heads(self):
        """Side outputs branch off the path of the final output where they leave it; one on
        the path is marked with 'output' after it."""
        path, todo = set(), [self.final]  # every node the final output is made from
        while todo:
            node = todo.pop()
            if node != "input" and node not in path:
                path.add(node)
                todo += self.ops[node].inputs
        for out in self.outputs[:-1]:
            point = out
            while point not in path and point != "input":
                point = self.idom[point]
            if point == out:
                self.marked.add(out)
            else:
                self.heads.setdefault(point, []).append(out)

    def build(self) -> list:
        self.attach_heads()
        body = self.chain("input", self.final)
        left = [k for k in self.order if k not in self.emitted and self.users[k]]
        if left:
            self.fail(left[0], "it is not on a path to an output")
        return body


class Block:
    """A merge block (or a head: kind 'output') and its branches, as the emitter builds it."""
    __slots__ = ("op", "kind", "word", "branches", "fork")

    def __init__(self, op, kind, word, branches, fork=None):
        self.op, self.kind, self.word, self.branches, self.fork = op, kind, word, branches, fork


LONG_SKIP = 40  # a branch this long beside an identity (a U-Net skip) reads better as "concat ID"


def _references(body, ops):
    """A merge whose other path is long reads as that path inline, then 'add ID'; short ones
    (residual blocks) stay blocks, so that runs of them can fold into a repeat."""
    out = []
    for item in body:
        if isinstance(item, Op):
            out.append(item)
            continue
        item.branches = [_references(b, ops) for b in item.branches]
        empty = [i for i, b in enumerate(item.branches) if not b]
        fork = ops.get(item.fork)
        crop = item.op is not None and item.op.meta.get("centre_crop")
        if item.kind in MERGES and item.word is None and len(item.branches) == 2 \
                and len(empty) == 1 and fork is not None and fork.name \
                and (item.kind != Concat.keyword or empty[0] == 1) \
                and (crop or _length(item.branches[1 - empty[0]]) > LONG_SKIP):
            out += item.branches[1 - empty[0]]
            out.append(Op(item.op.id, KINDS[item.kind].write(ref=fork.name, crop=bool(crop)),
                          [], item.op.name, item.op.source))
            continue
        if crop:
            raise CnnCalcError(f"cannot write {item.op.source}: a centre-cropped concat whose "
                               "other path is not the saved tensor of one earlier layer")
        out.append(item)
    return out


def _length(body) -> int:
    return sum(1 if isinstance(i, Op) else 1 + sum(_length(b) for b in i.branches) for i in body)


def _named(item):
    if isinstance(item, Op):
        return [item.name] if item.name else []
    names = [item.op.name] if isinstance(item.op, Op) and item.op.name else []
    for b in item.branches:
        for i in b:
            names += _named(i)
    return names


_SCOPE = re.compile(r"^(?P<prefix>(?:[^.]+\.)*?[^.]+)\.(?P<index>\d+)\.")


def _scope(item):
    """(P, K) when every name inside the item starts with P.K. (layer1.1.conv1)."""
    scopes = {(m["prefix"], int(m["index"])) if (m := _SCOPE.match(n)) else None
              for n in _named(item)}
    return scopes.pop() if len(scopes) == 1 else None


def _render(body, indent, strip=""):
    pad = "  " * indent
    out = []
    for item in body:
        if isinstance(item, Op):
            out.append(f"{pad}{item.text}{_name(item.name, strip)}")
            continue
        if item.kind == Output.keyword:
            out.append(f"{pad}{Output.write()} {{")
            out += _render(item.branches[0], indent + 1, strip)
            out.append(f"{pad}}}")
            continue
        head = KINDS[item.kind].write(split=item.word)
        out.append(f"{pad}{head}{_name(item.op.name, strip)} {{")
        for b in item.branches:
            if not b:
                out.append(f"{pad}  branch {{ }}")
                continue
            out.append(f"{pad}  branch {{")
            out += _render(b, indent + 2, strip)
            out.append(f"{pad}  }}")
        out.append(f"{pad}}}")
    return out


def _name(name, strip=""):
    if not name:
        return ""
    return f" name={name[len(strip):] if strip and name.startswith(strip) else name}"


def _fold(body, indent):
    """Runs of items built alike under P.K, P.K+1, ... become one repeat."""
    groups = []  # [scope or None, [items]]
    for item in body:
        scope = _scope(item)
        if scope is None and groups and (groups[-1][0] is None or not _named(item)):
            groups[-1][1].append(item)  # an unnamed layer joins the module before it
        elif groups and scope is not None and groups[-1][0] == scope:
            groups[-1][1].append(item)
        else:
            groups.append([scope, [item]])
    pad = "  " * indent
    out = []
    i = 0
    while i < len(groups):
        scope, items = groups[i]
        if scope is None:
            out += _repeats(items, indent)
            i += 1
            continue
        prefix, k = scope
        text = _render(items, indent + 1, f"{prefix}.{k}.")
        j = i + 1
        while j < len(groups) and groups[j][0] == (prefix, k + j - i) and \
                _render(groups[j][1], indent + 1, f"{prefix}.{k + j - i}.") == text:
            j += 1
        if j - i > 1:
            start = f" from {k}" if k else ""
            out.append(f"{pad}repeat {j - i}{start} name={prefix} {{")
            out += text
            out.append(f"{pad}}}")
        else:
            out += _render(items, indent)
        i = j
    return out


def _repeats(items, indent):
    """Runs of identical unnamed blocks (a Darknet cfg's residuals) as 'repeat N { ... }'."""
    pad = "  " * indent
    out, i = [], 0
    while i < len(items):
        text = _render([items[i]], indent + 1)
        j = i + 1
        if isinstance(items[i], Block) and not _named(items[i]):
            while j < len(items) and isinstance(items[j], Block) and not _named(items[j]) \
                    and _render([items[j]], indent + 1) == text:
                j += 1
        if j - i > 1:
            out += [f"{pad}repeat {j - i} {{", *text, f"{pad}}}"]
        else:
            out += _render([items[i]], indent)
        i = j
    return out


def emit(ops: list, outputs: list, input_text: str, network: str = "network") -> str:
    """The spec of an imported graph, in cnncalc's language."""
    ops = reaching(ops, outputs)
    names = {}
    for op in ops:  # a module called twice (torchvision's self.relu): relu, relu_2, ...
        if op.name:
            n = names[op.name] = names.get(op.name, 0) + 1
            if n > 1:  # safe: '2_2' would read as the size 2 then a word
                op.name = safe_name(f"{op.name}_{n}")
    taken = {op.name for op in ops if op.name}
    for op in ops:  # 'shares ID': the layer whose weights it uses, named
        first = op.meta.get("shares")
        if first is not None and first in ops:  # (else this one holds the weights)
            if not first.name:
                first.name = safe_name(first.id)
                while first.name in taken:
                    first.name += "_"
                taken.add(first.name)
            op.text += " " + SHARES.describe(first.name)
    body = _nested(ops, outputs)
    if any(line.strip() in (SPLIT, TAKE) for line in body):
        # a split whose parts are read apart, not by one concat (MambaOut's gate): each
        # part is 'slice N start S' of what it splits
        ops = _slices(ops)
        body = _nested(ops, outputs)
    lines = [f"network {network}", f"input {input_text}"] + body
    return "\n".join(lines) + "\n"


def _nested(ops, outputs) -> list:
    em = _Emitter(ops, outputs)
    try:
        return _fold(_references(em.build(), em.ops), 0)
    except _NotNested:  # a graph that does not nest: chains, 'from ID' and references
        return _chains(ops, outputs)


def _slices(ops) -> list:
    """The ops with each part of a split ('take') as a slice of the split's input, and the
    splits gone."""
    splits = {op.id: op for op in ops if op.kind == SPLIT}
    for op in ops:
        if op.kind == TAKE:
            split = splits[op.inputs[0]]
            op.text = Slice.write(channels=split.sizes[op.index],
                                start=sum(split.sizes[:op.index]))
            op.inputs = list(split.inputs)
    return [op for op in ops if op.kind != SPLIT]


def _chains(ops, outputs) -> list:
    """Any graph as chains: each op after the one it reads, or after 'from ID' when it
    reads another; a merge as its first input, then 'add ID' ('concat ID', 'multiply ID')
    for each other input in order (the same sums, and the same channels in the same
    order); a side output as 'output' after it. Every op read out of turn is named."""
    plan, read = _plan(ops, outputs)
    by_id = {op.id: op for op in ops}
    taken = {op.name for op in ops if op.name}
    for k in read - {"input"}:
        op = by_id[k]
        if not op.name:
            op.name = safe_name(op.id)
            while op.name in taken:
                op.name += "_"
            taken.add(op.name)

    def ref(k):
        return "input_" if k == "input" else by_id[k].name
    # the input, read out of turn: named by an identity ('linear' computes nothing)
    lines = [Act.write(IDENTITY) + " name=input_" if "input" in read else None]
    for step in plan:
        if step[0] == "jump":
            lines.append(From.write(ref=ref(step[1])))
        elif step[0] == "side":
            lines.append(Output.write())
        else:
            _, op, other, last = step
            text = op.text if step[0] == "op" else \
                KINDS[op.kind].write(ref=ref(other), crop=bool(op.meta.get("centre_crop")))
            lines.append(text + (_name(op.name) if last else ""))
    return [line for line in lines if line]


def _plan(ops, outputs) -> tuple:
    """The chains' steps in order ('from', 'merge', 'op', 'output'), and the ops read out
    of turn (which need names)."""
    plan, cur, read = [], "input", set()
    for op in _slices(ops):  # a split's parts: slices of what it splits
        first = op.inputs[0] if op.inputs else "input"
        if first != cur:
            plan.append(("jump", first))
            read.add(first)
        if op.kind in MERGES and len(op.inputs) > 1:
            for i, other in enumerate(op.inputs[1:]):
                read.add(other)
                plan.append(("merge", op, other, i == len(op.inputs) - 2))
        else:
            plan.append(("op", op, None, True))
        if op.id in outputs[:-1]:
            plan.append(("side", op.id))
        cur = op.id
    if cur != outputs[-1]:
        plan.append(("jump", outputs[-1]))
        read.add(outputs[-1])
    return plan, read
