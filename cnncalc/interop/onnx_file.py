"""An ONNX file read without its weights' data: the protobuf's fields are walked on a
memory map, each large initializer's raw_data is left where it lies (its place noted), and
only the rest (nodes, shapes, names, small constants) is parsed. An import reads dims, so
ResNet-50's 100 MB are neither copied nor parsed; a weight's values are read from the map
when asked for (--weights-out). Anything this walk does not expect (external data, a
malformed field) falls back to onnx.load, which says what is wrong."""

from __future__ import annotations

LARGE = 4096  # bytes of raw_data: a weight, not a constant that shapes are read from

_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_NAME, _TENSOR_RAW, _TENSOR_EXTERNAL = 8, 9, 13


class Malformed(ValueError):
    """The bytes are not the protobuf this walk expects."""


def _varint(buf, i: int, end: int):
    value = shift = 0
    while True:
        if i >= end or shift > 63:
            raise Malformed("a truncated number")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf, start: int, end: int):
    """Each field as (number, wire type, value start, value end, field start)."""
    i = start
    while i < end:
        first = i
        key, i = _varint(buf, i, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(buf, i, end)
        elif wire == 1:
            after = i + 8
        elif wire == 2:
            n, i = _varint(buf, i, end)
            after = i + n
        elif wire == 5:
            after = i + 4
        else:  # groups: not in ONNX's schema
            raise Malformed(f"wire type {wire}")
        if after > end or number == 0:
            raise Malformed("a field past its message's end")
        yield number, wire, i, after, first
        i = after


def _header(number: int, length: int) -> bytes:
    out, value = bytearray(), (number << 3) | 2
    for v in (value, length):
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def _tensor(buf, start, end, stripped) -> bytes | None:
    """An initializer's bytes without a large raw_data (noted in ``stripped``); None when it
    keeps its data elsewhere (external data: onnx.load reads it)."""
    kept, raw, name = bytearray(), None, None
    for number, wire, vs, ve, first in _fields(buf, start, end):
        if number == _TENSOR_EXTERNAL:
            return None
        if number == _TENSOR_RAW and wire == 2 and ve - vs >= LARGE:
            raw = (vs, ve - vs)
            continue
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(buf[vs:ve]).decode("utf-8", "replace")
        kept += buf[first:ve]
    if raw is not None:
        if name is None or name in stripped:
            return None  # a weight that cannot be found again by its name
        stripped[name] = raw
    return bytes(kept)


def read(path):
    """(the model without its large weights' data, the memory map, {initializer name:
    (offset, length) of its raw_data}), or None where onnx.load should read the file."""
    import mmap

    import onnx
    try:
        with open(path, "rb") as f:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # an empty file, a device: onnx.load says what it is
        return None
    stripped, out = {}, bytearray()
    try:
        for number, wire, vs, ve, first in _fields(buf, 0, len(buf)):
            if number != _MODEL_GRAPH or wire != 2:
                out += buf[first:ve]
                continue
            graph = bytearray()
            for gnum, gwire, gvs, gve, gfirst in _fields(buf, vs, ve):
                if gnum != _GRAPH_INITIALIZER or gwire != 2:
                    graph += buf[gfirst:gve]
                    continue
                tensor = _tensor(buf, gvs, gve, stripped)
                if tensor is None:
                    return None
                graph += _header(gnum, len(tensor)) + tensor
            out += _header(number, len(graph)) + graph
        model = onnx.ModelProto()
        model.ParseFromString(bytes(out))
    except Exception:  # noqa: BLE001 - malformed for this walk: onnx.load gives the verdict
        return None
    return model, buf, stripped
