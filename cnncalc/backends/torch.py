"""PyTorch backend: an ``nn.Module`` built from the calculator's row tree. Each layer's
module comes from its kind (``Layer.module``); this file only wires them: chains, the
branches of merges, and saved outputs for 'add ID'. Input and output are channels last
and in picture order, rows first (N, H, W, C), as NumPy and Keras hold images; inside,
tensors run channels first in the spec's axis order (N, C, W, H).

In inference the module works in place where that is safe, as an expert's module does
(``ReLU(inplace=True)``, ``out += identity``): an activation or an add may overwrite a
tensor only when nothing else reads it later (not a saved output, not a block's input)."""

from __future__ import annotations

from torch import nn

from ..analysis.step import checkpointed
from ..analysis.walk import analyse
from ..analysis.summary import Summary
from ..layers import referenced
from .modules import channels_last, picture, to_first
from .tensor_ops import align


class Seq:
    """A chain of layers; merges get the saved tensors, plain layers do not. The layers are
    registered in ``Net`` under their spec names, so a chain only lists them."""

    def __init__(self, items):
        self.steps = [(module, isinstance(module, (Branches, RefMerge)), name if keep else None,
                       again) for name, module, keep, again in items]

    def __call__(self, x, saved):
        for module, graph, keep, again in self.steps:
            if again and module.training:  # checkpointed: run again in the backward pass
                from torch.utils.checkpoint import checkpoint
                x = checkpoint(module, x, saved, use_reentrant=False)
            else:
                x = module(x, saved) if graph else module(x)
            if keep is not None:
                saved[keep] = x
        return x


class Branches(nn.Module):
    """A merge block: every branch takes the input; ``op`` combines their outputs.
    ``first`` is a branch whose fresh output the op may overwrite."""

    def __init__(self, branches, op, first=None, split=None, ranks=None):
        super().__init__()
        self.branches, self.op, self.first, self.split = branches, op, first, split
        self.ranks = ranks  # the branches' spatial axes, when a flat gate is broadcast

    def forward(self, x, saved):
        if self.split:  # (indexed, not iterated: torch.fx traces this)
            parts = x.split(self.split, 1)
            xs = [parts[i] for i in range(len(self.split))]
        else:
            xs = [x] * len(self.branches)
        outs = [b(xj, saved) for b, xj in zip(self.branches, xs)]
        if getattr(self.op, "head", False):  # 'output { ... }': the input goes on
            return self.op(outs + [x])
        if self.ranks is not None:
            outs = align(outs, self.ranks)
        if self.first is None:
            return self.op(outs)
        return self.op([outs[self.first]] + outs[:self.first] + outs[self.first + 1:],
                       inplace=True)


class RefMerge(nn.Module):
    """'add ID', 'concat ID', 'multiply ID': the op on the current and a saved tensor."""

    def __init__(self, op, ref, inplace, ranks=None):
        super().__init__()
        self.op, self.ref, self.inplace, self.ranks = op, ref, inplace, ranks

    def extra_repr(self):
        return f"{self.ref!r}"

    def forward(self, x, saved):
        xs = [x, saved[self.ref]]
        return self.op(xs if self.ranks is None else align(xs, self.ranks), inplace=self.inplace)


class Net(nn.Module):
    """The whole spec. ``forward`` takes a channels-last batch in picture order (N, H, W, C)
    and returns the output the same way. ``layers`` maps spec names to modules, and
    ``named_modules()`` shows the same names (``layer1.0.conv1``), as a PyTorch model's
    module paths. ``inplace=False`` keeps every layer's output intact (for feature maps)."""

    def __init__(self, summary: Summary, inplace: bool = True, checkpoint=()):
        super().__init__()
        self.layers: dict[str, nn.Module] = {}
        self.inplace, self.checkpoint = inplace, tuple(checkpoint)
        self.spec_name = summary.network.name
        self.keep = referenced(summary.network.layers)
        # the chain only wires; its layers are registered by name, so it is kept unregistered
        self.__dict__["body"] = self._seq(summary.tree, False, bool(self.checkpoint))[0]
        self.outputs = [name for name, _ in summary.outputs]
        self.in_rank = len(summary.input) - 1
        self.out_ranks = [len(shape) - 1 for _, shape in summary.outputs]
        self.depth = max((r.depth for r in summary.rows), default=0)

    def _seq(self, rows, fresh, outer=False):
        """Modules for a chain; ``fresh``: the chain owns its input (may overwrite it);
        ``outer``: no block around it is checkpointed, so one of its own may be."""
        items = []
        for row in rows:
            layer = row.layer
            again = outer and checkpointed(row, self.checkpoint)
            if row.branches is not None:
                module, out_fresh = self._block(row, outer and not again), True
            elif row.source is not None:
                ranks = [len(row.input) - 1, len(row.source.output) - 1]
                module = RefMerge(layer.module(row), row.source.name,
                                  self.inplace and fresh and row.input == row.output,
                                  ranks if len(set(ranks)) > 1 else None)
                out_fresh = not layer.jump  # 'from ID' goes on with a saved tensor
            else:
                module, out_fresh = self._layer(row, fresh)
            self.layers[row.name] = module
            self._register(row.name, module)
            keep = row.name in self.keep
            items.append((row.name, module, keep, again))
            fresh = out_fresh and not keep
        return Seq(items), fresh

    def _block(self, row, outer):
        """A merge block's module: its branches' chains, the merge, and the branch (if any)
        whose result the merge may overwrite."""
        layer, subs, owned = row.layer, [], []
        for branch in row.branches:
            module, out_fresh = self._seq(branch, False, outer)
            subs.append(module)
            owned.append(bool(branch) and out_fresh)
        first = next((j for j, b in enumerate(row.branches) if owned[j]
                      and b[-1].output == row.output
                      and (j == 0 or not getattr(layer, "ordered", False))), None) \
            if self.inplace and not layer.marks_output else None
        split = [c[-1] for c in layer.inputs(row.input, len(row.branches))] \
            if layer.split else None
        ranks = [len(b[-1].output if b else row.input) - 1 for b in row.branches]
        return Branches(subs, layer.module(row), first, split,
                        ranks if len(set(ranks)) > 1 else None)

    def _layer(self, row, fresh):
        """A layer's module, frozen or tied where the spec says; and whether its result is
        a tensor of its own (a folded layer keeps its input's, in place)."""
        layer = row.layer
        module = layer.module(row)
        if layer.frozen:
            _freeze(module)
        if layer.shares is not None:
            _tie(module, self.layers[layer.shares])
        if not layer.fold:
            return module, True
        if hasattr(module, "inplace"):  # keeps its input's tensor (in place, or the identity)
            module.inplace = self.inplace and fresh and layer.overwrites
        return module, fresh

    def _register(self, name, module):
        """Under its dotted name: 'layer1.0.conv1' is module conv1 of 0 of layer1. A name that
        cannot nest (an empty part, or its place already taken: 'down' after 'down.conv') is
        registered flat and unique, so no module replaces another and no weight is lost."""
        *path, last = parts = name.split(".")
        owner = self

        def free(o, part):  # not a module's own attribute (Net.layers: MNASNet's 'layers.0')
            return part not in o._modules and not hasattr(o, part)

        if all(parts):
            for part in path:
                child = owner._modules.get(part)
                if child is None:
                    if not free(owner, part):
                        break
                    child = nn.Module()
                    owner.add_module(part, child)
                owner = child
            else:
                if free(owner, last):
                    owner.add_module(last, module)
                    return
        flat = name.replace(".", "_")
        while not free(self, flat):
            flat += "_"
        self.add_module(flat, module)

    def forward(self, x):
        if not self.outputs:  # a spec of only its input
            return x
        if self.in_rank:  # one copy to plain channels-first, so every layer runs its usual kernels
            x = to_first(picture(x, self.in_rank), self.in_rank).contiguous()
        saved = {}
        with _stack(self.depth):
            y = self.body(x, saved)
        if len(self.outputs) > 1:  # side outputs first, in order, then the last layer's
            return tuple(picture(channels_last(saved.get(n, y), r), r)
                         for n, r in zip(self.outputs, self.out_ranks))
        r = self.out_ranks[-1]
        return picture(channels_last(y, r), r)


def _freeze(module):
    """'frozen': every parameter a buffer (fixed, kept in the state dict, as timm's BlurPool
    filter), so that nothing trains it and PyTorch counts it with the buffers."""
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            if p is not None:
                del m._parameters[name]
                m.register_buffer(name, p.detach())


def _tie(module, source):
    """'shares ID': every parameter and buffer of ``module`` is ``source``'s own (the walk
    checked they are the same kind with the same counts)."""
    theirs = dict(source.named_modules())
    for path, m in module.named_modules():
        t = theirs.get(path)  # a fused activation one of them lacks holds no weights
        if t is None:
            continue
        m._parameters.update({k: t._parameters[k] for k in m._parameters})
        m._buffers.update({k: t._buffers[k] for k in m._buffers})


class _stack:
    """Nested blocks cost several Python frames each in nn.Module calls: give deep graphs
    room (the spec's nesting is capped, so this stays bounded)."""

    def __init__(self, depth: int):
        import sys
        self.sys, self.need = sys, 1000 + 40 * depth

    def __enter__(self):
        self.old = self.sys.getrecursionlimit()
        self.sys.setrecursionlimit(max(self.old, self.need))

    def __exit__(self, *exc):
        self.sys.setrecursionlimit(self.old)
        return False


def to_torch(spec, inplace: bool = True, checkpoint=()) -> Net:
    """An ``nn.Module`` for a network or a calculator summary; in training, the blocks
    ``checkpoint`` names (analysis/step.py's ``checkpointed``) run again in the backward
    pass instead of keeping their activations (torch.utils.checkpoint)."""
    summary = spec if isinstance(spec, Summary) else analyse(spec)
    return Net(summary, inplace, checkpoint)


