"""The form of a recorded PyTorch graph: torch.fx's (nodes with op, target, args, kwargs,
name, meta and users), light enough to make a thousand of in a few milliseconds."""


from __future__ import annotations


class Shape:
    """A node's tensor metadata: what the importer reads of ShapeProp's TensorMetadata."""
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)


class Node:
    """One recorded call: 'placeholder' (the input), 'get_attr' (a parameter, buffer or
    constant), 'call_module' (a leaf module), 'call_function' (an ATen operator, or a part
    of a result: operator.getitem) or 'output'."""
    __slots__ = ("op", "target", "args", "kwargs", "name", "meta", "users")

    def __init__(self, op, target, args, kwargs, name):
        self.op, self.target, self.args, self.kwargs, self.name = op, target, args, kwargs, name
        self.meta, self.users = {}, {}

    def __repr__(self):
        return self.name


class Graph:
    """Nodes in the order they ran, with unique names."""

    def __init__(self):
        self.nodes, self._taken = [], {}

    def create_node(self, op, target, args=(), kwargs=None, name="node"):
        n = self._taken.get(name, 0)
        unique = name if not n else f"{name}_{n}"
        while unique in self._taken:  # 'split_1' may be a split's part and a second split
            n += 1
            unique = f"{name}_{n}"
        self._taken[name] = n + 1
        self._taken.setdefault(unique, 1)
        node = Node(op, target, args, kwargs or {}, unique)
        for a in flat(args) + flat((kwargs or {}).values()):
            if isinstance(a, Node):
                a.users[node] = None
        self.nodes.append(node)
        return node

    def output(self, values):
        return self.create_node("output", "output", (values,), name="output")


def flat(values) -> list:
    """The items of nested lists, tuples and dicts (an operator's arguments, a model's
    outputs), in order."""
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += flat(v)
        elif isinstance(v, dict):
            out += flat(v.values())
        else:
            out.append(v)
    return out


class Traced:
    """The recorded graph, and the module whose paths its call_module and get_attr nodes
    name."""

    def __init__(self, graph, root):
        self.graph, self.root = graph, root

    def named_modules(self):
        return self.root.named_modules()

