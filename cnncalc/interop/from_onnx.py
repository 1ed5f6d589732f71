"""An ONNX file as a cnncalc spec: the onnx package reads it and infers every tensor's
shape, constant subgraphs (a pad's sizes, a reshape's target) are folded with onnx's own
reference evaluator, and each operator maps to a statement. Layer names come from the
exporter's scopes (/layer1/conv1/Conv -> layer1.conv1). The file's weights stay out of the
spec; --weights-out saves them for 'cnncalc run --weights'."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..layers.dense import Dense
from ..limits import MAX_FOREIGN_LAYERS, MAX_WEIGHTS
from .emit import emit
from .graph import SPLIT, TAKE, Imported, Unsupported, foreign, fuse, network_name, safe_name
from .layout import Layout
from .onnx_importer import _Onnx
from .rewrite import rewrite, settled, unfolded


@foreign("ONNX model")
def from_onnx(path, input: str | None = None, network: str | None = None,
              partial: bool = False, weights_out: str | None = None):
    """The spec of an ONNX file, and its summary; ``weights_out`` saves its weights as a
    safetensors file that 'cnncalc run --weights' reads."""
    from pathlib import Path

    from ..specs import summarize
    model, buf, stripped = _model(path)
    graph = model.graph
    inputs = _one_input(graph, path)
    given = _input_sizes(inputs[0], input, path)
    rank = len(given) - 2
    layout = Layout(True, True, rank)
    spatial, c = layout.spatial([1] + given[1:])
    imp = _Onnx(model, Path(path).name, str(path), buf, stripped)
    imp.bias_of, imp.input_info = {}, inputs[0]
    ops = imp.run(inputs[0].name, layout)
    if imp.problems and not partial:  # with the views no pass reads, which come first
        order = {n.name or n.output[0]: i for i, n in enumerate(imp.graph.node)}
        left = unfolded(rewrite(list(ops), list(imp.outputs))[0])
        raise Unsupported(sorted(imp.problems + left, key=lambda p: order.get(p[0], 0)),
                          Path(path).name)
    outputs = imp.outputs
    if imp.problems:
        first = imp.problems[0][0]
        ops = ops[:next((i for i, op in enumerate(ops) if op.id == first), len(ops))]
        outputs = [ops[-1].id] if ops else []
    ops, outputs = settled(ops, outputs, partial, imp.problems, Path(path).name)
    _names(ops, imp.weights)
    ops, outputs = fuse(ops, outputs)
    text = emit(ops, outputs, "x".join(map(str, (*spatial, c))), network or _network(path, graph))
    if imp.problems:
        text += (f"# import stopped at node {imp.problems[0][0]}: {imp.problems[0][1]} has no "
                 "cnncalc counterpart\n")
    else:
        text += _unread(graph)
    summary = summarize(text)
    if weights_out:
        _save_weights(summary, ops, imp.weights, weights_out)
    return Imported(text, summary)


def _unread(graph) -> str:
    """A comment naming the nodes with weights whose results no output reads (a branch an
    exporter left behind): the file holds their weights, the spec, which is what computes
    the outputs, does not."""
    from math import prod
    dead, read = _dead(graph)
    dims = {t.name: list(t.dims) for t in graph.initializer}
    weights = {i: prod(dims[i]) for node in dead for i in node.input
               if i in dims and i not in read}
    if not weights:
        return ""
    names = list(dict.fromkeys(n.name or n.output[0] for n in dead
                               if any(i in weights for i in n.input)))
    return (f"# not in this spec: {sum(weights.values()):,} weight values of nodes whose results "
            f"no output reads ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})\n")


def _dead(graph):
    """The nodes no output of the graph depends on, and the names the others read."""
    made = {o: node for node in graph.node for o in node.output}
    live, todo = set(), [o.name for o in graph.output]
    while todo:
        node = made.get(todo.pop())
        if node is not None and id(node) not in live:
            live.add(id(node))
            todo += list(node.input)
    read = {i for node in graph.node if id(node) in live for i in node.input}
    return [node for node in graph.node if id(node) not in live], read


def _model(path):
    """The model, its file's memory map and what was left in it unread (the weights' data),
    or the model as onnx reads it whole (external data, or a file the walk does not expect)."""
    try:
        import onnx
    except ImportError:
        raise CnnCalcError("importing ONNX needs the onnx package: pip install 'cnncalc[onnx]'") from None
    from .onnx_file import read
    light = read(str(path))
    model, buf, stripped = light if light is not None else (None, None, None)
    try:
        model = model or onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - onnx's own verdict on the file, said plainly
        raise CnnCalcError(f"{path}: not an ONNX file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if len(model.graph.node) > MAX_FOREIGN_LAYERS:
        raise CnnCalcError(f"{path}: {len(model.graph.node):,} nodes, more than the "
                           f"{MAX_FOREIGN_LAYERS:,} cnncalc reads")
    _check_initializers(model.graph, path)
    return model, buf, stripped


def _one_input(graph, path) -> list:
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise CnnCalcError(f"{path}: expected one input, found {len(inputs)}")
    return inputs


def _input_sizes(info, input, path) -> list:
    """The input's sizes (N, C, *spatial, picture order): the file's, or ``input``'s
    ('224x224x3', written into the file's input for shape inference)."""
    dims = info.type.tensor_type.shape.dim
    given = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if input:
        from ..language.expand import load
        *spatial, c = load(f"input {input}").input.shape
        picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
        given = [1, c, *picture]
        for d, v in zip(dims, given):
            d.ClearField("dim_param")
            d.dim_value = v
    if any(v is None for v in given[1:]):
        raise CnnCalcError(f"{path}: the input's sizes are open ({given}); give them with "
                           "--input, e.g. 224x224x3")
    return given


def _check_initializers(graph, path):
    """Every weight's dims against the limits before any is read: a file claiming 10^12
    values is refused, not allocated. (Its data's length is checked where it is read,
    ``_array``: an import reads dims alone, and upb copies a bytes field to measure it.)"""
    from math import prod
    for t in graph.initializer:
        dims = list(t.dims)
        count = prod(dims)
        if any(d < 0 for d in dims) or count > MAX_WEIGHTS:
            raise CnnCalcError(f"initializer {t.name[:80]!r}: dims {dims} ({count:,} values) are "
                               f"not a weight cnncalc reads (at most {MAX_WEIGHTS:,} values)",
                               file=str(path))


def _network(path, graph) -> str:
    from pathlib import Path
    return network_name(graph.name if graph.name and graph.name not in
                        ("main_graph", "torch_jit") else Path(path).stem)


def _names(ops, weights):
    """Layer names from the exporter's scopes, where each scope holds one layer; a layer
    with weights and no scope (a file from another exporter) takes its node's name, which
    places its weights in the file that 'weights_out' writes."""
    import re
    count = {}
    for op in ops:
        s = op.meta.get("scope")
        if s and op.kind not in (TAKE, SPLIT):
            count[s] = count.get(s, 0) + 1
    common = _common_prefix([s for s in count])
    for op in ops:
        s = op.meta.get("scope")
        if s and count.get(s) == 1 and op.kind not in (TAKE, SPLIT):
            op.name = safe_name(s[len(common):] or None)  # nn.Sequential's '4.body'
        if op.name is None and op.id in weights:
            name = re.sub(r"[^\w.\-]", "_", op.meta["node"]).strip("_.-")
            op.name = name if name[:1].isalpha() else f"node_{name}"


def _common_prefix(scopes) -> str:
    """A wrapper's attribute every scope starts with ('net.'): not part of the names."""
    if not scopes:
        return ""
    first = scopes[0].split(".")[0] + "."
    return first if all(s.startswith(first) for s in scopes) else ""


def _save_weights(summary, ops, weights, path):
    """The file's weights under the imported spec's layer names, as the backend names them:
    kernels in its order, and a dense layer after a channels-first flatten with its columns
    in cnncalc's flatten order (rows, columns, channels)."""
    from ..backends.torch import Net
    from ..backends.weights import save
    net = Net(summary)
    own = net.state_dict()
    by_name = {op.name: op for op in ops if op.name}
    by_id = {op.id: op for op in ops}
    new, placed = dict(own), set()
    for row in summary.rows:
        op = by_name.get(row.name)
        if op is None or op.id not in weights:
            continue
        placed.add(op.id)
        keys = sorted((k for k in own if k.startswith(f"{row.name}.") and "num_batches" not in k),
                      key=_order)
        source = by_id.get(op.inputs[0]) if op.inputs else None
        for (role, value), key in zip(weights[op.id], keys):
            new[key] = _placed(op, role, value, own[key], source)
    lost = [by_id[i].source for i in weights if i in by_id and i not in placed]
    if lost:  # never a file of fresh random weights under the model's name
        raise CnnCalcError(f"cannot place the weights of {', '.join(lost[:3])} in the imported "
                           "spec's layers; no weights file written")
    net.load_state_dict(new)
    save(net, path)


def _placed(op, role, value, like, source):
    """One of the file's weights as the module holds it (``like``): a kernel in its axes'
    order; a dense layer's after a channels-first flatten, its columns in cnncalc's flatten
    order (rows, columns, channels)."""
    import numpy as np
    import torch

    from ..backends.modules import picture_weight
    t = torch.tensor(np.asarray(value, dtype=np.float32))
    if role == "weight" and op.kind == Dense.keyword and source is not None and \
            source.meta.get("channels_first"):
        c, *sp = source.meta["channels_first"]
        t = t.reshape(t.shape[0], c, *sp).movedim(1, -1).reshape(t.shape[0], -1)
    if op.meta.get("picture", True):  # a kernel of rows first: the module's order
        return picture_weight(t.reshape(picture_weight(like).shape))
    return t.reshape(like.shape)


def _order(key):
    for i, role in enumerate(("weight", "bias", "running_mean", "running_var", "gamma")):
        if key.endswith(role):
            return i
    return 9

