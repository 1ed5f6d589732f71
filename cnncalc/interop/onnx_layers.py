"""ONNX operators that are layers with weights or windows: Conv, ConvTranspose, Gemm and
MatMul, the norms, pools, activations."""

from __future__ import annotations

from .graph import statement
from .layout import Layout, axes_text, side_padding
from .onnx_nodes import _attrs, _inside


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
    padded = _conv_padding(imp, node, x, lay, a, rank, kernel, stride, dilation)
    if padded is None:
        return
    words, x_in = padded
    group, filters = a.get("group", 1), weight.shape[0]
    cin = lay.spatial(imp.shape(x))[1]
    if group == cin and group > 1 and filters % cin == 0:
        text = f"dwconv {'x'.join(map(str, kernel))}" + (
            f" multiplier {filters // cin}" if filters != cin else "")
    else:
        text = f"conv {'x'.join(map(str, kernel))}x{filters}" + (
            f" groups {group}" if group != 1 else "")
    _windowed(imp, node, text + words, x_in, weight, stride, dilation, lay)
    imp.layouts[node.output[0]] = lay


def _conv_padding(imp, node, x, lay, a, rank, kernel, stride, dilation):
    """A Conv's padding words, and the tensor it reads (a Pad before it, in its module, is
    folded in); None where cnncalc has no words for it (said)."""
    pads = a.get("pads", (0,) * (2 * rank))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    per_axis = list(lay.spec(list(zip(pads[:rank], pads[rank:]))))
    if auto == "SAME_UPPER":
        return " same", x
    if auto == "SAME_LOWER":
        imp.fail(node, "auto_pad SAME_LOWER (the extra pixel before: Keras puts it after)")
        return None
    if not any(pads):
        folded = _folded_pad(imp, node, x, kernel, stride, dilation)
        if folded is not None:
            return folded
    if all(b == e for b, e in per_axis):
        half = tuple((d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilation))
        p = tuple(b for b, _ in per_axis)
        return ("" if not any(p) else " pad half" if p == half and all(k % 2 for k in kernel)
                else f" pad {axes_text(p)}"), x
    words = side_padding(per_axis, kernel, stride, dilation, lay.spatial(imp.shape(x))[0])
    if words is None:
        imp.fail(node, f"Conv with padding {per_axis} before and after")
        return None
    return words, x


def _folded_pad(imp, node, x, kernel, stride, dilation):
    """A zero Pad before the window, read by it alone in its module: the window's own
    padding (words, and the Pad's input); ("", x) where it has no words; None: no Pad."""
    pad_op = next((op for op in imp.ops if op.id == imp.ids[x] and "pads" in op.meta), None)
    if pad_op is None or len(imp.users.get(x, [])) != 1 or pad_op.meta["value"] != 0 or \
            not _inside(node, pad_op):
        return None
    words = side_padding(pad_op.meta["pads"], kernel, stride, dilation, pad_op.meta["sizes"])
    if words is None:
        return "", x
    imp.ops.remove(pad_op)
    return words, pad_op.meta["of"]


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

