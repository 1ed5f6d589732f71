"""What the PyTorch importer reads of a traced node: its operator's name, its module's
path, its arguments as a message shows them, a tensor at a module path."""

from __future__ import annotations

import operator

from .torch_trace import op_name


def _tensor(root, target):
    """The parameter or buffer at a module path."""
    module, _, name = target.rpartition(".")
    return getattr(root.get_submodule(module), name)


def _brief(node) -> str:
    """A node's arguments as a message shows them: tensors by their shapes."""
    def show(a):
        meta = getattr(a, "meta", None)
        if meta is not None:
            shape = meta.get("tensor_meta")
            return "x".join(map(str, shape.shape)) if shape is not None else a.name
        if isinstance(a, (list, tuple)):
            return "[" + ", ".join(show(v) for v in a) + "]"
        return repr(a)
    return "(" + ", ".join(show(a) for a in node.args)[:160] + ")"


_PRODUCTS = {"aten.bmm", "aten.baddbmm", "aten.matmul", "aten.mm", "aten.addmm", "aten.einsum"}


def _own_name(node):
    """A module's path names its statement; an operator's comes from its module later."""
    return node.target if node.op == "call_module" else None


def _target_name(node) -> str:
    """'aten.convolution' for an ATen operator (any overload), 'getitem' for a part of a
    split's result."""
    if node.target is operator.getitem:
        return "getitem"
    return f"aten.{op_name(node.target)}"


_VIEWS = ("aten.view", "aten._unsafe_view", "aten.reshape", "aten.clone", "aten.alias")


def _unview(n):
    while getattr(n, "op", None) == "call_function" and _target_name(n) in _VIEWS:
        n = n.args[0]
    return n
