"""Rewrites of an ONNX graph before it is read: GELU written with Erf (before opset 20),
LayerNormalization decomposed (before opset 17), activations into the layer before."""

from __future__ import annotations

from ..layers import takes_activation


def _fuse_erf_gelu(graph):
    """GELU as exporters write it before opset 20 (x * 0.5 * (1 + erf(x / sqrt 2)), in any
    order of the two products): one Gelu node, so that the operator table reads it."""
    import math

    from onnx import helper, numpy_helper
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer
              if all(d == 1 for d in t.dims)}  # (only scalars are compared)
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute:
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    users, made = {}, {}
    for n in graph.node:
        made[n.output[0]] = n
        for i in n.input:
            users.setdefault(i, []).append(n)

    def const(name, value):
        v = consts.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) < 1e-3

    def only_user(name, op):
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    drop, add = set(), []
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        div = made.get(erf.input[0])
        if div is None or div.op_type not in ("Div", "Mul") or not (
                const(div.input[1], math.sqrt(2)) if div.op_type == "Div"
                else const(div.input[1], 1 / math.sqrt(2))):
            continue
        x = div.input[0]
        plus = only_user(erf.output[0], "Add")
        if plus is None or not const(next(i for i in plus.input if i != erf.output[0]), 1.0):
            continue
        first = only_user(plus.output[0], "Mul")
        if first is None:
            continue
        other = next(i for i in first.input if i != plus.output[0])
        if other == x:  # x * (1 + erf) then * 0.5
            last = only_user(first.output[0], "Mul")
            if last is None or not const(next(i for i in last.input if i != first.output[0]), 0.5):
                continue
            chain = [div, erf, plus, first, last]
        else:  # (x * 0.5) * (1 + erf)
            half = made.get(other)
            if half is None or half.op_type != "Mul" or x not in half.input or \
                    not const(next(i for i in half.input if i != x), 0.5):
                continue
            last, chain = first, [div, erf, plus, half, first]
        drop.update(id(n) for n in chain)
        add.append((id(last), helper.make_node("Gelu", [x], [last.output[0]],
                                               name=last.name or erf.name)))
    if not add:
        return
    placed = dict(add)
    nodes = [placed.get(id(n), n) for n in graph.node
             if id(n) not in drop or id(n) in placed]
    del graph.node[:]
    graph.node.extend(nodes)


def _fuse_layernorm(graph):
    """LayerNormalization as exporters write it before opset 17: the mean, the centred
    values, their mean square, epsilon, the root, the division, then the scale and the
    offset; one LayerNormalization node over the last axis."""
    from onnx import helper, numpy_helper
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer
              if all(d == 1 for d in t.dims)}  # (only scalars are compared)
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute:
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    users = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)

    def one(name, op):
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    ranks = {vi.name: len(vi.type.tensor_type.shape.dim)
             for vi in [*graph.value_info, *graph.input, *graph.output]}

    def last_axis(node):
        axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
        return axes == [[-1]] or axes == [[ranks.get(node.input[0], 0) - 1]]

    drop, add = set(), []
    for mean in [n for n in graph.node if n.op_type == "ReduceMean" and last_axis(n)]:
        x = mean.input[0]
        sub = next((u for u in users.get(mean.output[0], []) if u.op_type == "Sub"
                    and list(u.input) == [x, mean.output[0]]), None)
        if sub is None:
            continue
        d = sub.output[0]
        square = next((u for u in users.get(d, []) if u.op_type == "Pow"), None)
        div = next((u for u in users.get(d, []) if u.op_type == "Div"), None)
        if square is None or div is None or len(users.get(d, [])) != 2:
            continue
        var = one(square.output[0], "ReduceMean")
        plus = var and one(var.output[0], "Add")
        root = plus and one(plus.output[0], "Sqrt")
        scale = one(div.output[0], "Mul")
        shift = scale and one(scale.output[0], "Add")
        if not (var and last_axis(var) and plus and root and div.input[1] == root.output[0]
                and scale and shift):
            continue
        eps = next((consts[i] for i in plus.input if i in consts), None)
        # the scale and offset are the products' other inputs (weights, wherever stored)
        gamma = next((i for i in scale.input if i != div.output[0]), None)
        beta = next((i for i in shift.input if i != scale.output[0]), None)
        if eps is None or gamma is None or beta is None:
            continue
        chain = [mean, sub, square, var, plus, root, div, scale, shift]
        drop.update(id(n) for n in chain)
        add.append((id(shift), helper.make_node(
            "LayerNormalization", [x, gamma, beta], [shift.output[0]], axis=-1,
            epsilon=float(eps.reshape(-1)[0]), name=shift.name or mean.name)))
    if add:
        placed = dict(add)
        nodes = [placed.get(id(n), n) for n in graph.node if id(n) not in drop or id(n) in placed]
        del graph.node[:]
        graph.node.extend(nodes)


def _fuse_activations(ops, outputs):
    """An activation the exporter scoped as X/act right after X/op is the layer's own
    (cnncalc's 'conv 3x3x64 relu'): one statement again."""
    by_id = {op.id: op for op in ops}
    users = {}
    for op in ops:
        for i in op.inputs:
            users.setdefault(i, []).append(op)
    for op in list(ops):
        role = op.meta.get("role")
        if not role or role[1] != "act" or len(op.inputs) != 1 or " " in op.text:
            continue
        owner = by_id.get(op.inputs[0])
        if owner is None or owner.meta.get("role") != (role[0], "op") or \
                not takes_activation(owner.kind) or len(users.get(owner.id, ())) != 1 or \
                owner.id in outputs:
            continue
        owner.text += f" {op.text}"
        ops.remove(op)
        for user in users.get(op.id, ()):
            user.inputs = [owner.id if i == op.id else i for i in user.inputs]
        outputs[:] = [owner.id if o == op.id else o for o in outputs]

