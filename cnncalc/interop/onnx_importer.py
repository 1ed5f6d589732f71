"""The ONNX importer's state and walk: the graph with its shapes inferred (dims only, the
weights' data left in the file), constants folded, each node to its handler, weights read
only when asked for."""

from __future__ import annotations

from ..errors import CnnCalcError
from .graph import Op
from .onnx_fuse import (
    _fuse_erf_gelu,
    _fuse_grn,
    _fuse_groupnorm,
    _fuse_layernorm,
    _fuse_softplus_mish,
)
from .onnx_nodes import _attrs, _scope
from .onnx_ops import HANDLERS

_ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}  # TensorProto types


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
        _fuse_softplus_mish(self.graph)
        _fuse_groupnorm(self.graph)
        _fuse_grn(self.graph)
        self.opset = list(model.opset_import)
        self.consts = _Consts((*model.graph.initializer, *self.graph.initializer), buf,
                              stripped)
        self.shapes = {}
        for vi in list(self.graph.value_info) + list(self.graph.input) + list(self.graph.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                         for d in dims)
        self.ids, self.layouts, self.ops, self.problems = {}, {}, [], []
        self.by_id = {}  # op id -> op
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
        self.by_id[op.id] = op
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
        if not shape or None in shape:  # open, or of a rank inference could not tell
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

