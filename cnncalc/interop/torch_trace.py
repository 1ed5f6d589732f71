"""A PyTorch module's graph, recorded while it runs on meta tensors: shapes only, no memory
for weights and nothing computed. Running the model's own Python follows whatever it does
(control flow on shapes, 'same' padding computed from sizes, lists from chunk, *args),
which symbolic tracing cannot. A dispatch mode sees every ATen operator outside the leaf
modules (torch.nn's own layers, matched by type, which the importer reads as a whole);
forward hooks say which module each operator runs in. The result is a torch.fx Graph whose
nodes carry 'tensor_meta' (the shape) and 'nn_module_stack', as torch.fx's passes write
them, so the importer reads one graph form."""

from __future__ import annotations

import operator


class Shape:
    """A node's tensor metadata: what the importer reads of ShapeProp's TensorMetadata."""
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)


class Traced:
    """The recorded graph, and the module whose paths its call_module and get_attr nodes
    name."""

    def __init__(self, graph, root):
        self.graph, self.root = graph, root

    def named_modules(self):
        return self.root.named_modules()


# the operators whose first result is the value and the rest statistics or indices
_FIRST = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
          "native_layer_norm", "native_group_norm", "max_pool1d_with_indices",
          "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d",
          "adaptive_max_pool2d", "adaptive_max_pool3d", "max_pool1d_with_indices"}
# torch functions that ATen runs as another operator between an unsqueeze and a squeeze
# (max_pool1d as max_pool2d): recorded as themselves
_WHOLE = {"max_pool1d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d",
          "adaptive_max_pool1d"}


def op_name(target) -> str:
    """An ATen operator's name without its namespace and overload ('convolution'), or a
    whole function's."""
    schema = getattr(target, "_schema", None)
    return schema.name.split("::")[-1] if schema is not None else getattr(target, "__name__", "")
# pointwise operators whose result is not an input-like float tensor (comparisons) or whose
# layout is their own (copies)
_NOT_LIKE = {"eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "logical_not",
             "logical_and", "logical_or", "logical_xor", "signbit", "clone", "_to_copy", "copy",
             "fill", "zero", "where"}


def _shortcut(func, args, kwargs):
    """The result's metadata without PyTorch's meta kernels where those are slow Python
    decompositions (batch norm, layer norm, the pointwise activations): the same shape as
    the input. None where the real meta kernel should run."""
    import torch
    name = func._schema.name.split("::")[-1]
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return None
    if name in ("native_batch_norm", "_native_batch_norm_legit_no_training",
                "_native_batch_norm_legit"):
        c = x.shape[1] if x.dim() > 1 else 0
        return torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty((c,)), x.new_empty((c,))
    if name == "native_layer_norm":
        kept = x.shape[:x.dim() - len(args[1])] + (1,) * len(args[1])
        return torch.empty_like(x), x.new_empty(kept), x.new_empty(kept)
    if name == "native_group_norm":
        stats = (x.shape[0], args[6])
        return torch.empty_like(x), x.new_empty(stats), x.new_empty(stats)
    if torch.Tag.pointwise in func.tags and name.rstrip("_") not in _NOT_LIKE and \
            not any(isinstance(a, torch.Tensor) for a in args[1:]) and \
            not any(isinstance(a, torch.Tensor) for a in kwargs.values()) and \
            x.is_floating_point():
        return x if name.endswith("_") else torch.empty_like(x)
    return None


class _Recorder:
    """Tensors to the nodes that made them, while the module runs."""

    def __init__(self, root, is_leaf):
        import torch.fx
        self.graph = torch.fx.Graph()
        self.root, self.is_leaf = root, is_leaf
        self.names = {id(m): n for n, m in root.named_modules()}
        self.nodes = {}     # id(tensor) -> (tensor, node): the tensor kept, so no id is reused
        self.stack = []     # (path, type) of the modules running now, outermost first
        self.leaf = 0       # > 0 inside a leaf module: its operators are not recorded
        self.entered = []   # per module call: its path, or None where not recorded

    def node_of(self, t):
        """The node standing for tensor ``t``; a tensor made outside the recorded code (a
        plain tensor attribute) becomes a constant."""
        hit = self.nodes.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        node = self.graph.create_node("get_attr", "_constant", name="constant")
        node.meta["tensor_meta"] = Shape(t.shape)
        self.nodes[id(t)] = (t, node)
        return node

    def wrap(self, value):
        """Arguments with their tensors as nodes."""
        import torch
        if isinstance(value, torch.Tensor):
            return self.node_of(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.wrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self.wrap(v) for k, v in value.items()}
        return value

    def stack_meta(self, extra=None):
        out = dict(self.stack)
        if extra is not None:
            out[extra[0]] = extra[1]
        return out

    def record(self, op, target, args, kwargs, result, name, module=None):
        import torch
        node = self.graph.create_node(op, target, self.wrap(args), self.wrap(kwargs), name=name)
        node.meta["nn_module_stack"] = self.stack_meta(module)
        if isinstance(result, torch.Tensor):
            node.meta["tensor_meta"] = Shape(result.shape)
            self.nodes[id(result)] = (result, node)
        elif isinstance(result, (list, tuple)):
            if op_name(target) in _FIRST:
                node.meta["tensor_meta"] = Shape(result[0].shape)
                self.nodes[id(result[0])] = (result[0], node)
                return node
            for i, r in enumerate(result):
                if isinstance(r, torch.Tensor):
                    item = self.graph.create_node("call_function", operator.getitem, (node, i),
                                                  name=f"{node.name}_{i}")
                    item.meta["nn_module_stack"] = node.meta["nn_module_stack"]
                    item.meta["tensor_meta"] = Shape(r.shape)
                    self.nodes[id(r)] = (r, item)
        return node

    # --- module scopes ---------------------------------------------------------------------
    def before(self, module, args, kwargs):
        path = self.names.get(id(module))
        if self.leaf or path is None:
            self.entered.append(None)
            if self.leaf:
                self.leaf += 1
            return
        self.entered.append(path)
        if path and self.is_leaf(module):
            self.leaf = 1
        elif path:
            self.stack.append((path, type(module)))

    def after(self, module, args, kwargs, result):
        path = self.entered.pop()
        if path is None:
            if self.leaf:
                self.leaf -= 1
            return
        if self.leaf:
            self.leaf = 0
            self.record("call_module", path, args, kwargs, result, path.replace(".", "_"),
                        (path, type(module)))
        elif path:
            self.stack.pop()


def _modes(recorder):
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class Whole(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", None)
            if recorder.leaf or name not in _WHOLE:
                return func(*args, **kwargs)
            recorder.leaf += 1
            try:
                result = func(*args, **kwargs)
            finally:
                recorder.leaf -= 1
            recorder.record("call_function", func, args, kwargs, result, name)
            return result

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            result = _shortcut(func, args, kwargs)
            if result is None:
                result = func(*args, **kwargs)

            if not recorder.leaf and any(isinstance(a, torch.Tensor) for a in
                                         _tensors(args) + _tensors(kwargs.values())):
                recorder.record("call_function", func, args, kwargs, result,
                                op_name(func))
            return result
    return Whole(), Mode()


def _tensors(values):
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += _tensors(v)
        else:
            out.append(v)
    return out


def record(module, example_shape, is_leaf) -> Traced:
    """Run ``module`` on a meta tensor of ``example_shape`` (batch first, as it takes it),
    with meta copies of its parameters and buffers (a model on the meta device runs as it
    is), and return the recorded graph. ``is_leaf(m)``: read this module as a whole."""
    import torch
    from torch.nn.modules import module as nn_module

    rec = _Recorder(module, is_leaf)
    state = {}
    for name, t in [*module.named_parameters(remove_duplicate=False),
                    *module.named_buffers(remove_duplicate=False)]:
        meta = state.get(id(t))
        if meta is None:  # a tensor used under two names (tied weights) stays one tensor
            meta = t if t.device.type == "meta" else torch.empty_like(t, device="meta")
            node = rec.graph.create_node("get_attr", name, name=name.replace(".", "_"))
            node.meta["tensor_meta"] = Shape(t.shape)
            rec.nodes[id(meta)] = (meta, node)
        state[id(t)] = meta
        state[name] = meta
    state = {k: v for k, v in state.items() if isinstance(k, str)}
    x = torch.empty(example_shape, device="meta")
    inp = rec.graph.create_node("placeholder", "x", name="x")
    inp.meta["tensor_meta"] = Shape(x.shape)
    rec.nodes[id(x)] = (x, inp)
    pre = nn_module.register_module_forward_pre_hook(
        lambda m, a: rec.before(m, a, {}))
    post = nn_module.register_module_forward_hook(
        lambda m, a, r: rec.after(m, a, {}, r))
    was = module.training
    module.eval()
    try:
        whole, dispatch = _modes(rec)
        with torch.device("meta"), torch.no_grad(), whole, dispatch:
            result = torch.func.functional_call(module, state, (x,), tie_weights=False,
                                                strict=False)
    finally:
        pre.remove()
        post.remove()
        module.train(was)
    outputs = [rec.node_of(t) for t in _tensors(_values(result)) if isinstance(t, torch.Tensor)]
    rec.graph.output(tuple(outputs))
    return Traced(rec.graph, module)


def _values(result):
    if isinstance(result, dict):
        return list(result.values())
    if isinstance(result, (list, tuple)):
        out = []
        for r in result:
            out += _values(r) if isinstance(r, (list, tuple, dict)) else [r]
        return out
    return [result]
