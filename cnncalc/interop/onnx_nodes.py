"""What the ONNX importer reads of a node: its attributes, the exporter's scope it names,
whether a pad before it runs in its module."""

from __future__ import annotations


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


def _inside(node, pad_op) -> bool:
    """A pad belongs to the layer after it when that layer runs in the pad's module (the
    exporter numbers a module's later calls: conv_1_1 holds the pad, conv_1/op_1 the conv)."""
    import re
    parts = [p for p in node.name.split("/") if p][:-1]
    where, pad = "/".join(parts), pad_op.meta["where"]
    parent = "/".join(parts[:-1])
    return where == pad or where.startswith(pad + "/") or parent == re.sub(r"_\d+$", "", pad)

