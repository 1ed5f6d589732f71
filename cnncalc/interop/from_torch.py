"""A PyTorch module as a cnncalc spec: the module runs on meta tensors (``torch_trace``), so
its own Python decides what runs, and every ATen operator outside torch.nn's layers is
seen with its shapes; each node maps to a statement (``graph.Op``) and ``graph.emit``
writes the spec. Module paths become layer names (layer1.0.conv1). Anything without a
counterpart is listed, with its node and operator, and nothing is guessed."""

from __future__ import annotations

import operator

from ..errors import CnnCalcError
from ..layers import KINDS
from ..layers.base import FROZEN, SHARES
from ..layers.activations import named
from .graph import Imported, Op, Unsupported, emit, fuse, statement
from .torch_trace import flat as _flat, op_name


class Layout:
    """Where a tensor keeps its channels and in which order its spatial axes run: PyTorch
    models hold (N, C, H, W), 'picture' order; cnncalc's own module runs (N, C, W, H)."""
    __slots__ = ("first", "picture", "rank")

    def __init__(self, first, picture, rank):
        self.first, self.picture, self.rank = first, picture, rank

    def spec(self, sizes):
        """Per-axis sizes of this tensor's order → the spec's order (width first)."""
        sizes = tuple(sizes)
        if self.picture and len(sizes) >= 2:
            return (*sizes[:-2], sizes[-1], sizes[-2])
        return sizes

    def spatial(self, shape):
        """The spatial sizes (spec order) and channels of a tensor's shape (batch first)."""
        if self.rank == 0:
            return (), shape[1]
        if self.first:
            return self.spec(shape[2:]), shape[1]
        return self.spec(shape[1:-1]), shape[-1]

    def channel_dim(self):
        return 1 if self.first or self.rank == 0 else self.rank + 1


def _axes(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _per_axis(v, rank):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank


class _Importer:
    def __init__(self, gm, layout, source):
        self.gm, self.source = gm, source
        self.modules = dict(gm.named_modules())
        self.layouts = {}   # node name -> Layout (None for non-tensors)
        self.ops = []
        self.ids = {}       # node name -> op id standing for its tensor
        self.problems = []
        self.input_layout = layout
        self.consts = set()  # nodes computed without the input (buffers, shapes, constants)
        self.skip = set()    # nodes folded into another
        self.shuffles = {}   # a channel shuffle's transpose -> (its input, groups)
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
        for op in self.ops:
            m = op.meta.get("module")
            if m and not op.name:
                count[m] = count.get(m, 0) + 1
        owned = [op.name for op in self.ops if op.name]
        for op in self.ops:
            m = op.meta.get("module")
            # beside its modules' own only when it reads the module's weights (timm's
            # BatchNormAct2d: 'bn' and its 'bn.act'); a block's add stays unnamed, so that
            # the block is the module's scope
            if m and not op.name and count[m] == 1 and m not in owned and (
                    op.meta.get("weighted") or
                    not any(n.startswith(m + ".") for n in owned)):
                op.name = m

    def ops_by_id(self):
        return {op.id: op for op in self.ops}

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
        else:
            name = _target_name(node)
            handler = FUNCTIONS.get(name)
            if handler is None:
                self.fail(node, f"operator {name[5:]}")
                return
            split = next((a for a in _flat(node.args) if getattr(a, "name", None) in
                          self.radix), None)
            flat = next((a for a in _flat(node.args) if getattr(a, "name", None) in
                         self.merged), None)
            if flat is not None and name not in _MERGED_AWARE:
                self.fail(node, f"operator {name[5:]} on {flat.name}, a map with its spatial "
                                f"axes merged {_brief(node)}")
                return
            if split is not None and name not in _SPLIT_AWARE:
                self.fail(node, f"operator {name[5:]} on {split.name}, channels split in "
                                f"{self.radix[split.name]} along a new axis {_brief(node)}")
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


# --- module handlers -----------------------------------------------------------------------------

def _conv(imp, node, m, grouped=False):
    x = node.args[0]
    lay = imp.layout_of(x)
    rank = len(m.kernel_size)
    kernel = lay.spec(m.kernel_size)
    dilation = lay.spec(_per_axis(m.dilation, rank))
    stride = lay.spec(_per_axis(m.stride, rank))
    if getattr(m, "padding_mode", "zeros") != "zeros":
        imp.fail(node, f"padding_mode {m.padding_mode!r} (cnncalc pads with zeros; write "
                       "reflectpad before the conv)")
        return
    if isinstance(m.padding, str):
        if m.padding == "same" and all(s == 1 for s in stride):
            padding = " same"
        elif m.padding == "valid":
            padding = ""
        else:
            imp.fail(node, f"padding {m.padding!r} with stride {stride}")
            return
    else:
        padding = _padding_words(lay.spec(_per_axis(m.padding, rank)), kernel, dilation)
    pad = imp.pad_before(x, node)
    if pad is not None and not padding and pad.meta["value"] == 0:
        words = _side_padding(pad.meta["pads"], kernel, stride, dilation, pad.meta["sizes"])
        if words is not None:  # F.pad then the conv: Keras' 'same' with a stride, say
            padding, x = words, pad.meta["of"]
            imp.drop(pad)
    cin = lay.spatial(imp.shape(node.args[0]))[1]
    if m.groups == cin and m.groups > 1 and m.out_channels % cin == 0 and not grouped:
        text = f"dwconv {'x'.join(map(str, kernel))}"
        if m.out_channels != cin:
            text += f" multiplier {m.out_channels // cin}"
    else:
        text = f"conv {'x'.join(map(str, kernel))}x{m.out_channels}"
    text += padding
    if any(s != 1 for s in stride):
        text += f" stride {_axes(stride)}"
    if any(d != 1 for d in dilation):
        text += f" dilation {_axes(dilation)}"
    if m.groups != 1 and not text.startswith("dwconv"):
        text += f" groups {m.groups}"
    if m.bias is None:
        text += " nobias"
    op = imp.add(node, text, [x], _own_name(node))
    op.meta["cin"] = cin
    imp.layouts[node.name] = lay


def _padding_words(p, kernel, dilation) -> str:
    if all(v == 0 for v in p):
        return ""
    half = tuple((d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilation))
    if p == half and all(k % 2 for k in kernel):
        return " pad half"
    return f" pad {_axes(p)}"


def _side_padding(pads, kernel, stride, dilation, sizes):
    """Padding per side (before, after) per axis folded from an F.pad: Keras' 'same' when it
    is exactly that at these sizes, 'causal' for a sequence padded before only, else
    symmetric 'pad P'; None if none of these."""
    from ..layers.conv import window_axis
    if len(pads) == 1 and pads[0] == (dilation[0] * (kernel[0] - 1), 0) and pads[0][0]:
        return " causal"
    same = []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        _, b, a, _ = window_axis(n, k, s, d, "same", False, "", None)
        same.append((b, a))
    if list(pads) == same:
        return " same"
    if all(b == a for b, a in pads):
        return f" pad {_axes([b for b, _ in pads])}" if any(b for b, _ in pads) else ""
    return None


def _deconv(imp, node, m):
    x = node.args[0]
    lay = imp.layout_of(x)
    rank = len(m.kernel_size)
    kernel = lay.spec(m.kernel_size)
    stride = lay.spec(_per_axis(m.stride, rank))
    dilation = lay.spec(_per_axis(m.dilation, rank))
    pad = lay.spec(_per_axis(m.padding, rank))
    extra = lay.spec(_per_axis(m.output_padding, rank))
    if m.groups != 1:
        imp.fail(node, "ConvTranspose with groups")
        return
    words = []
    for k, s, d, p, op in zip(kernel, stride, dilation, pad, extra):
        ke = d * (k - 1) + 1
        if p == 0 and op == max(s - ke, 0):
            words.append("valid")
        elif ke >= s and (p, p - op) == ((ke - s) // 2, ke - s - (ke - s) // 2):
            words.append("same")  # Keras crops (k - s) // 2 before, the rest after
        else:
            imp.fail(node, f"ConvTranspose with padding {p} and output_padding {op}: it crops "
                           f"{p} before and {p - op} after, which neither 'valid' nor 'same' "
                           "(Keras' Conv2DTranspose) does")
            return
    if len(set(words)) > 1:
        imp.fail(node, "ConvTranspose whose axes differ in padding")
        return
    text = f"deconv {'x'.join(map(str, kernel))}x{m.out_channels}"
    text += " same" if words[0] == "same" else ""
    if any(s != 1 for s in stride):
        text += f" stride {_axes(stride)}"
    if any(d != 1 for d in dilation):
        text += f" dilation {_axes(dilation)}"
    if m.bias is None:
        text += " nobias"
    op = imp.add(node, text, [x], _own_name(node))
    if words[0] == "valid":  # a crop after it of Keras' 'same' makes it 'deconv ... same'
        crops = [(max(d * (k - 1) + 1 - s, 0) // 2, max(d * (k - 1) + 1 - s, 0)
                  - max(d * (k - 1) + 1 - s, 0) // 2)
                 for k, s, d in zip(kernel, stride, dilation)]
        op.meta["cropped_same"] = crops if any(b or a for b, a in crops) else None
    imp.layouts[node.name] = lay


def _simple(text_of):
    """A module or function that keeps the layout and reads one tensor."""
    def handler(imp, node, m=None):
        x = node.args[0]
        text = text_of(imp, node, m)
        if text is None:
            return
        imp.add(node, text, [x], _own_name(node))
        imp.layouts[node.name] = imp.layout_of(x)
    return handler


def _act(word):
    return _simple(lambda imp, node, m: word)


def _leaky(imp, node, m):
    slope = m.negative_slope if m is not None else node.kwargs.get(
        "negative_slope", node.args[1] if len(node.args) > 1 else 0.01)
    return "leakyrelu" if abs(slope - 0.2) < 1e-9 else f"leakyrelu slope {slope:g}"


def _softmax(imp, node, m):
    dim = m.dim if m is not None else node.kwargs.get("dim", node.args[1] if len(node.args) > 1
                                                      else None)
    lay = imp.layout_of(node.args[0])
    if dim is None or dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"softmax over dimension {dim}, not the channels")
        return None
    return "softmax"


def _batchnorm(imp, node, m):
    if not m.affine or not m.track_running_stats:
        imp.fail(node, "BatchNorm without affine or running statistics")
        return None
    return statement("batchnorm", eps=m.eps)


def _pool(kind):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        rank = lay.rank
        k = lay.spec(_per_axis(m.kernel_size, rank))
        s = lay.spec(_per_axis(m.stride if m.stride else m.kernel_size, rank))
        p = lay.spec(_per_axis(m.padding, rank))
        if kind == "maxpool" and any(d != 1 for d in _per_axis(m.dilation, rank)):
            imp.fail(node, "MaxPool with dilation")
            return None
        out = f"{kind} {_axes(k)}"
        if s != k:
            out += f" stride {_axes(s)}"
        if any(p):
            out += f" pad {_axes(p)}"
            if kind == "avgpool" and m.count_include_pad:
                out += " countpad"
        if m.ceil_mode:
            out += " ceil"
        return out
    return _simple(text)


def _adaptive(kind):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        size = m.output_size
        if size is None or (isinstance(size, tuple) and None in size):
            imp.fail(node, "adaptive pooling that keeps an axis (None)")
            return None
        return f"{kind} {_axes(lay.spec(_per_axis(size, lay.rank)))}"
    return _simple(text)


def _linear(imp, node, m):
    x = node.args[0]
    lay = imp.layout_of(x)
    if lay.rank and lay.first:
        imp.fail(node, "Linear on the last spatial axis of a channels-first map")
        return
    text = f"dense {m.out_features}" + ("" if m.bias is not None else " nobias")
    imp.add(node, text, [x], _own_name(node))
    imp.layouts[node.name] = lay


def _flatten_to_vector(imp, node, x):
    imp.add(node, "flatten", [x], _own_name(node))
    imp.layouts[node.name] = Layout(True, False, 0)


def _flatten_module(imp, node, m):
    lay = imp.layout_of(node.args[0])
    if m.start_dim != 1 or m.end_dim != -1:
        imp.fail(node, f"Flatten({m.start_dim}, {m.end_dim})")
        return
    if lay.rank == 0:
        imp.alias(node, node.args[0])
        return
    _flatten_to_vector(imp, node, node.args[0])


def _dropout(imp, node, m):
    return f"dropout {m.p:g}" if m.p < 1 else None


def _upsample(imp, node, m):
    lay = imp.layout_of(node.args[0])
    f = m.scale_factor
    if m.mode not in ("nearest", "linear", "bilinear", "trilinear"):
        imp.fail(node, f"Upsample mode {m.mode!r}")
        return None
    if f is None or any(float(v) != int(v) for v in _per_axis(f, lay.rank)):  # to a size
        return statement("resize", size=tuple(lay.spatial(imp.shape(node))[0]),
                         mode="nearest" if m.mode == "nearest" else "bilinear",
                         corners=bool(m.align_corners))
    return _upsample_text(lay.spec([int(v) for v in _per_axis(f, lay.rank)]), m.mode != "nearest",
                          m.align_corners)


def _upsample_text(factors, linear, corners):
    return f"upsample {_axes(factors)}" + (" bilinear" if linear else "") + \
        (" aligncorners" if linear and corners else "")


def _pad_module(word):
    def text(imp, node, m):
        lay = imp.layout_of(node.args[0])
        if word == "zeropad" and getattr(m, "value", 0) != 0:
            imp.fail(node, f"padding with {m.value}, not zeros")
            return None
        return f"{word} {_pad_text(lay, m.padding)}"
    return _simple(text)


def _pad_text(lay, padding):
    """F.pad's order (last axis first: left, right, top, bottom) → before and after per axis
    in the spec's order."""
    pads = list(_per_axis(padding, 2 * lay.rank))
    per_axis = [(pads[2 * i], pads[2 * i + 1]) for i in range(lay.rank)][::-1]  # first axis first
    per_axis = list(lay.spec(per_axis)) if lay.rank >= 2 else per_axis
    if all(b == a for b, a in per_axis):
        return _axes([b for b, _ in per_axis])
    return "x".join(f"{b}x{a}" for b, a in per_axis)


def _layernorm(imp, node, m):
    lay = imp.layout_of(node.args[0])
    shape = imp.shape(node.args[0])
    if tuple(m.normalized_shape) != (shape[-1],) or (lay.rank and lay.first):
        imp.fail(node, f"LayerNorm over {tuple(m.normalized_shape)} (cnncalc's layernorm is over "
                       "the channels, on a channels-last tensor)")
        return None
    if not m.elementwise_affine:
        imp.fail(node, "LayerNorm without its scale and offset")
        return None
    return f"layernorm eps {m.eps:g}"


def _groupnorm(imp, node, m):
    return f"groupnorm {m.num_groups} eps {m.eps:g}" if m.affine else None


def _instancenorm(imp, node, m):
    return statement("instancenorm", affine=m.affine, eps=m.eps)


def _prelu(imp, node, m):
    c = imp.layout_of(node.args[0]).spatial(imp.shape(node.args[0]))[1]
    if m.num_parameters != c:
        imp.fail(node, f"PReLU with {m.num_parameters} slope(s) for {c} channels")
        return None
    return "prelu"


def _identity(imp, node, m=None):
    imp.alias(node, node.args[0])


def _shuffle(imp, node, m):
    return f"shuffle {m.groups}"


MODULES = {
    **{f"Conv{d}d": _conv for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": _deconv for d in (1, 2, 3)},
    **{f"BatchNorm{d}d": _simple(_batchnorm) for d in (1, 2, 3)},
    **{f"MaxPool{d}d": _pool("maxpool") for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _pool("avgpool") for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": _adaptive("adaptiveavgpool") for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": _adaptive("adaptivemaxpool") for d in (1, 2, 3)},
    **{f"InstanceNorm{d}d": _simple(_instancenorm) for d in (1, 2, 3)},
    **{f"Dropout{d}": _simple(_dropout) for d in ("", "1d", "2d", "3d")},
    **{f"ZeroPad{d}d": _pad_module("zeropad") for d in (1, 2, 3)},
    **{f"ConstantPad{d}d": _pad_module("zeropad") for d in (1, 2, 3)},
    **{f"ReflectionPad{d}d": _pad_module("reflectpad") for d in (1, 2, 3)},
    **{cls: _act(word) for cls, word in named("torch").items()},
    "LeakyReLU": _simple(_leaky), "Softmax": _simple(_softmax),
    "PReLU": _simple(_prelu), "Identity": _identity, "Linear": _linear,
    "Flatten": _flatten_module, "Upsample": _simple(_upsample),
    "PixelShuffle": _simple(lambda imp, node, m: f"pixelshuffle {m.upscale_factor}"),
    "PixelUnshuffle": _simple(lambda imp, node, m: f"pixelunshuffle {m.downscale_factor}"),
    "ChannelShuffle": _simple(_shuffle), "LayerNorm": _simple(_layernorm),
    "GroupNorm": _simple(_groupnorm),
    "StochasticDepth": _simple(lambda imp, node, m: f"droppath {m.p:g}"),
    "DropPath": _simple(lambda imp, node, m: f"droppath {getattr(m, 'p', getattr(m, 'drop_prob', 0)):g}"),
}


# --- function and method handlers ------------------------------------------------------------------

def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _merge(word):
    def handler(imp, node):
        tensors = [a for a in node.args[:2] if hasattr(a, "op")]
        flowing = [a for a in tensors if a.name in imp.ids]
        split = {imp.radix.get(a.name) for a in flowing}
        if split != {None} and (len(split) > 1 or len(flowing) < 2):
            imp.fail(node, f"{word} of a tensor split in {max(s or 0 for s in split)} along a "
                           "new axis with one that is not split so")
            return
        if len(flowing) == 2:
            lay = imp.layout_of(flowing[0])
            lay2 = imp.layout_of(flowing[1])
            main = lay if lay.rank >= lay2.rank else lay2
            imp.add(node, word, flowing)
            imp.layouts[node.name] = main
            if split != {None}:  # paths times their weights: still split
                imp.radix[node.name] = split.pop()
            return
        x = flowing[0]
        other = next((a for a in node.args[:2] if a is not x), None)
        if other == (0 if word == "add" else 1) and not hasattr(other, "op"):
            imp.alias(node, x)  # x + 0 where a branch is absent (MobileOne, FastViT)
            return
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            _scalar(imp, node, x, other if word == "multiply" else 1.0,
                    other if word == "add" else 0.0)
            return
        if hasattr(other, "op") and _learnt_scalar(imp, other):
            _affine(imp, node, x, other, word)
            return
        if word == "multiply" and hasattr(other, "op") and other.name in imp.consts:
            c = imp.layout_of(x).spatial(imp.shape(x))[1]
            shape = imp.shape(other)
            if shape is not None and int(_prod(shape)) == c:  # a scale per channel
                # named after its parameter (ConvNeXt's features.1.0.layer_scale)
                imp.add(node, "layerscale", [x],
                        other.target if other.op == "get_attr" and other.target != "_constant"
                        and not imp.shared(node, other.target) else None)
                imp.layouts[node.name] = imp.layout_of(x)
                return
        imp.fail(node, f"{'adds' if word == 'add' else 'multiplies by'} a constant")
    return handler


def _learnt_scalar(imp, node) -> bool:
    """A parameter of one value (HGNetV2's scale and bias, NFNet's skip gain)."""
    if getattr(node, "op", None) != "get_attr" or node.target == "_constant":
        return False
    shape = imp.shape(node)
    return shape is not None and _prod(shape) == 1 and \
        node.target in dict(imp.gm.root.named_parameters())


def _affine(imp, node, x, param, word):
    """x times a learnt scalar ('affine noshift'), then plus one: 'affine'."""
    if imp.shared(node, param.target):
        return
    before = imp.ops_by_id().get(imp.ids[x.name])
    if word == "add" and before is not None and before.text == "affine noshift" and \
            len(x.users) == 1:
        before.text = "affine"
        imp.alias(node, x)
        return
    if word == "add":
        imp.fail(node, "adds a learnt scalar without a scale before it")
        return
    imp.add(node, "affine noshift", [x], param.target)  # named after its scale
    imp.layouts[node.name] = imp.layout_of(x)


def _prod(v):
    out = 1
    for n in v:
        out *= n
    return out


def _cat(imp, node):
    tensors = [a for a in _flat(_arg(node, 0, "tensors", ())) if hasattr(a, "op")]
    dim = _arg(node, 1, "dim", 0)
    lay = imp.layout_of(tensors[0])
    if dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"torch.cat along dimension {dim}, not the channels")
        return
    if len(tensors) == 1:
        imp.alias(node, tensors[0])
        return
    crop = False
    if len(tensors) == 2:  # cnncalc's 'concat ID crop': the second centre-cropped to the first
        second = imp.ops_by_id().get(imp.ids[tensors[1].name])
        if second is not None and second.kind == "crop" and second.meta.get("centre"):
            tensors = [tensors[0], second.meta["of"]]
            imp.ops.remove(second)
            crop = True
    op = imp.add(node, "concat", tensors, meta={"crop": crop})
    op.meta["crop"] = crop
    imp.layouts[node.name] = lay


def _activation(word):
    def handler(imp, node):
        x = node.args[0]
        text = _leaky(imp, node, None) if word == "leakyrelu" else word
        if word == "softmax" and x.name in imp.radix:  # across the paths: SKNet's attention
            if node.args[1] % (imp.layout_of(x).rank + 3) != 1:
                imp.fail(node, f"a softmax over dimension {node.args[1]} of a split tensor")
                return
            imp.add(node, statement("rsoftmax", radix=imp.radix[x.name]), [x])
            imp.layouts[node.name] = imp.layout_of(x)
            imp.radix[node.name] = imp.radix[x.name]
            return
        if word == "softmax" and _softmax(imp, node, None) is None:
            return
        if word == "gelu" and node.kwargs.get("approximate", "none") != "none":
            imp.fail(node, "GELU with the tanh approximation (cnncalc's gelu is the exact one)")
            return
        imp.add(node, text, [x])
        imp.layouts[node.name] = imp.layout_of(x)
    return handler


def _global(word):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        dims = _arg(node, 1, "dim")
        keep = _arg(node, 2, "keepdim", False)
        dims = tuple(d % (lay.rank + 2) for d in _per_axis(dims, 1)) if dims is not None else ()
        spatial = tuple(range(2, 2 + lay.rank)) if lay.first else tuple(range(1, 1 + lay.rank))
        if tuple(sorted(dims)) != spatial:
            imp.fail(node, f"{word} over dimensions {dims}, not the spatial ones")
            return
        imp.add(node, f"adaptive{word[6:]} 1" if keep else word, [x])
        imp.layouts[node.name] = lay if keep else Layout(True, False, 0)
    return handler


def _fpool(kind):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        rank = lay.rank
        k = lay.spec(_per_axis(_arg(node, 1, "kernel_size"), rank))
        stride = _arg(node, 2, "stride") or _arg(node, 1, "kernel_size")
        s = lay.spec(_per_axis(stride, rank))
        p = lay.spec(_per_axis(_arg(node, 3, "padding", 0), rank))
        ceil = _arg(node, 5 if kind == "maxpool" else 4, "ceil_mode", False)
        text = f"{kind} {_axes(k)}" + (f" stride {_axes(s)}" if s != k else "")
        pad = imp.pad_before(x, node)
        wanted = float("-inf") if kind == "maxpool" else 0
        words = None
        if pad is not None and pad.meta["value"] == wanted and not any(p):
            words = _side_padding(pad.meta["pads"], k, s, (1,) * rank, pad.meta["sizes"])
        if words is not None:  # F.pad then the pool: padding per side
            text += words
            x = pad.meta["of"]
            imp.drop(pad)
        elif any(p):
            text += f" pad {_axes(p)}"
            if kind == "avgpool" and _arg(node, 5, "count_include_pad", True):
                text += " countpad"
        if ceil:
            text += " ceil"
        op = imp.add(node, text, [x])
        op.meta["padded"] = words is not None
        imp.layouts[node.name] = lay
    return handler


def _truediv(imp, node):
    """cnncalc's average pooling over asymmetric padding divides by a constant count: with
    it, the pool averages real pixels only, as Keras does."""
    x, d = node.args[:2]
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    if op is not None and op.kind == "avgpool" and op.meta.get("padded") and \
            getattr(d, "name", None) in imp.consts:
        imp.alias(node, x)
        return
    if isinstance(d, (int, float)) and not isinstance(d, bool) and d:
        _scalar(imp, node, x, 1.0 / d, 0.0)
        return
    imp.fail(node, "division")


def _sub(imp, node):
    """x - y: 'subtract'; x - c for a number c: a rescale."""
    x, c = node.args[:2]
    alpha = _arg(node, 2, "alpha", 1)
    if getattr(x, "name", None) in imp.ids and isinstance(c, (int, float)) and \
            not isinstance(c, bool):
        _scalar(imp, node, x, 1.0, -float(c) * alpha)
        return
    if getattr(x, "name", None) in imp.ids and getattr(c, "name", None) in imp.ids and \
            alpha == 1:
        lay, lay2 = imp.layout_of(x), imp.layout_of(c)
        imp.add(node, "subtract", [x, c])
        imp.layouts[node.name] = lay if lay.rank >= lay2.rank else lay2
        return
    imp.fail(node, "a subtraction" + (" from a constant" if hasattr(c, "op") else ""))


def _scalar(imp, node, x, scale, offset):
    """x times a number plus a number (NFNet's gains, relu6(x + 3) / 6 spelt out): a
    rescale, which folds into the one before it (x * a + b is one rescale)."""
    if scale <= 0:
        imp.fail(node, f"a multiplication by {scale:g} (rescale takes a positive scale)")
        return
    before = imp.ops_by_id().get(imp.ids[x.name])
    if before is not None and before.kind == "rescale" and len(x.users) == 1 and \
            offset and before.meta.get("offset") == 0.0:  # x * a, then + b
        scale, x = before.meta["scale"], before.meta["of"]
        imp.drop(before)
    op = imp.add(node, statement("rescale", scale=float(scale), offset=float(offset)), [x])
    op.meta.update(scale=float(scale), offset=float(offset), of=x)
    imp.layouts[node.name] = imp.layout_of(x)


def _adaptive_f(kind):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        size = _arg(node, 1, "output_size")
        imp.add(node, f"{kind} {_axes(lay.spec(_per_axis(size, lay.rank)))}", [x])
        imp.layouts[node.name] = lay
    return handler


def _reshape(imp, node):
    x = node.args[0]
    lay = imp.layout_of(x)
    before, after = imp.shape(x), imp.shape(node)
    if after is None or before is None:
        imp.fail(node, "a reshape of unknown shape")
        return
    if _split_view(imp, node, x, lay, before, after) or \
            _merged_view(imp, node, x, lay, before, after):
        return
    source = _shuffled(imp, x)
    if source is not None:  # the end of a channel shuffle
        imp.add(node, f"shuffle {source[1]}", [source[0]])
        imp.layouts[node.name] = imp.layout_of(source[0])
        return
    if len(after) == 2 and len(before) > 2:  # x.view(N, -1): a flatten
        _flatten_to_vector(imp, node, x)
        return
    if _space_to_depth(imp, node, x, lay, before, after):
        return
    users = list(node.users)
    if len(after) == len(before) + 1 and lay.first and len(users) == 1 and \
            _target_name(users[0]) == "aten.transpose" and \
            {d % len(after) for d in users[0].args[1:3]} == {1, 2}:
        imp.shuffles[users[0].name] = (x, after[1])  # view (N, G, C / G, ...), transpose
        imp.alias(node, x)
        return
    if imp.input_layout.first and len(after) > 2 and lay.first and \
            _plain(before) and _plain(after):
        # PyTorch's (N, C, ...) where one side is 1 (ECA's (N, C) -> (N, 1, C) -> (N, C, 1,
        # 1)): its values lie in the order Keras' reshape (rows, columns, channels) reads
        target = Layout(True, True, len(after) - 2)
        spatial, c = target.spatial(after)
        imp.add(node, f"reshape {'x'.join(map(str, (*spatial, c)))}", [x])
        imp.layouts[node.name] = target
        return
    if not lay.first or lay.rank == 0:  # Keras' order: rows, columns, channels
        target = Layout(False, True, len(after) - 2)
        spatial, c = target.spatial(after)
        imp.add(node, f"reshape {'x'.join(map(str, (*spatial, c)))}", [x])
        imp.layouts[node.name] = target
        return
    imp.fail(node, f"reshape of a channels-first tensor {before} to {after} (cnncalc reshapes "
                   "in Keras' order: rows, columns, channels)")


def _split_view(imp, node, x, lay, before, after) -> bool:
    """(N, R x C, ...) viewed as (N, R, C, ...), R paths of C channels (SKNet, ResNeSt), and
    back; ResNeSt's radix softmax, view (N, G, R, K), transpose(1, 2), softmax(1)."""
    if x.name in imp.radix:
        if after != (before[0], before[1] * before[2], *before[3:]):
            return False
        imp.ids[node.name], imp.layouts[node.name] = imp.ids[x.name], lay
        return True
    users = list(node.users)
    if (lay.first or lay.rank == 0) and _radix_softmax(imp, node, x, lay, before, after, users):
        return True
    if not lay.first or lay.rank == 0:
        return False
    if len(after) == len(before) + 1 and after[0] == before[0] and after[3:] == before[2:] \
            and after[1] * after[2] == before[1] and after[1] > 1 and not (
                len(users) == 1 and _target_name(users[0]) == "aten.transpose"):
        imp.alias(node, x)
        imp.radix[node.name] = after[1]
        return True
    return False


def _radix_softmax(imp, node, x, lay, before, after, users) -> bool:
    """ResNeSt's rSoftMax: (N, G x R x K, ...) viewed as (N, G, R, K, ...) (timm: (N, G, R,
    K) of a 1x1 map), transpose(1, 2), softmax(1), and views back: 'rsoftmax R groups G'."""
    whole = len(after) == len(before) + 2 and after[4:] == tuple(before[2:])
    timm = len(after) == 4 and _prod(before[2:]) == 1
    if not (whole or timm) or after[0] != before[0] or _prod(after[1:4]) * _prod(after[4:]) \
            != _prod(before[1:]) or len(users) != 1 or \
            _target_name(users[0]) != "aten.transpose" or \
            {d % len(after) for d in users[0].args[1:3]} != {1, 2} or len(users[0].users) != 1:
        return False
    soft = next(iter(users[0].users))
    if _target_name(soft) != "aten._softmax" or soft.args[1] % len(after) != 1:
        return False
    groups, radix = after[1], after[2]
    imp.skip.update((users[0].name, soft.name))
    op = imp.add(soft, statement("rsoftmax", radix=radix, groups=groups), [x])
    imp.layouts[soft.name] = lay
    # the views back to (N, R x C, ...) (or timm's (N, R x C)): the op's values as they are
    chain = list(_views_after(soft))
    back = [i for i, v in enumerate(chain) if imp.shape(v) in ((before[0], before[1]),
                                                               tuple(before))]
    for v in chain[:back[-1] + 1] if back else ():
        imp.skip.add(v.name)
        imp.ids[v.name], imp.layouts[v.name] = op.id, lay
    imp.ids[node.name] = op.id
    return True


def _merged_view(imp, node, x, lay, before, after) -> bool:
    """x.flatten(2) of a channels-first map: (N, C, H x W), the map's values as they are
    (Segformer's MLP, timm's patch embeddings); and the view back to (N, C, H, W)."""
    if x.name in imp.merged:
        if not lay.first or after != (*before[:2], *imp.merged[x.name]):
            imp.fail(node, f"a view of a map with its spatial axes merged {before} to {after}")
            return True
        imp.ids[node.name], imp.layouts[node.name] = imp.ids[x.name], lay
        return True
    if lay.first and lay.rank >= 2 and len(after) == 3 and after[:2] == before[:2] and \
            after[2] == _prod(before[2:]):
        imp.alias(node, x)
        imp.merged[node.name] = tuple(before[2:])
        return True
    return False


def _views_after(node):
    """The chain of views that reads ``node`` alone, one after another."""
    while len(node.users) == 1 and _target_name(next(iter(node.users))) in _VIEWS:
        node = next(iter(node.users))
        yield node


def _space_to_depth(imp, node, x, lay, before, after) -> bool:
    """TResNet's SpaceToDepth: view (N, C, H/R, R, W/R, R), permute (0, 3, 5, 1, 2, 4),
    view (N, C R^2, H/R, W/R): 'spacetodepth R' (TensorFlow's channel order)."""
    if len(before) != 4 or len(after) != 6 or not (lay.first and lay.picture):
        return False
    n, c, h, w = before
    r = after[3]
    if after != (n, c, h // r, r, w // r, r) or r < 2:
        return False
    users = list(node.users)
    if len(users) != 1 or _target_name(users[0]) != "aten.permute" or \
            list(users[0].args[1]) != [0, 3, 5, 1, 2, 4]:
        return False
    chain, last = [users[0]], users[0]
    while len(last.users) == 1 and _target_name(next(iter(last.users))) == "aten.clone":
        last = next(iter(last.users))
        chain.append(last)
    end = next(iter(last.users)) if len(last.users) == 1 else None
    if end is None or _target_name(end) not in ("aten.view", "aten._unsafe_view",
                                                "aten.reshape") or \
            imp.shape(end) != (n, c * r * r, h // r, w // r):
        return False
    imp.skip.update(k.name for k in chain)
    imp.skip.add(end.name)
    op = imp.add(end, f"spacetodepth {r}", [x])
    imp.ids[node.name] = op.id
    imp.layouts[end.name] = lay
    return True


def _plain(shape) -> bool:
    """A batch-first shape whose channels-first and channels-last orders agree: a vector,
    one channel, or one position."""
    return len(shape) == 2 or shape[1] == 1 or _prod(shape[2:]) == 1


def _expand(imp, node):
    """expand(_as) of a 1x1xC gate to the map it multiplies: the multiply broadcasts."""
    x = node.args[0]
    lay = imp.layout_of(x)
    if lay.rank and all(n == 1 for n in lay.spatial(imp.shape(x))[0]) and \
            imp.shape(node)[1] == imp.shape(x)[1]:
        imp.alias(node, x)
        return
    imp.fail(node, f"expand of {imp.shape(x)} to {imp.shape(node)}")


def _shuffled(imp, x):
    """(input, groups) when ``x`` is a channel shuffle's transpose (maybe made contiguous)."""
    while _target_name(x) == "aten.clone":
        x = x.args[0]
    return imp.shuffles.get(getattr(x, "name", None))


def _transpose(imp, node):
    x = node.args[0]
    if node.name in imp.shuffles:  # the middle of a channel shuffle: its end emits it
        imp.alias(node, imp.shuffles[node.name][0])
        return
    lay = imp.layout_of(x)
    if x.name in imp.merged:  # (N, C, H x W) <-> (N, H x W, C)
        axes = _flat(node.args[1:]) if _target_name(node) == "aten.permute" else \
            [0, *_flat(node.args[1:3])]
        if sorted(d % 3 for d in axes[-2:]) != [1, 2] or axes[0] % 3 != 0:
            imp.fail(node, f"a transpose of a map with its spatial axes merged {_brief(node)}")
            return
        imp.alias(node, x, Layout(not lay.first, lay.picture, lay.rank))
        imp.merged[node.name] = imp.merged[x.name]
        return
    n = lay.rank + 2
    if _target_name(node) == "aten.permute":
        perm = tuple(d % n for d in _flat(node.args[1:]))
    else:
        a, b = (d % n for d in _flat(node.args[1:3]))
        perm = list(range(n))
        perm[a], perm[b] = perm[b], perm[a]
        perm = tuple(perm)
    new = _permuted(lay, perm)
    if new is None:
        imp.fail(node, f"a transpose {perm} that mixes the channels with the spatial axes")
        return
    imp.alias(node, x, new)


def _labels(lay):
    """What each axis of a tensor holds: 'N', 'C', and spatial axes by their place in the
    spec (0 is the width for a 2-D map)."""
    spatial = list(range(lay.rank))
    if lay.picture and lay.rank >= 2:
        spatial[-2:] = spatial[-2:][::-1]
    return ["N", "C", *spatial] if lay.first else ["N", *spatial, "C"]


def _permuted(lay, perm):
    """The layout after any permutation of a tensor's axes; None when the batch leaves the
    front, the channels land between spatial axes, or the spatial axes are scrambled beyond
    a swap of the last two."""
    old = _labels(lay)
    new = [old[p] for p in perm]
    if new[0] != "N" or "C" not in (new[1], new[-1]):
        return None
    first = new[1] == "C" and lay.rank > 0
    spatial = new[2:] if first else new[1:-1]
    for picture in (False, True):
        if _labels(Layout(first, picture, lay.rank)) == new:
            return Layout(first, picture, lay.rank)
    del spatial
    return None


def _getitem(imp, node):
    """A part of a split's result (chunk, split: the recorder makes one node per part)."""
    x, index = node.args[:2]
    op = imp.ops_by_id().get(imp.ids.get(getattr(x, "name", None)))
    if op is None or op.kind != "split":
        imp.fail(node, f"part {index} of {getattr(x, 'name', x)}")
        return
    take = imp.add(node, "take", [x], index=index)
    take.index = index
    imp.layouts[node.name] = imp.layout_of(x)


def _slice(imp, node):
    """x[..., a:b] on a spatial axis: a crop (after a ConvTranspose: its Keras 'same' crop);
    slices of several axes, one after another, are one crop."""
    x, dim = node.args[0], _arg(node, 1, "dim", 0)
    start, end, step = _arg(node, 2, "start"), _arg(node, 3, "end"), _arg(node, 4, "step", 1)
    lay, shape = imp.layout_of(x), imp.shape(x)
    dim %= len(shape)
    begin, stop, _ = slice(start, end, step).indices(shape[dim])
    if (begin, stop, step) == (0, shape[dim], 1):
        imp.alias(node, x)
        return
    axes = list(range(2, 2 + lay.rank)) if lay.first else list(range(1, 1 + lay.rank))
    if dim == lay.channel_dim() and step == 1 and stop > begin:  # x[:, a:b]
        imp.add(node, statement("slice", channels=stop - begin, start=begin), [x])
        imp.layouts[node.name] = lay
        return
    if dim not in axes or step != 1:
        what = "the channels" if dim == lay.channel_dim() else f"dimension {dim}"
        imp.fail(node, f"a slice of {what} ({begin}:{stop}" + (f":{step}" if step != 1 else "")
                 + f" of {shape[dim]})")
        return
    pairs = [(0, 0)] * lay.rank
    before = imp.ops_by_id().get(imp.ids[x.name])
    if before is not None and before.kind == "crop" and "axes" in before.meta and \
            len(x.users) == 1:  # the crop of another axis just before: one crop
        pairs, x = list(before.meta["axes"]), before.meta["of"]
        imp.drop(before)
    pairs[axes.index(dim)] = (begin, shape[dim] - stop)
    spec_pairs = list(lay.spec(pairs))
    src = imp.ops_by_id().get(imp.ids[x.name])
    if src is not None and src.kind == "deconv" and len(x.users) == 1 and \
            src.meta.get("cropped_same") is not None and spec_pairs == src.meta["cropped_same"]:
        src.text += " same"  # ConvTranspose then its Keras crop: deconv 'same'
        imp.alias(node, x)
        return
    text = "crop " + ("x".join(f"{b}x{a}" for b, a in spec_pairs)
                      if any(b != a for b, a in spec_pairs) else _axes([b for b, _ in spec_pairs]))
    op = imp.add(node, text, [x])
    op.meta.update(of=x, axes=pairs, centre=all(b == (b + a) // 2 for b, a in spec_pairs),
                   sizes=lay.spatial(imp.shape(x))[0])
    imp.layouts[node.name] = lay


def _split(imp, node):
    """split (chunk, split and split_with_sizes all end here) along the channels."""
    x = node.args[0]
    lay = imp.layout_of(x)
    c = lay.spatial(imp.shape(x))[1]
    dim = _arg(node, 2, "dim", 0)
    if dim % (lay.rank + 2) != lay.channel_dim():
        imp.fail(node, f"a split along dimension {dim}, not the channels")
        return
    arg = _arg(node, 1, "split_size")
    sizes = [arg] * (c // arg) + ([c % arg] if c % arg else []) if isinstance(arg, int) \
        else list(arg)
    imp.add(node, "split", [x], sizes=sizes)
    imp.layouts[node.name] = lay


def _fpad(imp, node):
    """constant_pad_nd (F.pad), reflection_pad (F.pad mode 'reflect')."""
    x = node.args[0]
    lay = imp.layout_of(x)
    pads = list(node.args[1])
    reflect = "reflection" in _target_name(node)
    value = 0.0 if reflect else (_arg(node, 2, "value", 0.0) or 0.0)
    per_axis = [(pads[2 * i], pads[2 * i + 1]) for i in range(len(pads) // 2)][::-1]
    if len(per_axis) > lay.rank:
        imp.fail(node, f"padding of {len(per_axis)} axes of a tensor with {lay.rank} spatial axes")
        return
    per_axis = [(0, 0)] * (lay.rank - len(per_axis)) + per_axis
    per_axis = list(lay.spec(per_axis))
    if reflect:
        text = "reflectpad " + _pad_text(lay, pads)
    elif value in (0, float("-inf")):
        text = "zeropad " + _pad_text(lay, pads)
    else:
        imp.fail(node, f"padding with the value {value}")
        return
    op = imp.add(node, text, [x])
    op.meta.update(pads=per_axis, value=value, of=x, sizes=lay.spatial(imp.shape(x))[0])
    imp.layouts[node.name] = lay


def _interpolate(imp, node):
    """upsample_nearest / upsample_(bi|tri)linear: whole factors, read from the shapes."""
    x = node.args[0]
    lay = imp.layout_of(x)
    name = _target_name(node)
    (before, _), (after, _) = lay.spatial(imp.shape(x)), lay.spatial(imp.shape(node))
    linear = "linear" in name
    if "exact" in name or "bicubic" in name:
        imp.fail(node, f"interpolation by {name[5:]}")
        return
    corners = linear and _arg(node, 2, "align_corners")
    if any(a % b for a, b in zip(after, before)):  # to a size: PSPNet's pyramid
        imp.add(node, statement("resize", size=tuple(after), mode="bilinear" if linear
                                else "nearest", corners=bool(corners)), [x])
    else:
        imp.add(node, _upsample_text([a // b for a, b in zip(after, before)], linear, corners),
                [x])
    imp.layouts[node.name] = lay


def _hardtanh(imp, node):
    """F.hardtanh(x, 0, 6): what nn.ReLU6 calls (traced as a model of its own)."""
    lo, hi = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    if (lo, hi) != (0, 6):
        imp.fail(node, f"hardtanh to [{lo:g}, {hi:g}] (cnncalc has relu6: [0, 6])")
        return
    _activation("relu6")(imp, node)


# torch's functions are its modules' names in lower case (F.relu6, torch.sigmoid, ...)
def _pixel_f(word):
    def handler(imp, node):
        x = node.args[0]
        lay = imp.layout_of(x)
        if lay.rank != 2 or not lay.first or not lay.picture:
            imp.fail(node, f"{word} on a tensor that is not (N, C, H, W)")
            return
        imp.add(node, f"{word} {_arg(node, 1, 'upscale_factor') or _arg(node, 1, 'downscale_factor')}", [x])
        imp.layouts[node.name] = lay
    return handler


def _unsqueeze(imp, node):
    """x[:, :, None, None] or x.unsqueeze(-1) on a vector (or a 1x1 map): its channels as a
    1x1 map (a broadcast, as squeeze-and-excitation writes it)."""
    x = node.args[0]
    lay, before, after = imp.layout_of(x), imp.shape(x), imp.shape(node)
    c = lay.spatial(before)[1]
    if (lay.rank and not lay.first) or any(n != 1 for n in before[2:]) or len(after) < 3 or \
            after[1] != c or any(n != 1 for n in after[2:]):
        imp.fail(node, f"unsqueeze of a tensor {before} to {after}")
        return
    imp.alias(node, x, Layout(True, True, len(after) - 2))


def _squeeze(imp, node):
    """A 1x1 map's spatial axes squeezed away: a flatten."""
    x = node.args[0]
    lay, after = imp.layout_of(x), imp.shape(node)
    if lay.rank and len(after) == 2 and after[0] == imp.shape(x)[0] and \
            all(n == 1 for n in lay.spatial(imp.shape(x))[0]):
        _flatten_to_vector(imp, node, x)
        return
    imp.fail(node, f"squeeze of a tensor {imp.shape(x)} to {after}")


class _Attrs:
    """An operator's arguments as the module that calls it holds them (nn.Conv2d's
    kernel_size, stride, ...), for the module handlers."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _weight(imp, node, i, what):
    """The parameter an operator reads, or None (and the node refused) when it is computed
    from one (weight standardisation): that computation has no statement."""
    w = node.args[i] if len(node.args) > i else None
    if w is not None and (getattr(w, "op", None) != "get_attr" or w.target == "_constant"):
        imp.fail(node, f"{what} with a computed weight ({w.name})")
        return False
    if w is not None:
        imp.share(node, w.target)
        imp.frozen_later.append((node, w.target))
    return True


_VIEWS = ("aten.view", "aten._unsafe_view", "aten.reshape", "aten.clone", "aten.alias")


def _unview(n):
    while getattr(n, "op", None) == "call_function" and _target_name(n) in _VIEWS:
        n = n.args[0]
    return n


def _standardised(imp, node, w):
    """The parameter, eps, gain and scale of a weight standardised by batch norm's
    arithmetic (timm's StdConv2d: F.batch_norm over each filter, training=True; its
    ScaledStdConv2d scales by a learnable gain times a constant), or None."""
    bn = _unview(w)
    if getattr(bn, "op", None) != "call_function" or _target_name(bn) not in (
            "aten.native_batch_norm", "aten._native_batch_norm_legit") or \
            any(a is not None for a in bn.args[2:5]) or not bn.args[5]:
        return None
    param, gain = _unview(bn.args[0]), bn.args[1]
    if getattr(param, "op", None) != "get_attr" or param.target == "_constant":
        return None
    scale = 1.0
    if gain is not None:
        gain = _unview(gain)
        if getattr(gain, "op", None) == "call_function" and _target_name(gain) == "aten.mul" \
                and isinstance(gain.args[1], (int, float)):
            gain, scale = _unview(gain.args[0]), float(gain.args[1])
        if getattr(gain, "op", None) != "get_attr" or gain.target == "_constant" or \
                imp.shared(node, gain.target):
            return None
    if imp.shared(node, param.target):
        return None
    return param, bn.args[-1], gain is not None, scale


def _convolution(imp, node):
    """aten.convolution (F.conv2d, and nn.Conv2d subclasses with a forward of their own)."""
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = node.args[:9]
    std = None if getattr(w, "op", None) == "get_attr" or transposed else \
        _standardised(imp, node, w)
    if std is not None:
        w = std[0]
    elif not _weight(imp, node, 1, "a convolution"):
        return
    shape = imp.shape(w)
    attrs = _Attrs(kernel_size=tuple(shape[2:]), stride=tuple(stride), padding=tuple(padding),
                   dilation=tuple(dilation), groups=groups, bias=b, padding_mode="zeros",
                   output_padding=tuple(output_padding),
                   out_channels=shape[1] * groups if transposed else shape[0])
    if std is None:
        (_deconv if transposed else _conv)(imp, node, attrs)
        if not transposed and imp.ops and imp.ops[-1].id == node.name and \
                w.target in imp.buffers():  # a fixed filter (timm's BlurPool)
            imp.ops[-1].text += " frozen"
        return
    _conv(imp, node, attrs, grouped=True)  # 'stdconv', written with its groups
    op = imp.ops[-1]
    op.text = "std" + op.text + statement("stdconv", eps=std[1], gain=std[2],
                                          scale=std[3])[len("stdconv"):]


def _batch_norm(imp, node):
    """native_batch_norm (eval: the running statistics) and its no-training form."""
    x, w, b, mean, var = node.args[:5]
    eps = node.args[-1]
    if w is None or b is None or mean is None or var is None:
        missing = [n for n, v in zip(("scale", "offset", "running statistics"), (w, b, mean))
                   if v is None]
        imp.fail(node, f"batch norm without its {' and '.join(missing)}")
        return
    if not _weight(imp, node, 1, "a batch norm"):
        return
    _simple(lambda imp, node, m: statement("batchnorm", eps=eps))(imp, node)


def _layer_norm(imp, node):
    x, shape, w, b, eps = node.args[:5]
    attrs = _Attrs(normalized_shape=tuple(shape), elementwise_affine=w is not None and
                   b is not None, eps=eps)
    _simple(_layernorm)(imp, node, attrs)


def _group_norm(imp, node):
    x, w, b, _, _, _, groups, eps = node.args[:8]
    _simple(_groupnorm)(imp, node, _Attrs(num_groups=groups, eps=eps,
                                          affine=w is not None and b is not None))


def _linear_op(imp, node):
    """addmm(bias, x, weight.t()) and mm(x, weight.t()): F.linear on a vector."""
    bias, x, wt = (None, *node.args[:2]) if _target_name(node) == "aten.mm" else node.args[:3]
    lay = imp.layout_of(x)
    if lay is None or lay.rank or getattr(wt, "op", None) == "placeholder" or \
            wt.name in imp.ids:
        imp.fail(node, "a matrix product of two computed tensors")
        return
    if not (wt.op == "call_function" and _target_name(wt) in ("aten.t", "aten.permute",
                                                              "aten.transpose")) \
            or not _weight(imp, wt, 0, "a linear layer"):
        imp.fail(node, "a matrix product with a computed weight")
        return
    imp.add(node, f"dense {imp.shape(wt)[1]}" + ("" if bias is not None else " nobias"), [x])
    imp.layouts[node.name] = lay


def _linear_fn(imp, node):
    """F.linear (a Linear subclass with its own forward, timm's Linear): a dense layer on
    the channels, of a vector or of a channels-last map."""
    x, w = node.args[:2]
    bias = _arg(node, 2, "bias")
    lay = imp.layout_of(x)
    if lay.rank and lay.first:
        imp.fail(node, "Linear on the last spatial axis of a channels-first map")
        return
    if not _weight(imp, node, 1, "a linear layer"):
        return
    imp.add(node, f"dense {imp.shape(w)[0]}" + ("" if bias is not None else " nobias"), [x])
    imp.layouts[node.name] = lay


def _elu(imp, node):
    """aten.elu(x, alpha, scale, input_scale): F.elu, and F.selu with SELU's constants."""
    alpha, scale, inner = (_arg(node, i, k, 1) for i, k in ((1, "alpha"), (2, "scale"),
                                                             (3, "input_scale")))
    if (alpha, scale, inner) == (1, 1, 1):
        _activation("elu")(imp, node)
    elif abs(alpha - 1.6732632423543772) < 1e-6 and abs(scale - 1.0507009873554805) < 1e-6 \
            and inner == 1:
        _activation("selu")(imp, node)
    else:
        imp.fail(node, f"ELU with alpha {alpha:g}, scale {scale:g} (cnncalc has elu and selu)")


def _stack(imp, node):
    """torch.stack(parts) summed over the new axis (FPN's merge policy 'add'): read at the
    sum, as an add of the parts."""
    parts = [a for a in _flat(node.args[0]) if getattr(a, "name", None) in imp.ids]
    users = list(node.users)
    lay = imp.layout_of(parts[0]) if parts else None
    if _arg(node, 1, "dim", 0) == 1 and lay is not None and lay.first and lay.rank and \
            len(parts) == len(_flat(node.args[0])) and \
            len({imp.shape(p) for p in parts}) == 1:  # SKNet's paths: (N, R, C, ...)
        imp.add(node, "concat", parts)
        imp.layouts[node.name] = lay
        imp.radix[node.name] = len(parts)
        return
    if _arg(node, 1, "dim", 0) != 0 or len(parts) != len(_flat(node.args[0])) or \
            len(users) != 1 or _target_name(users[0]) != "aten.sum" or \
            list(_per_axis(_arg(users[0], 1, "dim"), 1)) != [0]:
        imp.fail(node, "torch.stack (only its sum over the new axis, an add, is read)")
        return
    imp.skip.add(users[0].name)
    op = imp.add(users[0], "add", parts)
    imp.ids[node.name] = op.id
    imp.layouts[users[0].name] = imp.layouts[node.name] = imp.layout_of(parts[0])


def _grn(imp, node):
    """timm's GlobalResponseNorm, read whole from its operators: g = ||x|| over the map,
    n = g / (mean of g over the channels + eps), x + addcmul(bias, weight, x * n)."""
    x = node.args[0]
    lay = imp.layout_of(x)
    n = len(imp.shape(x))
    spatial = set(range(2, n)) if lay.first else set(range(1, n - 1))

    def only(n_, name):
        users = [u for u in n_.users if _target_name(u) == name]
        return users[0] if len(users) == 1 else None
    try:
        assert node.args[1] == 2 and {d % n for d in node.args[2]} == spatial
        mean = only(node, "aten.mean")
        plus = only(mean, "aten.add")
        div = only(plus, "aten.div")
        prod_ = next(u for u in div.users if _target_name(u) == "aten.mul" and x in u.args)
        acm = only(prod_, "aten.addcmul")
        out = next(u for u in acm.users if _target_name(u) == "aten.add" and x in u.args)
        bias, weight = _unview(acm.args[0]), _unview(acm.args[1])
        assert {d % n for d in _per_axis(mean.args[1], 1)} == {lay.channel_dim()}
        assert bias.op == weight.op == "get_attr"
    except (AssertionError, StopIteration, AttributeError, TypeError, IndexError):
        imp.fail(node, "a vector norm (only global response normalisation's is read)")
        return
    if imp.shared(node, weight.target) or imp.shared(node, bias.target):
        return
    imp.skip.update(k.name for k in (mean, plus, div, prod_, acm, out))
    op = imp.add(out, statement("grn", eps=float(plus.args[1])), [x])
    imp.ids[node.name] = op.id
    imp.layouts[out.name] = lay


def _sum(imp, node):
    """The sum of a split tensor's R paths: 'splitsum R'."""
    x = node.args[0]
    dims = [d % (imp.layout_of(x).rank + 3) for d in _per_axis(_arg(node, 1, "dim", ()), 1)]
    if x.name not in imp.radix or dims != [1] or _arg(node, 2, "keepdim", False):
        imp.fail(node, f"a sum over dimensions {dims} (cnncalc reads the sum of a tensor's "
                       "paths, split in R along a new axis)")
        return
    imp.add(node, statement("splitsum", radix=imp.radix[x.name]), [x])
    imp.layouts[node.name] = imp.layout_of(x)


def _metadata(imp, node):
    """new_full, zeros_like, ...: a new tensor that reads only its argument's shape and
    type (Ultralytics' anchors): a constant, not a consumer of the flow."""
    imp.consts.add(node.name)


def _alias_first(imp, node):
    imp.alias(node, node.args[0])


# ATen's operators for the activations are their modules' names in lower case (relu, gelu,
# hardswish, ...), each with an in-place form (relu_)
_ACTS = {**{cls.lower(): word for cls, word in named("torch").items()},
         "leaky_relu": "leakyrelu", "_softmax": "softmax"}
FUNCTIONS = {"add": _merge("add"), "add_": _merge("add"), "mul": _merge("multiply"),
             "mul_": _merge("multiply"), "div": _truediv, "div_": _truediv, "sub": _sub,
             "sub_": _sub, "cat": _cat, "getitem": _getitem,
             "view": _reshape, "_unsafe_view": _reshape, "reshape": _reshape,
             "permute": _transpose, "transpose": _transpose, "slice": _slice,
             "unsqueeze": _unsqueeze, "squeeze": _squeeze,
             "clone": _alias_first, "alias": _alias_first, "detach": _alias_first,
             "_to_copy": _alias_first, "lift_fresh_copy": _alias_first,
             "mean": _global("globalavgpool"), "amax": _global("globalmaxpool"),
             "split": _split, "split_with_sizes": _split, "constant_pad_nd": _fpad,
             "hardtanh": _hardtanh, "hardtanh_": _hardtanh, "convolution": _convolution,
             "native_batch_norm": _batch_norm, "_native_batch_norm_legit_no_training":
             _batch_norm, "_native_batch_norm_legit": _batch_norm,
             "native_layer_norm": _layer_norm, "native_group_norm": _group_norm,
             "addmm": _linear_op, "mm": _linear_op, "linear": _linear_fn, "stack": _stack, "expand": _expand,
             "linalg_vector_norm": _grn, "sum": _sum,
             "pixel_shuffle": _pixel_f("pixelshuffle"),
             "pixel_unshuffle": _pixel_f("pixelunshuffle")}
for _name, _word in _ACTS.items():
    FUNCTIONS[_name] = FUNCTIONS[f"{_name}_"] = _activation(_word)
FUNCTIONS["elu"] = FUNCTIONS["elu_"] = _elu
for _name in ("new_full", "new_zeros", "new_ones", "new_empty", "empty_like", "zeros_like",
              "ones_like", "full_like", "new_empty_strided", "empty_strided"):
    FUNCTIONS[_name] = _metadata
for _d in (1, 2, 3):
    FUNCTIONS[f"max_pool{_d}d_with_indices"] = _fpool("maxpool")
    FUNCTIONS[f"avg_pool{_d}d"] = _fpool("avgpool")
    FUNCTIONS[f"_adaptive_avg_pool{_d}d"] = _adaptive_f("adaptiveavgpool")
    FUNCTIONS[f"adaptive_max_pool{_d}d"] = _adaptive_f("adaptivemaxpool")
    FUNCTIONS[f"adaptive_avg_pool{_d}d"] = _adaptive_f("adaptiveavgpool")
    FUNCTIONS[f"max_pool{_d}d"] = _fpool("maxpool")
    FUNCTIONS[f"reflection_pad{_d}d"] = _fpad
    for _mode in ("nearest", "linear" if _d == 1 else "bilinear" if _d == 2 else "trilinear",
                  "nearest_exact", "bicubic"):
        FUNCTIONS[f"upsample_{_mode}{_d}d"] = _interpolate
FUNCTIONS = {f"aten.{k}" if k != "getitem" else k: v for k, v in FUNCTIONS.items()}


# --- the entry point -------------------------------------------------------------------------------

def _is_cnncalc(module) -> bool:
    return type(module).__module__.startswith("cnncalc.")


def module_handler(module):
    """The handler of one of torch.nn's own layers, matched by type: a class of the same
    name elsewhere (timm's Linear, a user's Conv2d), or a subclass with a forward of its
    own (torchvision's LayerNorm2d), is traced through instead."""
    cls = type(module)
    handler = MODULES.get(cls.__name__)
    if handler is None:
        return None
    if cls.__name__ in _FOREIGN_LEAVES or cls.__module__.startswith("torch.nn.modules"):
        return handler
    import torch.nn
    base = getattr(torch.nn, cls.__name__, None)
    return handler if base is not None and issubclass(cls, base) and \
        cls.forward is base.forward else None


_FOREIGN_LEAVES = ("StochasticDepth", "DropPath")  # stochastic depth: a row, not Python


def trace(module, input_shape: tuple, layout: str):
    """The graph of ``module`` run on meta tensors (``torch_trace``), for a spec-order input
    (width first) fed as the module expects it: 'nchw' or 'nhwc' (picture order)."""
    from .torch_trace import record
    *spatial, c = input_shape
    picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
    example = (1, *picture, c) if layout == "nhwc" else (1, c, *picture)
    try:
        return record(module, example, lambda m: module_handler(m) is not None)
    except CnnCalcError:
        raise
    except Exception as e:  # the model's own code failed on this input
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        if "meta" in reason and ("item()" in reason or "data-dependent" in reason
                                 or "Cannot copy out" in reason):
            reason += (" (its forward reads a tensor's values, and the import runs on shapes "
                       "alone: a model whose Python decides by its values cannot be read)")
        raise CnnCalcError(f"{type(module).__name__} does not run on an input of "
                           f"{'x'.join(map(str, input_shape))}: {reason}"
                           + _channels_hint(module, input_shape)) from None


def _channels_hint(module, shape) -> str:
    """'3x32x32' for a module whose first convolution takes 3 channels: PyTorch's order."""
    import torch
    first = next((m for m in module.modules() if isinstance(
        m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))), None)
    if first is None or len(shape) < 2 or shape[0] != first.in_channels or \
            shape[-1] == first.in_channels:
        return ""
    flipped = "x".join(map(str, (*shape[1:], shape[0])))
    return f"\ndid you mean --input {flipped}? cnncalc writes sizes channels last"


def from_torch(module, input: str = "224x224x3", layout: str | None = None,
               network: str | None = None, partial: bool = False) -> Imported:
    """The spec of a PyTorch module, and its summary. ``input`` is the spec's input (width
    first); ``layout`` how the module takes it: 'nchw' (PyTorch's convention, the default)
    or 'nhwc' (cnncalc's own modules)."""
    import torch
    from ..specs import summarize
    from ..language.expand import load
    if not isinstance(module, torch.nn.Module):
        raise CnnCalcError(f"expected a torch.nn.Module to import, received "
                           f"{type(module).__name__}")
    shape = load(f"input {input}").input.shape
    if any(isinstance(v, str) for v in shape):
        raise CnnCalcError(f"--input {input}: importing needs numbers, e.g. 224x224x3")
    layout = layout or ("nhwc" if _is_cnncalc(module) else "nchw")
    rank = len(shape) - 1
    gm = trace(module, shape, layout)
    imp = _Importer(gm, Layout(layout == "nchw", True, rank) if rank else Layout(True, False, 0),
                    type(module).__name__)
    ops = imp.run(shape)
    imp.name_functions()
    order = {node.name: i for i, node in enumerate(gm.graph.nodes)}
    imp.problems.sort(key=lambda p: order.get(p[0], 0))
    if imp.problems and not partial:
        raise Unsupported(imp.problems, type(module).__name__)
    outputs = imp.outputs
    if imp.problems:  # --partial: what the nodes without a counterpart read is the output
        ops, outputs = _frontier(imp, gm, ops)
    ops, outputs = fuse(ops, outputs)
    name = network or getattr(module, "spec_name", None) or _snake(type(module).__name__)
    text = emit(ops, outputs, "x".join(map(str, shape)), name)
    if imp.problems:
        text += (f"# import stopped at node {imp.problems[0][0]}: {imp.problems[0][1]} has no "
                 "cnncalc counterpart\n")
    else:
        text += _never_run(module, gm)
    return Imported(text, summarize(text))


def _frontier(imp, gm, ops):
    """--partial: the tensors the first nodes without a counterpart read become the
    outputs (a detector's raw maps, before the decoding the language does not say), with
    the outputs that did import; only what they are made from is kept."""
    outputs = []
    failed = {name for name, _ in imp.problems}
    for node in gm.graph.nodes:
        if node.name in failed:
            for a in _flat(node.args) + _flat(node.kwargs.values()):
                k = imp.ids.get(getattr(a, "name", None))
                if k is not None and k != "input" and k not in outputs:
                    outputs.append(k)
    outputs += [o for o in imp.outputs if o not in outputs and o != "input"]
    by_id, keep, todo = {op.id: op for op in ops}, set(), list(outputs)
    while todo:
        k = todo.pop()
        if k in by_id and k not in keep:
            keep.add(k)
            todo += by_id[k].inputs
    order = {op.id: i for i, op in enumerate(ops)}
    outputs.sort(key=lambda k: order.get(k, -1))
    return [op for op in ops if op.id in keep], outputs


def _owners(name, used):
    """The module paths above a parameter's name that ran as leaves."""
    parts = name.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in used]


def _never_run(module, gm) -> str:
    """A comment naming the parameters of modules that never ran (smp's PSPNet keeps a
    ResNet's layer3 and layer4 it does not use): PyTorch's parameters() counts them, the
    spec, which is what runs, does not."""
    used = set()
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            used.add(node.target)
        elif node.op == "call_module":  # a leaf: its own parameters (and any below)
            used.add(node.target)
    idle = [(n, p.numel()) for n, p in module.named_parameters() if n not in used and
            not any(n.startswith(u + ".") for u in _owners(n, used))]
    if not idle:
        return ""
    owners = list(dict.fromkeys(".".join(n.split(".")[:2]) for n, _ in idle))
    return (f"# not in this spec: {sum(c for _, c in idle):,} parameters of modules that never "
            f"run ({', '.join(owners[:4])}{', ...' if len(owners) > 4 else ''})\n")


def _snake(name: str) -> str:
    """A class name as a network's: ResNet -> res_net, DLA -> dla, VGG16Net -> vgg16_net."""
    import re
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower() \
        or "network"


def load_factory(where: str, meta: bool = False):
    """'path/to/models.py:make_model' → the module its factory returns (running that file:
    it is the user's own code, and importing it is the point); ``meta``: built on PyTorch's
    meta device, its weights shapes without memory."""
    import importlib.util
    import sys
    from pathlib import Path
    path, _, factory = where.rpartition(":")
    if not path or not factory:
        raise CnnCalcError(f"{where}: expected FILE.py:FACTORY, e.g. models.py:resnet50")
    file = Path(path)
    if not file.is_file():
        raise CnnCalcError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(f"_cnncalc_user_{file.stem}", file)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise CnnCalcError(f"{path}: running it failed: {type(e).__name__}: {e}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(mod, factory, None)
    if fn is None or not callable(fn):
        names = [n for n in dir(mod) if callable(getattr(mod, n)) and not n.startswith("_")]
        raise CnnCalcError(f"{path} has no callable {factory!r}; it has: {', '.join(names[:12])}")
    import contextlib

    import torch
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            module = fn()
    except Exception as e:
        raise CnnCalcError(f"{where}(): {type(e).__name__}: {e}") from None
    if not isinstance(module, torch.nn.Module):
        raise CnnCalcError(f"{where}() returned {type(module).__name__}, not a torch.nn.Module")
    return module
