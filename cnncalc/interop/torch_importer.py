"""The PyTorch importer's walk over a traced graph: each node to its handler (a torch.nn
layer's in torch_modules, an operator's in torch_aten), tensors' layouts, weights used
twice or frozen, and what has no counterpart."""

from __future__ import annotations

from ..layers import KINDS
from ..layers.base import FROZEN, SHARES
from .graph import Op
from .rewrite import inner
from .torch_aten import FUNCTIONS
from .torch_graph import flat as _flat
from .torch_modules import module_handler
from .torch_nodes import _PRODUCTS, _brief, _target_name, _tensor


class _Importer:
    def __init__(self, gm, layout, source):
        self.gm, self.source = gm, source
        self.modules = dict(gm.named_modules())
        self.layouts = {}   # node name -> Layout (None for non-tensors)
        self.ops, self._by_id = [], {}  # the ops in order, and by id (add and drop keep both)
        self.ids = {}       # node name -> op id standing for its tensor
        self.problems = []
        self.input_layout = layout
        self.consts = set()  # nodes computed without the input (buffers, shapes, constants)
        self.skip = set()    # nodes folded into another
        self.failed = set()  # nodes without a counterpart, and those computed from them
        # a tensor (N, R, C, ...) that is an op's (N, R x C, ...) split in R: node -> R
        self.radix = {}
        # a map with its spatial axes merged into one, (N, C, H x W) or (N, H x W, C), as
        # Segformer's MLP reads it: node -> the map's spatial sizes (picture order)
        self.merged = {}
        self.used = {}       # a module or parameter with weights -> the node that ran it
        self.ran = {}        # the weights' tensors (ids) -> (the first node, their path)
        self.frozen_later = []  # (node, parameter path): a function's weight, checked after it
        self.sharing = {}    # a node that runs them again -> (the first node, their path)

    # --- helpers ----------------------------------------------------------------------------
    def shape(self, node):
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def layout_of(self, arg):
        return self.layouts.get(getattr(arg, "name", None))

    def fail(self, node, what):
        self.problems.append((node.name, what))
        self.failed.add(node.name)

    def add(self, node, text, inputs, name=None, **kw):
        op = Op(node.name, text, [self.ids[i.name] for i in inputs], name, f"node {node.name}",
                **kw)
        if name is None:  # a function: the module it runs in, if that module makes only it
            stack = node.meta.get("nn_module_stack") or {}
            op.meta["module"] = m = list(stack)[-1] if stack else None
            op.meta["weighted"] = m is not None and any(
                getattr(a, "op", None) == "get_attr" and a.target.startswith(m + ".")
                for a in _flat(node.args))
        self.ops.append(op)
        self._by_id[op.id] = op
        self.ids[node.name] = op.id
        return op

    def alias(self, node, arg, layout=None):
        """The node is its argument again (a layout change, identity, contiguous)."""
        self.ids[node.name] = self.ids[arg.name]
        self.layouts[node.name] = layout or self.layouts[arg.name]
        if arg.name in self.radix and layout is None:
            self.radix[node.name] = self.radix[arg.name]
        if arg.name in self.merged:
            self.merged[node.name] = self.merged[arg.name]

    def name_functions(self):
        """A function that is the only op of its module (a wrapper) takes the module's path."""
        count = {}
        for op in self.ops:  # a chain of primitives counts as the op it will be
            m = op.meta.get("module")
            if m and not op.name and not inner(op):
                count[m] = count.get(m, 0) + 1
        owned = [op.name for op in self.ops if op.name]
        for op in self.ops:
            m = op.meta.get("module")
            # beside its modules' own only when it reads the module's weights (timm's
            # BatchNormAct2d: 'bn' and its 'bn.act'); a block's add stays unnamed, so that
            # the block is the module's scope
            if m and not op.name and not inner(op) and count[m] == 1 and m not in owned and (
                    op.meta.get("weighted") or
                    not any(n.startswith(m + ".") for n in owned)):
                op.name = m

    def ops_by_id(self):
        return self._by_id

    def pad_before(self, x, node):
        """The F.pad that makes ``x``, when ``node`` is its only reader and both run in one
        module (a 'same' conv wrapper): then the padding is the layer's own. A padding layer
        of its own (nn.ZeroPad2d, cnncalc's zeropad) stays a row."""
        op = self.ops_by_id().get(self.ids.get(x.name))
        if op is None or "pads" not in op.meta or list(x.users) != [node]:
            return None
        stack = list((node.meta.get("nn_module_stack") or {}))
        owner = stack[-2] if node.op == "call_module" and len(stack) > 1 else \
            (stack[-1] if stack and node.op != "call_module" else None)
        return op if owner is not None and op.meta.get("module") == owner else None

    def drop(self, op):
        self.ops.remove(op)
        del self._by_id[op.id]

    def tensor_args(self, node):
        return [a for a in _flat(node.args) + _flat(node.kwargs.values())
                if hasattr(a, "op") and a.name in self.ids]

    # --- the walk -----------------------------------------------------------------------------
    def run(self, example_shape):
        graph = self.gm.graph
        self.refuse_attention()
        for node in graph.nodes:
            if node.op == "placeholder":
                self.ids[node.name] = "input"
                self.layouts[node.name] = self.input_layout
            elif node.op == "get_attr":
                self.consts.add(node.name)
            elif node.op == "output":
                self.outputs = [self.ids[a.name] for a in _flat(node.args) if hasattr(a, "name")
                                and a.name in self.ids]
            elif node.name in self.skip:
                continue
            elif any(getattr(a, "name", None) in self.failed
                     for a in _flat(node.args) + _flat(node.kwargs.values())):
                self.failed.add(node.name)  # after a node that failed: said once, there
            elif all(not (hasattr(a, "op") and a.name in self.ids)
                     for a in _flat(node.args) + _flat(node.kwargs.values())):
                self.consts.add(node.name)  # sizes, shapes and constants: no tensor flows in
            else:
                self.node(node)
        return self.ops

    def refuse_attention(self):
        """A matrix product of two tensors computed from the input is attention (softmax(Q
        K^T) V, or a linear attention's K^T V): named first, whatever else fails after."""
        flowing = set()
        for node in self.gm.graph.nodes:
            args = [a for a in _flat(node.args) if getattr(a, "name", None) in flowing]
            if node.op == "placeholder" or args:
                flowing.add(node.name)
            if node.op == "call_function" and _target_name(node) in _PRODUCTS and len(args) >= 2:
                where = list(node.meta.get("nn_module_stack") or {})
                self.fail(node, f"attention: {_target_name(node)[5:]} of two computed tensors "
                                f"{_brief(node)}" + (f" in {where[-1]}" if where else "")
                          + " (cnncalc has no attention kind)")
                return

    def buffers(self) -> set:
        """The root module's buffer names (a weight that is one is fixed, not trained)."""
        if not hasattr(self, "_buffers"):
            self._buffers = {n for n, _ in self.gm.root.named_buffers()}
        return self._buffers

    def shared(self, node, target):
        """A module or parameter that runs a second time: its weights are shared, and the
        language writes each layer's own weights (it would count them twice)."""
        if target in self.used:
            self.fail(node, f"{target} runs a second time (after {self.used[target]}): its "
                            "weights are shared, and cnncalc writes each layer's own")
            return True
        self.used[target] = node.name
        return False

    def share(self, node, target, tensors=None):
        """A module or parameter that runs again, or a module whose tensors another's are
        (tied weights): its layer is written 'shares ID', so the weights count once, as
        PyTorch's parameters() counts them, when its kind can say so (``mark_shared``)."""
        key = tensors or (id(_tensor(self.gm.root, target)),)
        first = self.ran.setdefault(key, (node.name, target))
        if first[0] != node.name:
            self.sharing[node.name] = first

    def per_position(self, node, x) -> bool:
        """A module on a map with its spatial axes merged must keep them: a Linear on the
        channels, an activation (it then runs on the map as it is)."""
        before, after = self.shape(x), self.shape(node)
        axis = 1 if self.layouts[x.name].first else 2
        if after is None or len(after) != 3 or after[3 - axis] != before[3 - axis]:
            self.fail(node, f"module {type(self.modules[node.target]).__name__} on "
                            f"{x.name}, a map with its spatial axes merged {before}")
            return False
        return True

    def mark_frozen(self, node, tensors):
        """Weights none of which trains (requires_grad=False: a backbone frozen for
        fine-tuning) make the layer 'frozen': counted with the buffers."""
        if not tensors or any(t.requires_grad for t in tensors) or node.name in self.failed:
            return
        op = self.ops_by_id().get(self.ids.get(node.name))
        if op is None or FROZEN not in getattr(KINDS.get(op.kind), "options", ()):
            self.fail(node, f"frozen weights (requires_grad=False) of a layer cnncalc writes "
                            f"as {op.kind if op else 'nothing'!r}, which cannot say 'frozen'")
        elif "frozen" not in op.text.split():
            op.text += " frozen"

    def mark_shared(self, node):
        first, target = self.sharing[node.name]
        ops = self.ops_by_id()
        theirs, mine = ops.get(self.ids.get(first)), ops.get(self.ids.get(node.name))
        if theirs is None or mine is None or theirs.kind != mine.kind or \
                SHARES not in getattr(KINDS.get(mine.kind), "options", ()):
            self.fail(node, f"{target} runs a second time (after {first}): its weights are "
                            f"shared, and cnncalc writes 'shares ID' only for the kinds that "
                            f"take it ({', '.join(sorted(_SHARING))})")
            return
        mine.meta["shares"] = theirs

    def node(self, node):
        if node.op == "call_module":
            self.module_node(node)
            return
        name = _target_name(node)
        handler = FUNCTIONS.get(name)
        if handler is None:
            self.fail(node, f"operator {name[5:]}")
            return
        if not self.reads_as_it_can(node, name):
            return
        try:
            handler(self, node)
            for n, target in self.frozen_later:  # a buffer is fixed too
                self.mark_frozen(n, [_tensor(self.gm.root, target)])
            self.frozen_later.clear()
            if node.name in self.sharing and node.name not in self.failed:
                self.mark_shared(node)
        except (AttributeError, TypeError, ValueError, IndexError, KeyError,
                ZeroDivisionError) as e:  # arguments this reader does not follow
            self.fail(node, f"operator {name[5:]} with arguments {_brief(node)} "
                            f"({type(e).__name__}: {str(e)[:80]})")

    def module_node(self, node):
        """One of torch.nn's layers, read whole from the module."""
        module = self.modules[node.target]
        handler = module_handler(module)
        if handler is None:
            self.fail(node, f"module {type(module).__name__} ({node.target})")
            return
        tensors = tuple(id(p) for p in module._parameters.values() if p is not None)
        if tensors:
            self.share(node, node.target, tensors)
        x = node.args[0] if node.args else None
        if getattr(x, "name", None) in self.merged and not self.per_position(node, x):
            return
        handler(self, node, module)
        if getattr(x, "name", None) in self.merged and node.name in self.ids:
            self.merged[node.name] = self.merged[x.name]
        self.mark_frozen(node, [p for p in module._parameters.values() if p is not None])
        if node.name in self.sharing and node.name not in self.failed:
            self.mark_shared(node)

    def reads_as_it_can(self, node, name) -> bool:
        """An operator on a tensor split along a new axis, or on a map with its spatial
        axes merged, must be one that keeps to them; else it is named (False)."""
        split = next((a for a in _flat(node.args) if getattr(a, "name", None) in
                      self.radix), None)
        flat = next((a for a in _flat(node.args) if getattr(a, "name", None) in
                     self.merged), None)
        if flat is not None and name not in _MERGED_AWARE:
            self.fail(node, f"operator {name[5:]} on {flat.name}, a map with its spatial "
                            f"axes merged {_brief(node)}")
            return False
        if split is not None and name not in _SPLIT_AWARE:
            self.fail(node, f"operator {name[5:]} on {split.name}, channels split in "
                            f"{self.radix[split.name]} along a new axis {_brief(node)}")
            return False
        return True


# what reads a tensor split along a new axis (N, R, C / R, ...): the paths of SKNet and
# ResNeSt, summed ('splitsum'), weighted by a softmax across them ('rsoftmax')
_SPLIT_AWARE = {"aten.sum", "aten.mul", "aten.mul_", "aten._softmax", "aten.view",
                "aten._unsafe_view", "aten.reshape", "aten.clone", "aten.alias", "aten.detach",
                "aten.contiguous"}


# what reads a map with its spatial axes merged, (N, C, H x W): a transpose to (N, H x W,
# C) and back, a view back to the map; between them, per-position modules (Linear)
_MERGED_AWARE = {"aten.view", "aten._unsafe_view", "aten.reshape", "aten.transpose",
                 "aten.permute",
                 "aten.clone", "aten.alias", "aten.detach", "aten.contiguous"}


# the kinds a layer that runs again may be written as ('conv ... shares ID')
_SHARING = {w for w, k in KINDS.items() if SHARES in k.options}

