"""An ONNX file as a cnncalc spec: the onnx package reads it and infers every tensor's
shape, constant subgraphs (a pad's sizes, a reshape's target) are folded with onnx's own
reference evaluator, and each operator maps to a statement. Layer names come from the
exporter's scopes (/layer1/conv1/Conv -> layer1.conv1). The file's weights stay out of the
spec; --weights-out saves them for 'cnncalc run --weights'."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..limits import MAX_FOREIGN_LAYERS, MAX_WEIGHTS
from ..layers import takes_activation
from ..layers.activations import named
from .graph import (Imported, Op, Unsupported, _safe_name, emit, foreign, fuse,
                    network_name, statement)
from .layout import Layout, axes_text, pad_text, side_padding


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _scope(node) -> str | None:
    """'/layer1/layer1.0/conv1/Conv' → 'layer1.0.conv1': PyTorch's exporter names a node by
    the modules it runs in, each its name in its parent, or (a container's child) the
    parent's name and its own ('/4/body/body.0/Conv' → '4.body.0')."""
    parts = [p for p in node.name.split("/") if p][:-1]
    path = last = ""
    for part in parts:
        if last and part.startswith(last + "."):
            path = path[:len(path) - len(last)] + part
        else:
            path = f"{path}.{part}" if path else part
        last = part
    return path or None


class _Onnx:
    def __init__(self, model, source, path=None, buf=None, stripped=None):
        import onnx
        self.source, self.path = source, path
        self.model = model
        try:
            inferred = onnx.shape_inference.infer_shapes(_light(model), data_prop=True)
        except Exception as e:  # noqa: BLE001 - onnx's own verdict on the file, said plainly
            raise CnnCalcError(f"{source}: the model is not valid ONNX: "
                               f"{str(e).splitlines()[0][:200]}") from None
        self.graph = inferred.graph
        # after shape inference: the fused nodes' shapes are known
        _fuse_erf_gelu(self.graph)
        _fuse_layernorm(self.graph)
        self.opset = list(model.opset_import)
        self.consts = _Consts((*model.graph.initializer, *self.graph.initializer), buf,
                              stripped)
        self.shapes = {}
        for vi in list(self.graph.value_info) + list(self.graph.input) + list(self.graph.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                         for d in dims)
        self.ids, self.layouts, self.ops, self.problems = {}, {}, [], []
        self.users = {}
        for node in self.graph.node:
            for i in node.input:
                self.users.setdefault(i, []).append(node)
        self.weights = {}  # layer op id -> [(role, array)]
        self.readers = {}  # a weight's initializer -> the first layer that reads it

    def fail(self, node, what):
        self.problems.append((node.name or node.output[0], what))

    def add(self, node, text, inputs, **kw):
        op = Op(node.output[0], text, [self.ids[i] for i in inputs], None,
                f"node {node.name or node.output[0]} ({node.op_type})", **kw)
        op.meta["scope"] = _scope(node)
        op.meta["node"] = node.name or node.output[0]
        parts = [p for p in node.name.split("/") if p][:-1]
        op.meta["where"] = "/".join(parts)
        if parts:  # the exporter numbers a module's repeated calls: 'act_1' is 'act' again
            import re
            op.meta["role"] = ("/".join(parts[:-1]), re.sub(r"_\d+$", "", parts[-1]))
        self.ops.append(op)
        for out in node.output:
            self.ids[out] = op.id
        return op

    def alias(self, node, x, layout=None):
        for out in node.output:
            self.ids[out] = self.ids[x]
            self.layouts[out] = layout or self.layouts[x]

    def fold(self, node) -> bool:
        """Evaluate a node whose inputs are all constants (onnx's reference evaluator)."""
        if not all(i == "" or i in self.consts for i in node.input):
            return False
        from onnx import helper
        from onnx.reference import ReferenceEvaluator
        feeds = {i: self.consts[i] for i in node.input if i}
        inputs = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                v.shape) for i, v in feeds.items()]
        outputs = [helper.make_tensor_value_info(o, 0, None) for o in node.output]
        model = helper.make_model(helper.make_graph([node], "fold", inputs, outputs),
                                  opset_imports=self.opset)
        try:
            values = ReferenceEvaluator(model).run(None, feeds)
        except Exception:  # an operator the evaluator lacks: the mapping decides
            return False
        for out, v in zip(node.output, values):
            self.consts[out] = v
        return True

    def run(self, input_name, layout):
        self.ids[input_name] = "input"
        self.layouts[input_name] = layout
        for node in self.graph.node:
            if node.op_type == "Constant":
                from onnx import numpy_helper
                self.consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
                continue
            if all(i == "" or i not in self.ids for i in node.input):
                if not self.fold(node):
                    self.fail(node, f"{node.op_type} on constants that cannot be folded")
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                self.fail(node, f"operator {node.op_type}")
                continue
            try:
                handler(self, node)
            except (IndexError, KeyError, ValueError, TypeError) as e:  # a form not foreseen
                self.fail(node, f"{node.op_type} in a form cnncalc cannot read "
                          f"({type(e).__name__}: {str(e)[:80]})")
        self.outputs = [self.ids[o.name] for o in self.graph.output if o.name in self.ids]
        return self.ops

    def shape(self, name):
        shape = self.shapes.get(name)
        if shape is None or None in shape:
            self.measure()
            shape = self.shapes.get(name)
        return shape

    def measure(self):
        """Shapes shape inference left open: run the model once (onnxruntime, or onnx's
        reference evaluator) and read every tensor's."""
        if getattr(self, "measured", False):
            return
        self.measured = True
        import numpy as np
        import onnx
        from onnx import helper
        for t in self.model.graph.initializer:  # the run reads every weight: each checked
            self.consts.get(t.name)
        model = onnx.ModelProto()
        if self.consts.stripped:  # read without its weights' data: the whole file now
            model = onnx.load(self.path)
        else:
            model.CopyFrom(self.model)
        types = {vi.name: vi.type.tensor_type.elem_type for vi in
                 list(self.graph.value_info) + list(self.graph.output)}
        names = [o for n in model.graph.node for o in n.output if types.get(o)]
        del model.graph.output[:]
        model.graph.output.extend(helper.make_tensor_value_info(n, types[n], None) for n in names)
        inp = self.input_info
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        feed = {inp.name: np.zeros(shape, np.float32)}
        try:
            try:
                import onnxruntime as ort
                options = ort.SessionOptions()
                options.log_severity_level = 4  # its notes are not the user's concern
                session = ort.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
                values = session.run(None, feed)
            except ImportError:
                from onnx.reference import ReferenceEvaluator
                values = ReferenceEvaluator(model).run(None, feed)
        except Exception as e:  # noqa: BLE001 - the runtime's verdict on the file
            raise CnnCalcError(f"{self.source}: the model does not run, so its shapes cannot "
                               f"be measured: {str(e).splitlines()[0][:200]}") from None
        for n, v in zip(names, values):
            self.shapes[n] = tuple(np.shape(v))

    def const(self, name):
        return self.consts.get(name)

    def share(self, op, name):
        """A weight an earlier layer read: this layer is 'shares ID' (counted once)."""
        first = self.readers.setdefault(name, op)
        if first is not op:
            op.meta["shares"] = first

    def weight(self, name):
        """A layer's weight: its shape now, its values when --weights-out asks (np.asarray):
        an import reads shapes, and copying 100 MB of weights was a third of its time."""
        t = self.consts.tensors.get(name)
        if t is None or dict.__contains__(self.consts, name):
            return self.consts.get(name)
        return _Weight(self.consts, name, tuple(t.dims))


def _inside(node, pad_op) -> bool:
    """A pad belongs to the layer after it when that layer runs in the pad's module (the
    exporter numbers a module's later calls: conv_1_1 holds the pad, conv_1/op_1 the conv)."""
    import re
    parts = [p for p in node.name.split("/") if p][:-1]
    where, pad = "/".join(parts), pad_op.meta["where"]
    parent = "/".join(parts[:-1])
    return where == pad or where.startswith(pad + "/") or parent == re.sub(r"_\d+$", "", pad)


def _conv(imp, node):
    x, w = node.input[0], node.input[1]
    a = _attrs(node)
    lay = imp.layouts[x]
    weight = imp.weight(w)
    if weight is None:
        imp.fail(node, "Conv whose weights are not constants")
        return
    rank = weight.ndim - 2
    kernel = lay.spec(tuple(weight.shape[2:]))
    stride = lay.spec(tuple(a.get("strides", (1,) * rank)))
    dilation = lay.spec(tuple(a.get("dilations", (1,) * rank)))
    pads = a.get("pads", (0,) * (2 * rank))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    per_axis = list(lay.spec(list(zip(pads[:rank], pads[rank:]))))
    group = a.get("group", 1)
    cin = lay.spatial(imp.shape(x))[1]
    x_in = x
    pad_op = next((op for op in imp.ops if op.id == imp.ids[x] and "pads" in op.meta), None)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        words = " same" if auto == "SAME_UPPER" else None
        if words is None:
            imp.fail(node, "auto_pad SAME_LOWER (the extra pixel before: Keras puts it after)")
            return
    elif pad_op is not None and not any(pads) and len(imp.users.get(x, [])) == 1 and \
            pad_op.meta["value"] == 0 and _inside(node, pad_op):
        words = side_padding(pad_op.meta["pads"], kernel, stride, dilation, pad_op.meta["sizes"])
        if words is not None:
            imp.ops.remove(pad_op)
            x_in = pad_op.meta["of"]
        else:
            words = ""
    elif all(b == e for b, e in per_axis):
        half = tuple((d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilation))
        p = tuple(b for b, _ in per_axis)
        words = "" if not any(p) else " pad half" if p == half and all(k % 2 for k in kernel) \
            else f" pad {axes_text(p)}"
    else:
        words = side_padding(per_axis, kernel, stride, dilation, lay.spatial(imp.shape(x))[0])
        if words is None:
            imp.fail(node, f"Conv with padding {per_axis} before and after")
            return
    filters = weight.shape[0]
    if group == cin and group > 1 and filters % cin == 0:
        text = f"dwconv {'x'.join(map(str, kernel))}" + (
            f" multiplier {filters // cin}" if filters != cin else "")
    else:
        text = f"conv {'x'.join(map(str, kernel))}x{filters}" + (
            f" groups {group}" if group != 1 else "")
    _windowed(imp, node, text + words, x_in, weight, stride, dilation, lay)
    imp.layouts[node.output[0]] = lay


def _windowed(imp, node, text, x, weight, stride, dilation, lay):
    """A Conv or ConvTranspose node's statement with its stride, dilation and bias, and its
    weights kept for --weights-out."""
    if any(s != 1 for s in stride):
        text += f" stride {axes_text(stride)}"
    if any(d != 1 for d in dilation):
        text += f" dilation {axes_text(dilation)}"
    if len(node.input) < 3 or not node.input[2]:
        text += " nobias"
    op = imp.add(node, text, [x])
    imp.share(op, node.input[1])
    imp.weights[op.id] = [("weight", weight)] + (
        [("bias", imp.const(node.input[2]))] if len(node.input) > 2 and node.input[2] else [])
    op.meta["picture"] = lay.picture  # the kernel's axes run as the tensor's do
    return op


def _conv_transpose(imp, node):
    x, w = node.input[0], node.input[1]
    a = _attrs(node)
    lay = imp.layouts[x]
    weight = imp.weight(w)
    rank = weight.ndim - 2
    kernel = lay.spec(tuple(weight.shape[2:]))
    stride = lay.spec(tuple(a.get("strides", (1,) * rank)))
    dilation = lay.spec(tuple(a.get("dilations", (1,) * rank)))
    pads = a.get("pads", (0,) * (2 * rank))
    extra = lay.spec(tuple(a.get("output_padding", (0,) * rank)))
    per_axis = list(lay.spec(list(zip(pads[:rank], pads[rank:]))))
    words = set()
    for k, s, d, (b, e), op in zip(kernel, stride, dilation, per_axis, extra):
        ke = d * (k - 1) + 1
        if b == e == 0 and op == max(s - ke, 0):
            words.add("")
        elif ke >= s and (b, e - op) == ((ke - s) // 2, ke - s - (ke - s) // 2):
            words.add(" same")
        else:
            imp.fail(node, f"ConvTranspose cropping {b} before and {e - op} after")
            return
    if len(words) > 1 or a.get("group", 1) != 1:
        imp.fail(node, "ConvTranspose with groups, or axes that differ in padding")
        return
    word = words.pop()
    text = f"deconv {'x'.join(map(str, kernel))}x{weight.shape[1]}{word}"
    op = _windowed(imp, node, text, x, weight, stride, dilation, lay)
    if not word:  # a Slice after it of Keras' 'same' crop makes it 'deconv ... same'
        crops = [(max(d * (k - 1) + 1 - s, 0) // 2, max(d * (k - 1) + 1 - s, 0)
                  - max(d * (k - 1) + 1 - s, 0) // 2) for k, s, d in zip(kernel, stride, dilation)]
        op.meta["cropped_same"] = crops if any(b or a for b, a in crops) else None
    imp.layouts[node.output[0]] = lay


def _gemm(imp, node):
    x = node.input[0]
    a = _attrs(node)
    w = imp.weight(node.input[1])
    if w is None or a.get("transA", 0):
        imp.fail(node, "Gemm whose weights are not constants, or transposed input")
        return
    if not a.get("transB", 0):
        w = w.T
    bias = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    op = imp.add(node, f"dense {w.shape[0]}" + ("" if bias is not None else " nobias"), [x])
    imp.share(op, node.input[1])
    imp.weights[op.id] = [("weight", w)] + ([("bias", bias)] if bias is not None else [])
    imp.layouts[node.output[0]] = imp.layouts[x]


def _matmul(imp, node):
    x, wname = node.input[:2]
    w = imp.weight(wname)
    lay = imp.layouts[x]
    if w is None or w.ndim != 2 or (lay.rank and lay.first):
        imp.fail(node, "MatMul that is not a dense layer on the channels")
        return
    users = imp.users.get(node.output[0], [])
    bias = None
    if len(users) == 1 and users[0].op_type == "Add":  # MatMul then Add: one dense layer
        other = [i for i in users[0].input if i != node.output[0]][0]
        bias = imp.const(other)
    op = imp.add(node, f"dense {w.shape[1]}" + ("" if bias is not None else " nobias"), [x])
    imp.share(op, wname)
    imp.weights[op.id] = [("weight", w.T)] + ([("bias", bias)] if bias is not None else [])
    imp.layouts[node.output[0]] = lay
    if bias is not None:
        imp.bias_of[users[0].name] = node.output[0]


def _batchnorm(imp, node):
    x = node.input[0]
    eps = float(f"{_attrs(node).get('epsilon', 1e-5):.6g}")  # ONNX's default; float32
    op = imp.add(node, statement("batchnorm", eps=eps), [x])
    imp.weights[op.id] = [(r, imp.weight(n)) for r, n in zip(
        ("weight", "bias", "running_mean", "running_var"), node.input[1:5])]
    imp.layouts[node.output[0]] = imp.layouts[x]


def _instancenorm(imp, node):
    """InstanceNormalization: its scale and bias are inputs always; the file's weights
    (initializers) are learnt ('affine'), Constant nodes (what PyTorch writes for an
    InstanceNorm without affine) are not."""
    x = node.input[0]
    eps = float(f"{_attrs(node).get('epsilon', 1e-5):.6g}")  # ONNX's default; float32
    scale, bias = (imp.weight(n) for n in node.input[1:3])
    if scale is None or bias is None:
        imp.fail(node, "InstanceNormalization whose scale and bias are not constants")
        return
    affine = all(n in imp.consts.tensors for n in node.input[1:3])
    op = imp.add(node, statement("instancenorm", affine=affine, eps=eps), [x])
    if affine:
        imp.weights[op.id] = [("weight", scale), ("bias", bias)]
    imp.layouts[node.output[0]] = imp.layouts[x]


def _simple(word):
    def handler(imp, node):
        x = node.input[0]
        text = word(imp, node) if callable(word) else word
        if text is None:
            return
        imp.add(node, text, [x])
        imp.layouts[node.output[0]] = imp.layouts[x]
    return handler


def _clip(imp, node):
    lo = imp.const(node.input[1]) if len(node.input) > 1 and node.input[1] else \
        _attrs(node).get("min")
    hi = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else \
        _attrs(node).get("max")
    if lo is not None and hi is not None and float(lo) == 0 and float(hi) == 6:
        return "relu6"
    imp.fail(node, f"Clip to [{lo}, {hi}]")
    return None


def _leaky(imp, node):
    slope = _attrs(node).get("alpha", 0.01)
    return "leakyrelu" if abs(slope - 0.2) < 1e-6 else f"leakyrelu slope {slope:.6g}"


def _hardsigmoid(imp, node):
    a = _attrs(node)
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        imp.fail(node, "HardSigmoid with Keras 2's 0.2 slope (cnncalc's is x / 6 + 0.5)")
        return None
    return "hardsigmoid"


def _softmax(imp, node):
    lay = imp.layouts[node.input[0]]
    axis = _attrs(node).get("axis", -1) % (lay.rank + 2)
    if axis != lay.channel_dim():
        imp.fail(node, f"Softmax over axis {axis}, not the channels")
        return None
    return "softmax"


def _gelu(imp, node):
    return "gelu" if _attrs(node).get("approximate", b"none") in (b"none", "none") else None


def _pool(kind):
    def handler(imp, node):
        x = node.input[0]
        lay = imp.layouts[x]
        a = _attrs(node)
        k = lay.spec(tuple(a["kernel_shape"]))
        rank = len(k)
        s = lay.spec(tuple(a.get("strides", (1,) * rank)))
        pads = a.get("pads", (0,) * (2 * rank))
        per_axis = list(lay.spec(list(zip(pads[:rank], pads[rank:]))))
        text = f"{kind} {axes_text(k)}" + (f" stride {axes_text(s)}" if s != k else "")
        x_in = x
        pad_op = next((op for op in imp.ops if op.id == imp.ids[x] and "pads" in op.meta), None)
        wanted = float("-inf") if kind == "maxpool" else 0
        if pad_op is not None and not any(pads) and pad_op.meta["value"] == wanted and \
                _inside(node, pad_op) and len(imp.users.get(x, [])) == 1:
            words = side_padding(pad_op.meta["pads"], k, s, (1,) * rank, pad_op.meta["sizes"])
            if words is not None:
                text += words
                imp.ops.remove(pad_op)
                x_in = pad_op.meta["of"]
        elif any(pads):
            if any(b != e for b, e in per_axis):
                words = side_padding(per_axis, k, s, (1,) * rank, lay.spatial(imp.shape(x))[0])
                if words is None:
                    imp.fail(node, f"{node.op_type} with padding {per_axis}")
                    return
                text += words
            else:
                text += f" pad {axes_text([b for b, _ in per_axis])}"
            if kind == "avgpool" and a.get("count_include_pad", 0):
                text += " countpad"
        if a.get("ceil_mode", 0):
            text += " ceil"
        op = imp.add(node, text, [x_in])
        op.meta["padded"] = x_in != x
        imp.layouts[node.output[0]] = lay
    return handler


def _global(word):
    def handler(imp, node):
        x = node.input[0]
        lay = imp.layouts[x]
        imp.add(node, f"adaptive{word[6:]} 1", [x])  # ONNX keeps 1x1: flatten follows
        imp.layouts[node.output[0]] = lay
    return handler


def _reduce(word):
    """ReduceMean or ReduceMax over the spatial axes: a global pool."""
    def handler(imp, node):
        _reduce_spatial(imp, node, word)
    return handler


def _reduce_spatial(imp, node, word):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = imp.const(node.input[1]).tolist()
    axes = sorted(v % (lay.rank + 2) for v in (axes or ()))
    spatial = list(range(2, 2 + lay.rank)) if lay.first else list(range(1, 1 + lay.rank))
    if axes != spatial:
        imp.fail(node, f"{node.op_type} over axes {axes}")
        return
    keep = a.get("keepdims", 1)
    imp.add(node, f"adaptive{word} 1" if keep else f"global{word}", [x])
    imp.layouts[node.output[0]] = lay if keep else Layout(True, False, 0)


def _merge(word):
    def handler(imp, node):
        if node.name in imp.bias_of:  # a dense layer's bias, already in it
            imp.alias(node, imp.bias_of[node.name])
            return
        tensors = [i for i in node.input if i in imp.ids]
        if word == "multiply" and len(tensors) == 2:  # x * sigmoid(x): silu, as exported
            ops = {op.id: op for op in imp.ops}
            for a, b in (tensors, tensors[::-1]):
                gate = ops.get(imp.ids[b])
                if gate is not None and gate.text == "sigmoid" and gate.inputs == [imp.ids[a]] \
                        and len(imp.users.get(b, [])) == 1:
                    gate.text = "silu"
                    imp.alias(node, b)
                    return
        if len(tensors) == 2:
            imp.add(node, word, tensors)
            lays = [imp.layouts[t] for t in tensors]
            imp.layouts[node.output[0]] = max(lays, key=lambda lay: lay.rank)
            return
        x = tensors[0]
        c = [i for i in node.input if i != x][0]
        value = imp.const(c)
        channels = imp.layouts[x].spatial(imp.shape(x))[1]
        if value is not None and value.size == 1 and word in ("multiply", "add") and \
                (channels != 1 or word == "add"):
            _scalar(imp, node, x, float(value.reshape(-1)[0]), word)
            return
        if word == "multiply" and value is not None and value.size == channels:
            op = imp.add(node, "layerscale", [x])
            imp.weights[op.id] = [("gamma", value.reshape(-1))]
            imp.layouts[node.output[0]] = imp.layouts[x]
            return
        imp.fail(node, f"{node.op_type} with a constant")
    return handler


def _scalar(imp, node, x, value, word):
    """x times a number, or plus one: 'rescale' (Keras' Rescaling, a constant gain); x * a
    then + b is one rescale."""
    import numpy as np
    value = float(str(np.float32(value)))  # the file's float32, as its shortest decimal
    if value == (1.0 if word == "multiply" else 0.0):  # x * 1, x + 0: x
        imp.alias(node, x)
        return
    scale, offset = (value, 0.0) if word == "multiply" else (1.0, value)
    if scale <= 0:
        imp.fail(node, f"Mul by {scale:g} (rescale takes a positive scale)")
        return
    before = next((op for op in imp.ops if op.id == imp.ids[x]), None)
    if before is not None and before.kind == "rescale" and offset and \
            before.meta.get("offset") == 0.0 and len(imp.users.get(x, [])) == 1:
        scale, x = before.meta["scale"], before.meta["of"]
        imp.ops.remove(before)
    op = imp.add(node, statement("rescale", scale=scale, offset=offset), [x])
    op.meta.update(scale=scale, offset=offset, of=x)
    imp.layouts[node.output[0]] = imp.layouts[x]


def _concat(imp, node):
    tensors = [i for i in node.input if i in imp.ids]
    lay = imp.layouts[tensors[0]]
    axis = _attrs(node)["axis"] % (lay.rank + 2)
    if axis != lay.channel_dim():
        imp.fail(node, f"Concat along axis {axis}, not the channels")
        return
    if len(tensors) == 1:  # torch.cat([x]): DenseNet's first layer
        imp.alias(node, tensors[0])
        return
    crop = False
    if len(tensors) == 2:
        second = next((op for op in imp.ops if op.id == imp.ids[tensors[1]]), None)
        if second is not None and second.kind == "crop" and second.meta.get("centre"):
            imp.ops.remove(second)
            tensors = [tensors[0], second.meta["of"]]
            crop = True
    op = imp.add(node, "concat", tensors)
    op.meta["crop"] = crop
    imp.layouts[node.output[0]] = lay


def _split(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    axis = a.get("axis", 0) % (lay.rank + 2)
    if axis != lay.channel_dim():
        imp.fail(node, f"Split along axis {axis}, not the channels")
        return
    sizes = a.get("split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        sizes = imp.const(node.input[1]).tolist()
    if sizes is None:
        c = lay.spatial(imp.shape(x))[1]
        sizes = [c // len(node.output)] * len(node.output)
    op = Op(node.output[0] + ":split", "split", [imp.ids[x]], sizes=list(sizes),
            source=f"node {node.name}")
    imp.ops.append(op)
    for i, out in enumerate(node.output):
        take = Op(out, "take", [op.id], index=i, source=f"node {node.name}")
        imp.ops.append(take)
        imp.ids[out] = out
        imp.layouts[out] = lay


def _flatten(imp, node):
    x = node.input[0]
    if _attrs(node).get("axis", 1) != 1:
        imp.fail(node, "Flatten from an axis other than 1")
        return
    lay = imp.layouts[x]
    if lay.rank == 0:
        imp.alias(node, x)
        return
    op = imp.add(node, "flatten", [x])
    if lay.first:  # (C, H, W) order: a dense layer after it reads its weights reordered
        op.meta["channels_first"] = tuple(imp.shape(x)[1:])
    imp.layouts[node.output[0]] = Layout(True, False, 0)


def _reshape(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    before, after = imp.shape(x), imp.shape(node.output[0])
    if after is None:
        target = imp.const(node.input[1])
        after = tuple(int(v) for v in target) if target is not None else None
    if after is None or before is None:
        imp.fail(node, "Reshape of unknown shape")
        return
    if len(after) == 2 and len(before) > 2:
        imp.add(node, "flatten", [x])
        imp.layouts[node.output[0]] = Layout(True, False, 0)
        return
    users = imp.users.get(node.output[0], [])
    if len(after) == len(before) + 1 and lay.first and len(users) == 1 and \
            users[0].op_type == "Transpose" and list(_attrs(users[0])["perm"])[:3] == [0, 2, 1]:
        imp.shuffle[users[0].output[0]] = (x, after[1])
        imp.alias(node, x)
        return
    if x in imp.shuffle:  # the end of a channel shuffle: view, transpose, view
        source, groups = imp.shuffle.pop(x)
        imp.add(node, f"shuffle {groups}", [source])
        imp.layouts[node.output[0]] = imp.layouts[source]
        return
    if len(after) < 2:
        imp.fail(node, f"Reshape of {before} to {after}, without a batch axis")
        return
    if not lay.first or lay.rank == 0:
        target = Layout(False, True, len(after) - 2)
        spatial, c = target.spatial(after)
        imp.add(node, f"reshape {'x'.join(map(str, (*spatial, c)))}", [x])
        imp.layouts[node.output[0]] = target
        return
    imp.fail(node, f"Reshape of a channels-first tensor {before} to {after}")


def _transpose(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    if node.output[0] in imp.shuffle:  # a channel shuffle's transpose
        imp.ids[node.output[0]] = imp.ids[x]
        imp.layouts[node.output[0]] = lay
        return
    from .layout import permuted
    new = permuted(lay, tuple(_attrs(node)["perm"]))
    if new is None:
        imp.fail(node, f"Transpose {tuple(_attrs(node)['perm'])}")
        return
    imp.alias(node, x, new)


def _pad(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = a.get("pads")
    if pads is None:
        pads = imp.const(node.input[1])
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(imp.const(node.input[2]))
    if pads is None:
        imp.fail(node, "Pad whose sizes are not constants")
        return
    pads = [int(v) for v in pads]
    n = len(pads) // 2
    if any(pads[:2]) or any(pads[n:n + 2]):
        imp.fail(node, "Pad of the batch or channel axis")
        return
    per_axis = list(lay.spec(list(zip(pads[2:n], pads[n + 2:]))))
    if mode == "reflect":
        word = "reflectpad"
    elif mode == "constant" and value in (0.0, float("-inf")):
        word = "zeropad"
    else:
        imp.fail(node, f"Pad in mode {mode} with {value}")
        return
    flat = []
    for b, e in reversed(list(zip(pads[2:n], pads[n + 2:]))):
        flat += [b, e]
    op = imp.add(node, f"{word} {pad_text(lay, flat)}", [x])
    op.meta.update(pads=per_axis, value=value, of=x, sizes=lay.spatial(imp.shape(x))[0],
                   scope=_scope(node))
    imp.layouts[node.output[0]] = lay


def _div(imp, node):
    x = node.input[0]
    op = next((o for o in imp.ops if o.id == imp.ids.get(x)), None)
    if op is not None and op.kind == "avgpool" and op.meta.get("padded") and \
            node.input[1] in imp.consts:  # cnncalc's average over real pixels only
        imp.alias(node, x)
        return
    imp.fail(node, "Div")


def _slice(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    shape = imp.shape(x)
    starts, ends = imp.const(node.input[1]), imp.const(node.input[2])
    axes = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else \
        range(len(starts))
    steps = imp.const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if steps is not None and any(int(s) != 1 for s in steps):
        imp.fail(node, "Slice with a step")
        return
    cuts = {int(a) % len(shape): (int(s), int(e)) for a, s, e in zip(axes, starts, ends)}
    c = lay.channel_dim()
    if list(cuts) == [c]:  # x[:, a:b]: 'slice N start S'
        n = shape[c]
        s, e = cuts[c]
        s, e = max(0, s if s >= 0 else n + s), min(n, e if e >= 0 else n + e)
        if e > s:
            imp.add(node, statement("slice", channels=e - s, start=s), [x])
            imp.layouts[node.output[0]] = lay
            return
    if not lay.first or any(a < 2 for a in cuts):
        imp.fail(node, "Slice of the batch or channels")
        return
    pairs = []
    for axis in range(2, len(shape)):
        n = shape[axis]
        s, e = cuts.get(axis, (0, n))
        s, e = max(0, s if s >= 0 else n + s), min(n, e if e >= 0 else n + e)
        pairs.append((s, n - e))
    pairs = list(lay.spec(pairs))
    src = next((o for o in imp.ops if o.id == imp.ids[x]), None)
    if src is not None and src.kind == "crop" and len(imp.users.get(x, [])) == 1:
        # the exporter slices one axis at a time: one crop, over both slices
        pairs = [(b1 + b2, a1 + a2) for (b1, a1), (b2, a2) in zip(src.meta["pairs"], pairs)]
        imp.ops.remove(src)
        x = src.meta["of"]
        src = next((o for o in imp.ops if o.id == imp.ids[x]), None)
    if src is not None and src.kind == "deconv" and src.meta.get("cropped_same") == pairs:
        src.text += " same"
        imp.alias(node, x)
        return
    text = "crop " + ("x".join(f"{b}x{a}" for b, a in pairs)
                      if any(b != a for b, a in pairs) else axes_text([b for b, _ in pairs]))
    op = imp.add(node, text, [x])
    op.meta.update(of=x, pairs=pairs, centre=all(b == (b + a) // 2 for b, a in pairs))
    imp.layouts[node.output[0]] = lay


def _shape(imp, node):
    """Shape of a tensor that flows: its sizes as a constant, an open batch as 1 (what
    reads it, a Resize to a size, takes the spatial sizes)."""
    shape = imp.shapes.get(node.input[0])
    if shape is None or any(n is None for n in shape[1:]):
        imp.fail(node, "Shape of a tensor whose sizes are not known")
        return
    import numpy as np
    imp.consts[node.output[0]] = np.array([1 if n is None else n for n in shape], np.int64)


def _resize(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    spatial = list((imp.shapes.get(x) or ())[2:])  # the batch may be open; these are not
    scales = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    sizes = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if (scales is None or len(scales) == 0) and sizes is not None:
        scales = [1, 1] + [s / n for s, n in zip(list(sizes)[2:], spatial)]
    ct = a.get("coordinate_transformation_mode", b"half_pixel")
    ct = ct.decode() if isinstance(ct, bytes) else ct
    if mode == "linear" and ct not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        imp.fail(node, f"Resize linear with {ct}")
        return
    corners = mode == "linear" and ct == "align_corners"
    if scales is None or any(float(v) != int(v) for v in scales):  # to a size
        out = list(sizes)[2:] if sizes is not None else \
            [int(n * f) for n, f in zip(spatial, list(scales)[2:])] if scales is not None \
            else None
        if out is None or mode not in ("nearest", "linear") or \
                any(not isinstance(n, int) for n in spatial):
            imp.fail(node, f"Resize ({mode}) to a size this reader cannot work out")
            return
        imp.add(node, statement("resize", size=tuple(lay.spec([int(n) for n in out])),
                                corners=corners,
                                mode="bilinear" if mode == "linear" else "nearest"), [x])
        imp.layouts[node.output[0]] = lay
        return
    factors = lay.spec([int(v) for v in scales[2:]])
    imp.add(node, f"upsample {axes_text(factors)}" + (" bilinear" if mode == "linear" else "")
            + (" aligncorners" if corners else ""), [x])
    imp.layouts[node.output[0]] = lay


def _depth_to_space(imp, node):
    a = _attrs(node)
    mode = a.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    lay = imp.layouts[node.input[0]]
    if mode != "CRD" or not lay.picture:
        imp.fail(node, f"DepthToSpace in {mode} mode (cnncalc's pixelshuffle is PyTorch's, CRD)")
        return
    imp.add(node, f"pixelshuffle {a['blocksize']}", [node.input[0]])
    imp.layouts[node.output[0]] = lay


def _prelu(imp, node):
    x = node.input[0]
    slope = imp.const(node.input[1])
    c = imp.layouts[x].spatial(imp.shape(x))[1]
    if slope is None or slope.size != c:
        imp.fail(node, "PRelu without one slope per channel")
        return
    op = imp.add(node, "prelu", [x])
    imp.weights[op.id] = [("weight", slope.reshape(-1))]
    imp.layouts[node.output[0]] = imp.layouts[x]


def _identity(imp, node):
    imp.alias(node, node.input[0])


def _unsqueeze(imp, node):
    """A flat gate given trailing axes of 1 to be broadcast over a map."""
    x = node.input[0]
    lay = imp.layouts[x]
    axes = _attrs(node).get("axes")
    if axes is None and len(node.input) > 1:
        axes = imp.const(node.input[1]).tolist()
    trailing = list(range(2 + lay.rank, 2 + lay.rank + len(axes)))
    if not (lay.first or lay.rank == 0) or sorted(a % (2 + lay.rank + len(axes)) for a in axes) \
            != trailing:
        imp.fail(node, f"Unsqueeze at {axes}")
        return
    imp.alias(node, x, Layout(True, True, lay.rank + len(axes)))


def _layernorm(imp, node):
    x = node.input[0]
    lay = imp.layouts[x]
    a = _attrs(node)
    if a.get("axis", -1) != -1 or (lay.rank and lay.first):
        imp.fail(node, "LayerNormalization not over the channels of a channels-last tensor")
        return
    op = imp.add(node, f"layernorm eps {a.get('epsilon', 1e-5):g}", [x])
    imp.weights[op.id] = [("weight", imp.const(node.input[1])), ("bias", imp.const(node.input[2]))]
    imp.layouts[node.output[0]] = lay


HANDLERS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batchnorm, "InstanceNormalization": _instancenorm,
    "Clip": _simple(_clip),
    **{op: _simple(word) for op, word in named("onnx").items()},
    "HardSigmoid": _simple(_hardsigmoid), "LeakyRelu": _simple(_leaky), "Gelu": _simple(_gelu),
    "Softmax": _simple(_softmax), "PRelu": _prelu,
    "MaxPool": _pool("maxpool"), "AveragePool": _pool("avgpool"),
    "GlobalAveragePool": _global("globalavgpool"), "GlobalMaxPool": _global("globalmaxpool"),
    "ReduceMean": _reduce("avgpool"), "ReduceMax": _reduce("maxpool"),
    "Add": _merge("add"), "Sum": _merge("add"),
    "Mul": _merge("multiply"), "Sub": _merge("subtract"), "Concat": _concat, "Split": _split, "Flatten": _flatten,
    "Reshape": _reshape, "Transpose": _transpose, "Pad": _pad, "Div": _div, "Slice": _slice,
    "Resize": _resize, "Upsample": _resize, "Shape": _shape, "DepthToSpace": _depth_to_space,
    "Dropout": _identity, "Identity": _identity, "LayerNormalization": _layernorm,
    "Unsqueeze": _unsqueeze,
}


class _Weight:
    """A weight not yet read: shape, ndim and .T as numpy's; values by np.asarray."""
    __slots__ = ("consts", "name", "shape", "transposed")

    def __init__(self, consts, name, shape, transposed=False):
        self.consts, self.name, self.shape, self.transposed = consts, name, shape, transposed

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def T(self):  # noqa: N802 - numpy's name
        return _Weight(self.consts, self.name, self.shape[::-1], not self.transposed)

    def __array__(self, dtype=None, copy=None):
        import numpy as np
        v = self.consts[self.name]
        v = v.T if self.transposed else v
        return np.asarray(v, dtype=dtype) if dtype is not None else v


class _Consts(dict):
    """Initializers as numpy arrays, each made when first read: importing shapes reads a
    few small ones; a weight's data is copied only when its values are asked for."""

    def __init__(self, tensors, buf=None, stripped=None):
        super().__init__()
        self.tensors = {t.name: t for t in tensors}
        self.buf, self.stripped = buf, stripped or {}  # data left in the file (onnx_file)

    def __missing__(self, name):
        if name not in self.tensors:
            raise KeyError(name)
        place = self.stripped.get(name)
        value = self[name] = _array(self.tensors[name],
                                    None if place is None else (self.buf, place))
        return value

    def __contains__(self, name):
        return dict.__contains__(self, name) or name in self.tensors

    def get(self, name, default=None):
        return self[name] if name in self else default


def _array(t, data=None):
    """A tensor's values, its data's length checked against its dims first; raw float
    data is viewed where it lies, read-only, not copied again. ``data``: (the file's memory
    map, (offset, length)) of a raw_data the file was read without (onnx_file)."""
    import sys
    from math import prod

    import numpy as np
    from onnx import numpy_helper
    if data is not None:
        buf, (offset, length) = data
        if length != prod(t.dims) * _ITEMSIZE.get(t.data_type, length + 1):
            raise CnnCalcError(f"initializer {t.name[:80]!r}: dims {list(t.dims)} need "
                               f"{prod(t.dims) * _ITEMSIZE.get(t.data_type, 0):,} bytes, its "
                               f"data has {length:,}")
        whole = type(t)()
        whole.CopyFrom(t)
        if t.data_type == 1:  # float32, as ONNX stores it (little-endian): viewed in the map
            return np.frombuffer(buf, "<f4", prod(t.dims), offset).reshape(tuple(t.dims))
        whole.raw_data = bytes(buf[offset:offset + length])
        t = whole
    raw = t.raw_data
    size = _ITEMSIZE.get(t.data_type)
    if size and t.HasField("raw_data") and len(raw) != prod(t.dims) * size:
        raise CnnCalcError(f"initializer {t.name[:80]!r}: dims {list(t.dims)} need "
                           f"{prod(t.dims) * size:,} bytes, its data has {len(raw):,}")
    if raw and t.data_type == 1 and sys.byteorder == "little" and not t.external_data:
        return np.frombuffer(raw, np.float32).reshape(tuple(t.dims))
    return numpy_helper.to_array(t)


SMALL = 64  # values: an initializer this small may be a shape that inference reads


def _light(model):
    """The model for shape inference: its nodes, inputs and outputs, and its small
    initializers; a large one (a weight) stands as an input of its type and dims, so that
    inference neither copies nor reads 100 MB of weights (ResNet-50: 320 → 40 ms)."""
    from math import prod

    import onnx
    from onnx import helper
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    src, g = model.graph, light.graph
    g.name = src.name
    for field in ("node", "input", "output", "value_info"):
        getattr(g, field).extend(getattr(src, field))
    listed = {i.name for i in src.input}
    for t in src.initializer:
        if prod(t.dims) <= SMALL:
            g.initializer.append(t)
        elif t.name not in listed:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    return light


@foreign("ONNX model")
def from_onnx(path, input: str | None = None, network: str | None = None,
              partial: bool = False, weights_out: str | None = None):
    """The spec of an ONNX file, and its summary; ``weights_out`` saves its weights as a
    safetensors file that 'cnncalc run --weights' reads."""
    try:
        import onnx
    except ImportError:
        raise CnnCalcError("importing ONNX needs the onnx package: pip install 'cnncalc[onnx]'") from None
    from pathlib import Path
    from ..specs import summarize

    from .onnx_file import read
    light = read(str(path))
    model, buf, stripped = light if light is not None else (None, None, None)
    try:
        model = model or onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - onnx's own verdict on the file, said plainly
        raise CnnCalcError(f"{path}: not an ONNX file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    graph = model.graph
    if len(graph.node) > MAX_FOREIGN_LAYERS:
        raise CnnCalcError(f"{path}: {len(graph.node):,} nodes, more than the "
                           f"{MAX_FOREIGN_LAYERS:,} cnncalc reads")
    _check_initializers(graph, path)
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise CnnCalcError(f"{path}: expected one input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    given = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if input:
        from ..language.expand import load
        spec = load(f"input {input}").input.shape
        *spatial, c = spec
        picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
        full = (1, c, *picture)
        for d, v in zip(dims, full):
            d.ClearField("dim_param")
            d.dim_value = v
        given = list(full)
    if any(v is None for v in given[1:]):
        raise CnnCalcError(f"{path}: the input's sizes are open ({given}); give them with "
                           "--input, e.g. 224x224x3")
    rank = len(given) - 2
    layout = Layout(True, True, rank)
    spatial, c = layout.spatial([1] + given[1:])
    imp = _Onnx(model, Path(path).name, str(path), buf, stripped)
    imp.bias_of, imp.shuffle, imp.input_info = {}, {}, inputs[0]
    ops = imp.run(inputs[0].name, layout)
    if imp.problems and not partial:
        raise Unsupported(imp.problems, Path(path).name)
    outputs = imp.outputs
    if imp.problems:
        first = imp.problems[0][0]
        ops = ops[:next((i for i, op in enumerate(ops) if op.id == first), len(ops))]
        outputs = [ops[-1].id] if ops else []
    _fuse_activations(ops, outputs)
    _names(ops, imp.weights)
    ops, outputs = fuse(ops, outputs)
    text = emit(ops, outputs, "x".join(map(str, (*spatial, c))), network or _network(path, graph))
    if imp.problems:
        text += (f"# import stopped at node {imp.problems[0][0]}: {imp.problems[0][1]} has no "
                 "cnncalc counterpart\n")
    summary = summarize(text)
    if weights_out:
        _save_weights(summary, ops, imp.weights, weights_out)
    return Imported(text, summary)


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


_ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}  # TensorProto types


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
        if s and op.kind not in ("take", "split"):
            count[s] = count.get(s, 0) + 1
    common = _common_prefix([s for s in count])
    for op in ops:
        s = op.meta.get("scope")
        if s and count.get(s) == 1 and op.kind not in ("take", "split"):
            op.name = _safe_name(s[len(common):] or None)  # nn.Sequential's '4.body'
        if op.name is None and op.id in weights:
            name = re.sub(r"[^\w.\-]", "_", op.meta["node"]).strip("_.-")
            op.name = name if name[:1].isalpha() else f"node_{name}"


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
    import numpy as np
    import torch
    from ..backends.modules import picture_weight
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
        for (role, value), key in zip(weights[op.id], keys):
            t = torch.tensor(np.asarray(value, dtype=np.float32))
            source = by_id.get(op.inputs[0]) if op.inputs else None
            if role == "weight" and op.kind == "dense" and source is not None and \
                    source.meta.get("channels_first"):
                c, *sp = source.meta["channels_first"]
                t = t.reshape(t.shape[0], c, *sp).movedim(1, -1).reshape(t.shape[0], -1)
            if op.meta.get("picture", True):  # a kernel of rows first: the module's order
                new[key] = picture_weight(t.reshape(picture_weight(own[key]).shape))
            else:
                new[key] = t.reshape(own[key].shape)
    lost = [by_id[i].source for i in weights if i in by_id and i not in placed]
    if lost:  # never a file of fresh random weights under the model's name
        raise CnnCalcError(f"cannot place the weights of {', '.join(lost[:3])} in the imported "
                           "spec's layers; no weights file written")
    net.load_state_dict(new)
    save(net, path)


def _order(key):
    for i, role in enumerate(("weight", "bias", "running_mean", "running_var", "gamma")):
        if key.endswith(role):
            return i
    return 9
