"""Rewrites of an ONNX graph before it is read: GELU written with Erf (before opset 20),
LayerNormalization decomposed (before opset 17), Mish as x * tanh(softplus(x)) (before
opset 18), PyTorch's GroupNorm as an InstanceNormalization of the groups, timm's global
response normalisation (ConvNeXt V2) as ReduceL2 and the arithmetic after it."""

from __future__ import annotations



class _Nodes:
    """An ONNX graph's nodes as a pattern matcher reads them: each tensor's maker and
    users, its scalar constants, the ranks inference gave."""

    def __init__(self, graph):
        from onnx import numpy_helper
        self.graph = graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer
                       if all(d == 1 for d in t.dims)}  # (only scalars are compared)
        self.users, self.made = {}, {}
        for n in graph.node:
            if n.op_type == "Constant" and n.attribute:
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
            self.made[n.output[0]] = n
            for i in n.input:
                self.users.setdefault(i, []).append(n)
        self.ranks = {vi.name: len(vi.type.tensor_type.shape.dim)
                      for vi in [*graph.value_info, *graph.input, *graph.output]}

    def const(self, name, value) -> bool:
        v = self.consts.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) < 1e-3

    def one(self, name, op):
        """The only user of tensor ``name``, where it is an ``op`` node."""
        found = self.users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def user(self, name, op):
        """A user of ``name`` that is an ``op`` node (one of several)."""
        return next((u for u in self.users.get(name, []) if u.op_type == op), None)

    def last_axis(self, node) -> bool:
        axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
        return axes == [[-1]] or axes == [[self.ranks.get(node.input[0], 0) - 1]]

    def replace(self, found):
        """Each (chain of nodes, the node that stands for it) swapped in at the chain's
        last node."""
        if not found:
            return
        drop = {id(n) for chain, _ in found for n in chain}
        placed = {id(chain[-1]): node for chain, node in found}
        nodes = [placed.get(id(n), n) for n in self.graph.node
                 if id(n) not in drop or id(n) in placed]
        del self.graph.node[:]
        self.graph.node.extend(nodes)


def _other(node, name):
    """The input of a two-input node that is not ``name``."""
    return next((i for i in node.input if i != name), None)


def _fuse_erf_gelu(graph):
    """GELU as exporters write it before opset 20 (x * 0.5 * (1 + erf(x / sqrt 2)), in any
    order of the two products): one Gelu node, so that the operator table reads it."""
    g = _Nodes(graph)
    g.replace([m for m in (_gelu_at(g, n) for n in graph.node if n.op_type == "Erf") if m])


def _gelu_at(g, erf):
    import math

    from onnx import helper
    div = g.made.get(erf.input[0])
    if div is None or div.op_type not in ("Div", "Mul") or not (
            g.const(div.input[1], math.sqrt(2)) if div.op_type == "Div"
            else g.const(div.input[1], 1 / math.sqrt(2))):
        return None
    x = div.input[0]
    plus = g.one(erf.output[0], "Add")
    if plus is None or not g.const(_other(plus, erf.output[0]), 1.0):
        return None
    first = g.one(plus.output[0], "Mul")
    if first is None:
        return None
    other = _other(first, plus.output[0])
    if other == x:  # x * (1 + erf) then * 0.5
        last = g.one(first.output[0], "Mul")
        if last is None or not g.const(_other(last, first.output[0]), 0.5):
            return None
        chain = [div, erf, plus, first, last]
    else:  # (x * 0.5) * (1 + erf)
        half = g.made.get(other)
        if half is None or half.op_type != "Mul" or x not in half.input or \
                not g.const(_other(half, x), 0.5):
            return None
        chain = [div, erf, plus, half, first]
    last = chain[-1]
    return chain, helper.make_node("Gelu", [x], [last.output[0]], name=last.name or erf.name)


def _fuse_softplus_mish(graph):
    """Mish as exporters write it before opset 18, x * tanh(softplus(x)) (the product in
    either order): one Mish node."""
    from onnx import helper
    g = _Nodes(graph)
    found = []
    for soft in (n for n in graph.node if n.op_type == "Softplus"):
        x = soft.input[0]
        tanh = g.one(soft.output[0], "Tanh")
        mul = tanh and g.one(tanh.output[0], "Mul")
        if mul and _other(mul, tanh.output[0]) == x:
            found.append(([soft, tanh, mul], helper.make_node(
                "Mish", [x], [mul.output[0]], name=mul.name or soft.name)))
    g.replace(found)


def _fuse_layernorm(graph):
    """LayerNormalization as exporters write it before opset 17: the mean, the centred
    values, their mean square, epsilon, the root, the division, then the scale and the
    offset; one LayerNormalization node over the last axis."""
    g = _Nodes(graph)
    g.replace([m for m in (_layernorm_at(g, n) for n in graph.node
                           if n.op_type == "ReduceMean" and g.last_axis(n)) if m])


def _layernorm_at(g, mean):
    from onnx import helper
    x = mean.input[0]
    sub = next((u for u in g.users.get(mean.output[0], []) if u.op_type == "Sub"
                and list(u.input) == [x, mean.output[0]]), None)
    if sub is None:
        return None
    d = sub.output[0]
    square, div = g.user(d, "Pow"), g.user(d, "Div")
    if square is None or div is None or len(g.users.get(d, [])) != 2:
        return None
    rest = _normalised(g, square, div)
    if rest is None:
        return None
    var, plus, root, scale, shift = rest
    eps = next((g.consts[i] for i in plus.input if i in g.consts), None)
    # the scale and offset are the products' other inputs (weights, wherever stored)
    gamma, beta = _other(scale, div.output[0]), _other(shift, scale.output[0])
    if eps is None or gamma is None or beta is None:
        return None
    return [mean, sub, square, var, plus, root, div, scale, shift], helper.make_node(
        "LayerNormalization", [x, gamma, beta], [shift.output[0]], axis=-1,
        epsilon=float(eps.reshape(-1)[0]), name=shift.name or mean.name)


def _normalised(g, square, div):
    """From the centred values' square and their division: the variance, plus epsilon,
    its root (the division's divisor), then the scale and the offset; or None."""
    var = g.one(square.output[0], "ReduceMean")
    plus = var and g.one(var.output[0], "Add")
    root = plus and g.one(plus.output[0], "Sqrt")
    scale = g.one(div.output[0], "Mul")
    shift = scale and g.one(scale.output[0], "Add")
    if var and g.last_axis(var) and plus and root and div.input[1] == root.output[0] \
            and scale and shift:
        return var, plus, root, scale, shift
    return None


def _fuse_groupnorm(graph):
    """GroupNorm as PyTorch exports it: Reshape to (N, G, -1), InstanceNormalization with
    scale 1 and bias 0, Reshape back, Mul by the scale and Add the offset per channel: one
    GroupNormalization node, its scale and offset per channel (as opset 21 has them)."""
    g = _Nodes(graph)
    g.replace([m for m in (_groupnorm_at(g, n) for n in graph.node
                           if n.op_type == "InstanceNormalization") if m])


def _groupnorm_at(g, norm):
    from onnx import helper
    first = g.made.get(norm.input[0])
    groups = _grouped(g, first, norm)
    back = groups and g.one(norm.output[0], "Reshape")
    size = back and g.made.get(back.input[1])  # back to x's own shape
    if not back or size is None or size.op_type != "Shape" or \
            list(size.input) != [first.input[0]]:
        return None
    scale = g.one(back.output[0], "Mul")
    shift = scale and g.one(scale.output[0], "Add")
    if not shift:
        return None
    eps = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
    return [first, norm, back, scale, shift], helper.make_node(
        "GroupNormalization", [first.input[0], _other(scale, back.output[0]),
                               _other(shift, scale.output[0])], [shift.output[0]],
        num_groups=groups, epsilon=float(f"{eps:.6g}"), name=shift.name or norm.name)


def _grouped(g, first, norm):
    """G, where ``first`` reshapes to (N, G, -1) for an InstanceNormalization that only
    normalises (scale 1, bias 0); else None."""
    shape = g.consts.get(first.input[1]) if first is not None and \
        first.op_type == "Reshape" else None
    ones, zeros = (g.consts.get(i) for i in norm.input[1:3])
    if shape is None or shape.size != 3 or list(shape.reshape(-1))[::2] != [0, -1] or \
            ones is None or zeros is None or (ones != 1).any() or (zeros != 0).any():
        return None
    return int(shape.reshape(-1)[1])


def _fuse_grn(graph):
    """Global response normalisation as exporters write timm's: g = ReduceL2 over the map,
    n = g / (ReduceMean of g over the channels + eps), then x * n times the scale (times 1,
    addcmul's value), plus the offset, plus x: one node, 'GlobalResponseNormalization'
    (cnncalc's name: ONNX has none), its axes kept for the reader to check against the
    tensor's layout."""
    g = _Nodes(graph)
    g.replace([m for m in (_grn_at(g, n) for n in graph.node if n.op_type == "ReduceL2")
               if m])


def _axes(g, node):
    """A reduction's axes: its attribute (before opset 18) or its constant input."""
    found = [list(a.ints) for a in node.attribute if a.name == "axes"]
    if found:
        return found[0]
    v = g.consts.get(node.input[1]) if len(node.input) > 1 else None
    return None if v is None else [int(a) for a in v.reshape(-1)]


def _grn_at(g, l2):
    from onnx import helper
    x, out = l2.input[0], l2.output[0]
    mean, div = g.user(out, "ReduceMean"), g.user(out, "Div")
    plus = mean and g.one(mean.output[0], "Add")
    eps = plus and g.consts.get(_other(plus, mean.output[0]))
    if not (div and plus and eps is not None and eps.size == 1 and
            list(div.input) == [out, plus.output[0]] and len(g.users.get(out, [])) == 2):
        return None
    prod = g.one(div.output[0], "Mul")
    scale = prod and x in prod.input and g.one(prod.output[0], "Mul")
    if not scale:
        return None
    chain, last = [l2, mean, plus, div, prod, scale], scale
    once = g.one(scale.output[0], "Mul")  # addcmul's value, 1
    if once is not None and g.const(_other(once, scale.output[0]), 1.0):
        chain, last = chain + [once], once
    shift = g.one(last.output[0], "Add")
    skip = shift and g.one(shift.output[0], "Add")
    if not skip or _other(skip, shift.output[0]) != x:
        return None
    return chain + [shift, skip], helper.make_node(
        "GlobalResponseNormalization",
        [x, _other(scale, prod.output[0]), _other(shift, last.output[0])], [skip.output[0]],
        epsilon=float(f"{float(eps.reshape(-1)[0]):.6g}"), spatial=_axes(g, l2) or [],
        channel=_axes(g, mean) or [], name=skip.name or l2.name)
