"""Hostile foreign files: every importer reads the example files with one value changed
(a Keras JSON value or type, a Darknet key, an ONNX attribute, dimension or operator) and
either imports or refuses with cnncalc's own error: never another exception, never a
value copied into the spec as statements, never unbounded time. CNNCALC_IMPORT_EXAMPLES
sets how many files per importer (make fuzz runs more)."""

import copy
import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.errors import CnnCalcError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUNS = int(os.environ.get("CNNCALC_IMPORT_EXAMPLES", "60"))
FUZZ = settings(max_examples=RUNS, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
INJECTED = "repeat 3 { dense 5 }"
HOSTILE = [0, -1, 1.5, 10**12, 10**30, int("9" * 50), "", "x", "10\n" + INJECTED,
           "0.5 | " + INJECTED, None, True, [], [3], [0, 0], {"a": 1}, "same", "relu6",
           float("inf"), "3x3", "name=evil"]


def _imports_or_refuses(read, path):
    """Runs the importer; anything but success or a CnnCalcError fails the test."""
    try:
        imported = read(path)
    except CnnCalcError as e:
        assert "Traceback" not in str(e)
        return None
    assert INJECTED not in imported.text  # a foreign string never becomes statements
    assert imported.summary.rows  # what was written is a spec the calculator reads
    return imported


# --- Keras -------------------------------------------------------------------------------

def _keras_config():
    with zipfile.ZipFile(EXAMPLES / "residual.keras") as z:
        return json.loads(z.read("config.json"))


def _leaves(node, path=()):
    """Every (path, value) inside a JSON document."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))


KERAS = _keras_config()
KERAS_PLACES = [p for p, _ in _leaves(KERAS) if p]


def _set(doc, path, value, delete=False):
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KERAS_PLACES), st.sampled_from(HOSTILE),
                          st.booleans()), min_size=1, max_size=3))
def test_keras_files_with_hostile_values(tmp_path_factory, changes):
    doc = copy.deepcopy(KERAS)
    for place, value, delete in changes:
        try:
            _set(doc, place, value, delete)
        except (KeyError, IndexError, TypeError):  # an earlier change removed the place
            pass
    path = tmp_path_factory.mktemp("k") / "model.json"
    path.write_text(json.dumps(doc))
    _imports_or_refuses(cnncalc.from_keras, path)


def test_keras_string_values_never_become_statements(tmp_path):
    doc = copy.deepcopy(KERAS)
    dense = next(layer for layer in doc["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = "10\n" + INJECTED
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CnnCalcError, match="not a number or a word"):
        cnncalc.from_keras(path)


def test_a_keras_zip_bomb_is_read_no_further_than_the_limit(tmp_path):
    from cnncalc.limits import MAX_ARCHIVE_BYTES
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:  # 2 KiB packed, 65 MiB unpacked
        z.writestr("config.json", b" " * (MAX_ARCHIVE_BYTES + 10))
    assert path.stat().st_size < 200_000
    with pytest.raises(CnnCalcError, match="over 64 MiB"):
        cnncalc.from_keras(path)


# --- Darknet -----------------------------------------------------------------------------

CFG = (EXAMPLES / "yolov3.cfg").read_text().splitlines()
CFG_KEYS = [i for i, line in enumerate(CFG) if "=" in line and not line.startswith("#")]
CFG_VALUES = ["0", "-1", "-999", "1" * 30, "abc", "1.5", "0.5 | " + INJECTED, "", "leaky\n[route]",
              "1,2,3", "99999", "-1, -99"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(CFG_KEYS), st.sampled_from(CFG_VALUES)),
                min_size=1, max_size=3))
def test_darknet_cfgs_with_hostile_values(tmp_path_factory, changes):
    lines = list(CFG)
    for i, value in changes:
        key = lines[i].split("=", 1)[0]
        lines[i] = f"{key}={value}"
    path = tmp_path_factory.mktemp("d") / "net.cfg"
    path.write_text("\n".join(lines))
    _imports_or_refuses(cnncalc.from_darknet, path)


def test_darknet_stride_zero_and_huge_files_are_refused_quickly(tmp_path):
    path = tmp_path / "zero.cfg"
    path.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\nsize=2\nstride=0\n")
    with pytest.raises(CnnCalcError, match="'stride' should be a whole number, got '0'"):
        cnncalc.from_darknet(path)
    from cnncalc.limits import MAX_FOREIGN_LAYERS
    path = tmp_path / "huge.cfg"
    path.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n"
                    + "[convolutional]\nfilters=3\nsize=1\n" * (MAX_FOREIGN_LAYERS + 5))
    with pytest.raises(CnnCalcError, match="more than 100,000 sections"):
        cnncalc.from_darknet(path)


# --- ONNX --------------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")
ONNX = onnx.load(str(EXAMPLES / "shapes.onnx"))


@FUZZ
@given(st.data())
def test_onnx_files_with_hostile_fields(tmp_path_factory, data):
    model = onnx.ModelProto()
    model.CopyFrom(ONNX)
    graph = model.graph
    for _ in range(data.draw(st.integers(1, 3))):
        what = data.draw(st.sampled_from(["attribute", "dims", "op", "input", "drop"]))
        if what == "attribute":
            attrs = [a for n in graph.node for a in n.attribute if a.ints or a.HasField("i")]
            a = data.draw(st.sampled_from(attrs))
            value = data.draw(st.sampled_from([0, -1, 10**12, 7]))
            if a.ints:
                a.ints[data.draw(st.integers(0, len(a.ints) - 1))] = value
            else:
                a.i = value
        elif what == "dims":
            t = data.draw(st.sampled_from(list(graph.initializer)))
            t.dims[data.draw(st.integers(0, len(t.dims) - 1))] = data.draw(
                st.sampled_from([0, 10**12, 3]))
        elif what == "op":
            data.draw(st.sampled_from(list(graph.node))).op_type = data.draw(
                st.sampled_from(["Conv", "Relu", "Gemm", "NoSuchOp", "Concat", "Add"]))
        elif what == "input":
            node = data.draw(st.sampled_from(list(graph.node)))
            node.input[0] = data.draw(st.sampled_from(["", "missing", graph.input[0].name]))
        else:
            del graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
    path = tmp_path_factory.mktemp("o") / "model.onnx"
    path.write_bytes(model.SerializeToString())
    _imports_or_refuses(cnncalc.from_onnx, str(path))


@FUZZ
@given(st.data())
def test_onnx_files_with_hostile_bytes(tmp_path_factory, data):
    """The import walks the file's protobuf by hand (to leave the weights' data unread):
    bytes cut short, flipped or inserted anywhere are imported or refused with a
    CnnCalcError, never another exception. A tensor as large as the walk leaves unread is
    in the file."""
    import numpy as np
    from onnx import numpy_helper
    model = onnx.ModelProto()
    model.CopyFrom(ONNX)
    model.graph.initializer.append(numpy_helper.from_array(np.ones(2048, np.float32), "big"))
    raw = bytearray(model.SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        what = data.draw(st.sampled_from(["cut", "flip", "insert"]))
        if what == "cut":
            del raw[at:]
            if not raw:
                raw = bytearray(b"\x08")
        elif what == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        else:
            raw[at:at] = bytes([data.draw(st.integers(0, 255))])
    path = tmp_path_factory.mktemp("o") / "model.onnx"
    path.write_bytes(bytes(raw))
    _imports_or_refuses(cnncalc.from_onnx, str(path))


@pytest.mark.parametrize("first, said", [
    (10**12, "9,000,000,000,000 values"),       # past the limit: refused before its data
    (1000, "need 36,000 bytes, its data has 288")])  # within it, but not what the file holds
def test_onnx_weights_claiming_more_than_they_hold_are_refused_unread(tmp_path, first, said):
    model = onnx.ModelProto()
    model.CopyFrom(ONNX)
    model.graph.initializer[0].dims[0] = first  # conv1's weight: 1x1x3x3 float32, 288 bytes
    path = tmp_path / "huge.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(CnnCalcError, match=said):
        cnncalc.from_onnx(str(path), weights_out=str(tmp_path / "w.safetensors"))
    assert not (tmp_path / "w.safetensors").exists()


@pytest.mark.parametrize("read", [cnncalc.from_keras, cnncalc.from_darknet, cnncalc.from_onnx],
                         ids=["keras", "darknet", "onnx"])
def test_a_missing_file_or_a_folder_is_said_so(tmp_path, read):
    with pytest.raises(CnnCalcError, match="no such file"):
        read(str(tmp_path / "missing.model"))
    with pytest.raises(CnnCalcError, match="is a folder"):
        read(str(tmp_path))
