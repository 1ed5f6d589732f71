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

from .torch_graph import Graph, Shape, Traced, flat

# the operators whose first result is the value and the rest statistics or indices
_FIRST = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
          "native_layer_norm", "native_group_norm", "max_pool1d_with_indices",
          "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d",
          "adaptive_max_pool2d", "adaptive_max_pool3d"}


# torch functions that ATen runs as another operator between an unsqueeze and a squeeze
# (max_pool1d as max_pool2d), or as a broadcast matrix product (F.linear on a map's
# positions: expand, view, bmm): recorded as themselves
_WHOLE = {"max_pool1d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d",
          "adaptive_max_pool1d", "linear"}


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


def conv_sizes(sizes, kernel, stride, padding, dilation) -> tuple:
    """PyTorch's convolution output size per spatial axis (what its meta kernel computes)."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
                 zip(sizes, kernel, stride, padding, dilation))


def _new(x, shape):
    """A contiguous tensor like ``x`` of ``shape``: torch.empty's meta kernel is C++, while
    new_empty's and empty_like's are Python references (most of a trace's time)."""
    import torch
    return torch.empty(shape, dtype=x.dtype, device=x.device)


def _like(x):
    """A tensor of ``x``'s shape and strides (a permuted input's layout is kept)."""
    import torch
    return _new(x, x.shape) if x.is_contiguous() else torch.empty_like(x)


_KINDS = {}  # an operator -> how its result's metadata is made ('' for its meta kernel)


def _kind(func) -> str:
    name = op_name(func)
    if name in ("native_batch_norm", "_native_batch_norm_legit_no_training",
                "_native_batch_norm_legit", "native_layer_norm", "native_group_norm"):
        return name
    if name == "convolution":
        return name
    import torch
    if torch.Tag.pointwise in func.tags and name.rstrip("_") not in _NOT_LIKE:
        return "inplace" if name.endswith("_") else "pointwise"
    return ""


def _shortcut(func, args, kwargs):
    """The result's metadata without PyTorch's meta kernels where those are slow Python
    (batch and layer norm's decompositions, the pointwise activations' and convolution's
    shape rules), on contiguous meta inputs; None where the real kernel should run (a
    tensor off the meta device computes its values, which may steer Python)."""
    import torch
    kind = _KINDS.get(func)
    if kind is None:
        kind = _KINDS[func] = _kind(func)
    if not kind or not args or not isinstance(args[0], torch.Tensor) or not args[0].is_meta:
        return None
    x = args[0]
    if kind == "pointwise" or kind == "inplace":
        if not x.is_floating_point() or any(isinstance(a, torch.Tensor) for a in args[1:]) \
                or any(isinstance(a, torch.Tensor) for a in kwargs.values()):
            return None
        return x if kind == "inplace" else _like(x)
    if not x.is_contiguous():
        return None
    if kind == "convolution":
        w, _, stride, padding, dilation, transposed = args[1:7]
        if transposed or not w.is_contiguous():
            return None
        sizes = conv_sizes(x.shape[2:], w.shape[2:], stride, padding, dilation)
        return _new(x, (x.shape[0], w.shape[0], *sizes))
    return _normalised(kind, x, args)


def _normalised(kind, x, args):
    """A norm's result and its two statistics (what the ATen operator returns)."""
    if kind == "native_layer_norm":
        kept = x.shape[:x.dim() - len(args[1])] + (1,) * len(args[1])
        return _like(x), _new(x, kept), _new(x, kept)
    if kind == "native_group_norm":
        stats = (x.shape[0], args[6])
        return _like(x), _new(x, stats), _new(x, stats)
    c = x.shape[1] if x.dim() > 1 else 0  # batch norm
    return _like(x), _new(x, (c,)), _new(x, (c,))


class _Recorder:
    """Tensors to the nodes that made them, while the module runs."""

    def __init__(self, root, is_leaf):
        self.graph = Graph()
        self.root, self.is_leaf = root, is_leaf
        self.nodes = {}     # id(tensor) -> (tensor, node): the tensor kept, so no id is reused
        self.state = {}     # id(a parameter's or buffer's meta tensor) -> its name
        self.stack = []     # (path, type) of the modules running now, outermost first
        self.leaf = 0       # > 0 inside a leaf module: its operators are not recorded

    def node_of(self, t):
        """The node standing for tensor ``t``; a tensor made outside the recorded code (a
        plain tensor attribute) becomes a constant."""
        hit = self.nodes.get(id(t))
        if hit is not None and hit[0] is t and hit[1] is not None:
            return hit[1]
        name = self.state.get(id(t))
        node = self.graph.create_node("get_attr", name or "_constant",
                                      name=name.replace(".", "_") if name else "constant")
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
        with torch._C.DisableTorchFunction():  # a tensor's .shape would reach the mode
            return self._record(op, target, args, kwargs, result, name, module)

    def _record(self, op, target, args, kwargs, result, name, module):
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
    def scoped(self, module, path, forward, leaf, fast=None):
        """``forward`` run inside the module's scope: a leaf's operators are not recorded,
        the leaf is one node; another module's operators carry its path. On a meta tensor
        a leaf runs ``fast`` where it has one (``_fast``: metadata only), without the modes,
        which would see each .shape it reads and each tensor it makes."""
        import torch
        scope = (path, type(module))
        no_function, no_dispatch = torch._C.DisableTorchFunction, torch._C._DisableTorchDispatch

        def run(args, kwargs):
            if fast is not None:
                with no_function(), no_dispatch():
                    if args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
                        return fast(*args, **kwargs)
            return forward(*args, **kwargs)

        def call(*args, **kwargs):
            if self.leaf:  # inside a leaf or a whole function: nothing is recorded
                return forward(*args, **kwargs)
            if leaf:
                self.leaf = 1
                try:
                    result = run(args, kwargs)
                finally:
                    self.leaf = 0
                self.record("call_module", path, args, {}, result, path.replace(".", "_"), scope)
                return result
            self.stack.append(scope)
            try:
                return forward(*args, **kwargs)
            finally:
                self.stack.pop()
        return call


def _modes(recorder):
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._device import _device_constructors
    from torch.utils._python_dispatch import TorchDispatchMode
    made = _device_constructors()

    class Whole(TorchFunctionMode):
        """Tensors the model makes (torch.zeros, arange) on the meta device, as
        torch.device('meta') does, and the functions of _WHOLE as one node each."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in made and kwargs.get("device") is None:
                kwargs["device"] = "meta"
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

    from torch.utils._pytree import tree_map
    twins = {}  # id(a tensor the model holds off the meta device) -> (it, its meta twin)

    def meta(t):
        if not isinstance(t, torch.Tensor) or t.is_meta:
            return t
        hit = twins.get(id(t))
        if hit is None or hit[0] is not t:
            hit = twins[id(t)] = (t, torch.empty_like(t, device="meta"))
        return hit[1]

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            with torch._C.DisableTorchFunction():  # each .shape read would reach Whole
                return dispatch(func, args, kwargs or {})

    def dispatch(func, args, kwargs):
        run_args, run_kwargs = args, kwargs
        given = [a for a in flat(args) + flat(kwargs.values())
                 if isinstance(a, torch.Tensor)]
        if any(a.is_meta for a in given) and not all(a.is_meta for a in given):
            # a plain tensor attribute (Ultralytics' strides) meets the flow: its meta
            # twin runs; alone, it computes for real (its values may steer Python)
            run_args, run_kwargs = tree_map(meta, args), tree_map(meta, kwargs)
        result = _shortcut(func, run_args, run_kwargs)
        if result is None:
            result = func(*run_args, **run_kwargs)
        if not recorder.leaf and any(isinstance(a, torch.Tensor) for a in
                                     flat(args) + flat(kwargs.values())):
            recorder.record("call_function", func, args, kwargs, result,
                            op_name(func))
        return result
    return Whole(), Mode()


_SAME_SHAPE = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ReLU", "ReLU6", "SiLU", "GELU",
               "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "SELU", "Mish",
               "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "GroupNorm", "Softplus"}


def _fast(m):
    """A forward for torch.nn's own leaf layers that makes its result's metadata only (the
    importer reads the layer from the module itself): the layers' own forwards, their
    functional wrappers and meta kernels cost most of a trace. None: run the real one."""
    cls = type(m)
    if not cls.__module__.startswith("torch.nn.modules"):
        return None
    name = cls.__name__
    if name in _SAME_SHAPE:
        inplace = getattr(m, "inplace", False)
        return lambda x: x if inplace else _like(x)
    if name == "Identity":
        return lambda x, *a, **k: x
    if name == "Linear":
        return lambda x: _new(x, (*x.shape[:-1], m.out_features))
    if name in ("Conv1d", "Conv2d", "Conv3d"):
        def conv(x):
            sizes = x.shape[2:]
            if m.padding == "same":
                out = tuple(sizes)
            else:
                pad = (0,) * len(sizes) if m.padding == "valid" else m.padding
                out = conv_sizes(sizes, m.kernel_size, m.stride, pad, m.dilation)
            return _new(x, (x.shape[0], m.out_channels, *out))
        return conv
    return None


_ABSENT = object()


def _prepare(module, rec, is_leaf, saved):
    """Each module once (a shared one under its first path): in eval mode, its parameters
    and buffers swapped for meta tensors (a tensor held under two names stays one; a model
    on the meta device keeps its own), its forward wrapped in its scope (a leaf's made
    metadata-only where ``_fast`` can). All written straight into the module's dictionaries,
    what was there noted in ``saved``: Module.__setattr__'s checks and torch.func's
    swapping cost more, and global hooks would send every call down Module's slow path."""
    import torch
    seen, metas = set(), {}
    for path, m in module.named_modules(remove_duplicate=False):
        if id(m) in seen:
            continue
        seen.add(id(m))
        saved.append((m.__dict__, "training", m.training))
        m.__dict__["training"] = False
        for store in (m._parameters, m._buffers):
            for k, t in list(store.items()):
                if t is None:
                    continue
                meta = metas.get(id(t))
                if meta is None:
                    meta = metas[id(t)] = t if t.is_meta else torch.empty_like(t, device="meta")
                    rec.state[id(meta)] = f"{path}.{k}" if path else k
                    rec.nodes[id(meta)] = (meta, None)  # kept alive; its node made when read
                if meta is not t:
                    saved.append((store, k, t))
                    store[k] = meta
        if not path:  # the root is traced, never a leaf
            continue
        own = m.__dict__.get("forward", _ABSENT)
        leaf = is_leaf(m)
        fast = _fast(m) if leaf and own is _ABSENT else None
        saved.append((m.__dict__, "forward", own))
        m.__dict__["forward"] = rec.scoped(m, path, m.forward, leaf, fast)


def record(module, example_shape, is_leaf) -> Traced:
    """Run ``module`` on a meta tensor of ``example_shape`` (batch first, as it takes it),
    with meta copies of its parameters and buffers (a model on the meta device runs as it
    is), and return the recorded graph. ``is_leaf(m)``: read this module as a whole."""
    import torch

    rec = _Recorder(module, is_leaf)
    x = torch.empty(example_shape, device="meta")
    inp = rec.graph.create_node("placeholder", "x", name="x")
    inp.meta["tensor_meta"] = Shape(x.shape)
    rec.nodes[id(x)] = (x, inp)
    saved = []  # (a dict of a module's, its key, the value to put back)
    try:
        _prepare(module, rec, is_leaf, saved)
        whole, dispatch = _modes(rec)
        with torch.no_grad(), whole, dispatch:
            result = module(x)
    finally:
        for store, key, value in reversed(saved):
            if value is _ABSENT:
                store.pop(key, None)
            else:
                store[key] = value
    outputs = [rec.node_of(t) for t in flat([result]) if isinstance(t, torch.Tensor)]
    rec.graph.output(tuple(outputs))
    return Traced(rec.graph, module)

