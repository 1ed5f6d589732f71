"""ONNX files as specs (issue 13): every spec survives spec -> module -> ONNX (PyTorch's
exporter) -> import row for row; the shipped example's weights come back so that cnncalc
computes what ONNX Runtime computes on the file; operators without a counterpart are named."""

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cnncalc
from cnncalc.cli import main
from cnncalc.interop.from_onnx import from_onnx
from conftest import ROOT, SPECS

SMALL = {"unet.cnn": "188x188x1", "inception_v3.cnn": "96x96x3", "conv3d.cnn": "8x32x32x3",
         "tcn.cnn": "100x8", "espcn.cnn": "16x16x1", "alexnet.cnn": "127x127x3"}


class Pictures(torch.nn.Module):
    """ONNX files take channels first, as PyTorch models do."""

    def __init__(self, net, rank):
        super().__init__()
        self.net, self.rank = net, rank

    def forward(self, x):
        return self.net(x.permute(0, *range(2, self.rank + 2), 1) if self.rank else x)


def _key(r):
    return (r.output, r.weights, r.biases, r.non_trainable, r.macs)


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.cnn")))
def test_every_spec_round_trips_through_onnx(tmp_path, name):
    net = cnncalc.read(SPECS / name)
    if name in SMALL:
        net = cnncalc.with_input(net, SMALL[name])
    elif net.input.rank == 2 and net.input.shape[0] > 64:
        net = cnncalc.with_input(net, "64x64x3")
    s = cnncalc.summarize(net)
    *spatial, c = net.input.shape
    picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pictures(cnncalc.to_torch(s).eval(), len(spatial)),
                          (torch.randn(1, c, *picture),), str(path), dynamo=False,
                          do_constant_folding=False)
    back = from_onnx(path).summary
    # an inference graph holds no dropout: those rows cannot come back
    kept = [_key(r) for r in s.rows if r.kind not in ("dropout", "droppath")]
    assert [_key(r) for r in back.rows] == kept


def test_example_weights_compute_what_onnx_runtime_computes(tmp_path):
    import onnxruntime as ort
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(ROOT / "examples" / "shapes.onnx", weights_out=str(weights))
    rng = np.random.default_rng(0)
    picture = rng.random((16, 16), dtype=np.float32)
    session = ort.InferenceSession(str(ROOT / "examples" / "shapes.onnx"),
                                   providers=["CPUExecutionProvider"])
    want = session.run(None, {"picture": picture[None, None]})[0][0]
    from cnncalc.backends.weights import apply, load_file
    net = cnncalc.to_torch(imported.summary).eval()
    apply(net, load_file(str(weights)))
    got = net(torch.tensor(picture)[None, :, :, None]).detach().numpy()[0]
    assert np.allclose(got, want, atol=1e-6)


def _tiny_onnx(path, op="Sin"):
    import onnx
    from onnx import TensorProto, helper
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node(op, ["c"], ["y"], name="wave")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, "H", "W"])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_unsupported_operators_and_open_sizes(tmp_path):
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path)
    run = CliRunner().invoke
    res = run(main, ["import", "onnx", str(path)])
    assert res.exit_code == 2 and "give them with --input" in res.output
    res = run(main, ["import", "onnx", str(path), "--input", "8x8x3"])
    assert res.exit_code == 2 and "wave: operator Sin" in res.output
    res = run(main, ["import", "onnx", str(path), "--input", "8x8x3", "--partial"])
    assert res.exit_code == 0 and "conv 3x3x4 nobias name=conv\n# import stopped at node wave" in res.stdout
    _tiny_onnx(path, "Relu")
    res = run(main, ["import", "onnx", str(path), "--input", "8x8x3"])
    assert res.exit_code == 0 and "conv 3x3x4 nobias name=conv" in res.stdout
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    res = run(main, ["import", "onnx", str(bad)])
    assert res.exit_code == 2 and "not an ONNX file" in res.output


def _saved(path, nodes, initializers, shape, opset):
    """An ONNX file by hand: input x of ``shape``, the nodes, output y."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]),
              str(path))
    return path


def _computes_what_onnx_runtime_does(path, imported, weights, x):
    """cnncalc's module on the imported weights, against ONNX Runtime on the file."""
    import onnxruntime as ort
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    from cnncalc.backends.weights import apply, load_file
    net = cnncalc.to_torch(imported.summary).eval()
    apply(net, load_file(str(weights)))
    got = net(torch.tensor(x).permute(0, 2, 3, 1)).detach().permute(0, 3, 1, 2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# every ONNX operator without attributes that computes one of cnncalc's activations (the
# operator names of the ONNX specification), after a convolution: cnncalc's module on the
# imported weights computes what ONNX Runtime computes on the file
@pytest.mark.parametrize("op, word", [
    ("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("HardSwish", "hardswish"),
    ("Elu", "elu"), ("Selu", "selu"), ("Mish", "mish")])
def test_every_onnx_activation_imports(tmp_path, op, word):
    from onnx import TensorProto, helper
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           rng.normal(size=108).astype(np.float32).tolist())
    # nodes named as a hand-made file names them (no exporter's scopes), one not at all: the
    # weights are placed by the node's name, or its output's
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="" if op == "Relu" else "conv"),
             helper.make_node(op, ["c"], ["y"], name="act")]
    path = _saved(tmp_path / "acts.onnx", nodes, [w], [1, 3, 6, 7], 18)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(path, weights_out=str(weights))
    assert " ".join(r.layer.describe() for r in imported.summary.rows) == \
        f"conv 3x3x4 nobias {word}"  # the activation a layer of its own, or fused
    assert imported.summary.rows[0].name == ("c" if op == "Relu" else "conv")
    x = rng.normal(size=(1, 3, 6, 7)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


def test_batchnorm_keeps_the_models_epsilon(tmp_path):
    # PyTorch's and ONNX's batchnorm add 1e-5 to the variance, Keras' 1e-3: with moving
    # variances near 1e-4 the two differ by a factor of three, so the imported layer must
    # keep the file's epsilon for cnncalc to compute what ONNX Runtime computes
    import onnxruntime as ort
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.BatchNorm2d(4, eps=1e-3)).eval()
    for bn in (model[2], model[4]):
        bn.running_var.uniform_(1e-4, 2e-4)
        bn.running_mean.uniform_(-0.1, 0.1)
    path, weights = tmp_path / "bn.onnx", tmp_path / "w.safetensors"
    x = torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, do_constant_folding=False,
                          input_names=["x"])
    imported = from_onnx(path, weights_out=str(weights))
    assert [r.layer.describe() for r in imported.summary.rows if r.kind == "batchnorm"] == \
        ["batchnorm eps 1e-05", "batchnorm"]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    from cnncalc.backends.weights import apply, load_file
    net = cnncalc.to_torch(imported.summary).eval()
    apply(net, load_file(str(weights)))
    got = net(x.permute(0, 2, 3, 1)).detach().permute(0, 3, 1, 2).numpy()
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [13, 17, 20])
def test_gelu_and_layernorm_written_out_before_their_opsets_import(tmp_path, opset):
    """Exporters write GELU as x * 0.5 * (1 + erf(x / sqrt 2)) before opset 20, and layer
    normalisation as nine nodes before opset 17: ConvNeXt-T exported at 13, 17 and 20
    imports back to the spec's layers, GELU, layernorm and all."""
    import warnings

    import torch

    from cnncalc.interop.to_pytorch import load_class
    s = cnncalc.summarize(SPECS / "convnext_tiny.cnn", input="64x64x3")
    model = load_class(cnncalc.to_pytorch_code(s))().eval()
    path = tmp_path / f"convnext_{opset}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False,
                          opset_version=opset, input_names=["input"])
    imported = cnncalc.from_onnx(str(path))
    assert imported.text.count(" gelu") == 18  # one per ConvNeXt-T block (3 + 3 + 9 + 3)
    assert imported.summary.totals.trainable == 28_589_128  # torchvision's convnext_tiny
    assert cnncalc.check(s, against=str(path)).ok


def test_nested_sequential_scopes_name_layers_and_weights_load(tmp_path):
    """nn.Sequential numbers its children, so the exporter's scopes start with a digit
    ('4.body.0'): the names are PyTorch's own (the language reads a name that starts with an
    index, name=2.body.0), the import counts what PyTorch
    counts, and the weights read lazily (shapes first) compute what ONNX Runtime computes."""

    class Residual(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(c, c, 3, padding=1))

        def forward(self, x):
            return torch.relu(x + self.body(x))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), Residual(8),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 5)).eval()
    path, weights = tmp_path / "seq.onnx", tmp_path / "w.safetensors"
    x = torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    imported = from_onnx(path, weights_out=str(weights))
    assert "name=2.body.0" in imported.text
    _computes_what_onnxruntime_computes(imported, model, path, weights, x)


def _computes_what_onnxruntime_computes(imported, model, path, weights, x):
    """The model's count, and cnncalc's module with the weights --weights-out saved
    computing what ONNX Runtime computes on the file (a map compared channels first)."""
    import onnxruntime as ort
    from cnncalc.backends.weights import apply, load_file
    assert imported.summary.totals.trainable == sum(p.numel() for p in model.parameters())
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    net = cnncalc.to_torch(imported.summary).eval()
    apply(net, load_file(str(weights)))
    with torch.no_grad():
        got = net(x.permute(0, 2, 3, 1))
    got = got.permute(0, 3, 1, 2) if got.dim() == 4 else got
    assert np.allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("external", [False, True], ids=["in-file", "external-data"])
def test_weights_stay_in_the_file_until_asked_for(tmp_path, external):
    """The import walks the file's protobuf and parses all but its large weights' data
    (ResNet-50: 100 MB left unread); --weights-out then reads them from the file, and
    cnncalc's module with them computes what ONNX Runtime computes. A file that keeps its
    weights in external data is read by onnx.load, as before."""
    import onnx
    from cnncalc.interop.onnx_file import read
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(64, 8, 3), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 4 * 4, 10)).eval()
    path, weights = tmp_path / "m.onnx", tmp_path / "w.safetensors"
    x = torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    if external:
        proto = onnx.load(str(path))
        onnx.save(proto, str(path), save_as_external_data=True, size_threshold=0)
    light = read(str(path))
    if external:
        assert light is None
    else:  # the convs' and the dense layer's weights (5,120 to 18,432 bytes): left unread
        assert {n.split(".")[-1] for n in light[2]} == {"weight"} and len(light[2]) == 3
    _computes_what_onnxruntime_computes(from_onnx(path, weights_out=str(weights)), model,
                                        path, weights, x)


@pytest.mark.parametrize("affine", [True, False])
def test_instance_normalization_imports_and_computes_the_same(tmp_path, affine):
    """ONNX's InstanceNormalization always takes a scale and a bias: the file's weights
    when PyTorch's InstanceNorm2d learns them ('instancenorm affine'), Constant nodes of
    ones and zeros when it does not ('instancenorm'); with the file's weights, cnncalc's
    module computes what ONNX Runtime computes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.InstanceNorm2d(
        8, affine=affine, eps=1e-3)).eval()
    if affine:
        with torch.no_grad():
            model[1].weight.uniform_(0.5, 1.5)
            model[1].bias.uniform_(-0.5, 0.5)
    path, weights = tmp_path / "in.onnx", tmp_path / "w.safetensors"
    x = torch.rand(1, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    imported = from_onnx(path, weights_out=str(weights))
    assert [r.layer.describe() for r in imported.summary.rows][1] == \
        ("instancenorm affine eps 0.001" if affine else "instancenorm eps 0.001")
    _computes_what_onnxruntime_computes(imported, model, path, weights, x)


@pytest.mark.parametrize("auto_pad, stride", [("SAME_UPPER", 2), ("SAME_UPPER", 1),
                                              ("SAME_LOWER", 2)])
def test_auto_pad_is_keras_same_at_any_stride(tmp_path, auto_pad, stride):
    """ONNX's SAME_UPPER pads ceil(n / s) outputs' worth, the extra pixel after: Keras'
    'same' (TensorFlow exports write it), which ONNX Runtime computes the same; SAME_LOWER
    puts the extra pixel before, which cnncalc has no word for: refused by name."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(1)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           rng.normal(size=108).astype(np.float32).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad=auto_pad,
                              strides=[stride, stride])]
    path = _saved(tmp_path / "same.onnx", nodes, [w], [1, 3, 8, 9], 17)
    if auto_pad == "SAME_LOWER":
        res = CliRunner().invoke(main, ["import", "onnx", str(path)])
        assert res.exit_code == 2 and "conv: auto_pad SAME_LOWER" in res.output
        return
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(path, weights_out=str(weights))
    assert imported.summary.rows[0].layer.describe() == \
        "conv 3x3x4 same" + (f" stride {stride}" if stride > 1 else "") + " nobias"
    x = rng.normal(size=(1, 3, 8, 9)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


@pytest.mark.parametrize("order", ["x * t", "t * x"])
def test_mish_spelt_out_before_opset_18_imports_as_mish(tmp_path, order):
    """Before opset 18 an exporter writes Mish as x * tanh(softplus(x)): one 'mish' row,
    which computes what ONNX Runtime computes on the file."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(2)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           rng.normal(size=108).astype(np.float32).tolist())
    product = ["c", "t"] if order == "x * t" else ["t", "c"]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Softplus", ["c"], ["s"], name="soft"),
             helper.make_node("Tanh", ["s"], ["t"], name="tanh"),
             helper.make_node("Mul", product, ["y"], name="mish")]
    path = _saved(tmp_path / "mish.onnx", nodes, [w], [1, 3, 6, 7], 17)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(path, weights_out=str(weights))
    assert [r.layer.describe() for r in imported.summary.rows] == ["conv 3x3x4 nobias", "mish"]
    x = rng.normal(size=(1, 3, 6, 7)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


@pytest.mark.parametrize("op", ["BatchNormalization", "InstanceNormalization"])
def test_a_norm_without_its_epsilon_has_onnxs_default(tmp_path, op):
    """ONNX's norms default epsilon to 1e-5 where a file leaves it out (PyTorch's exporter
    writes it; other producers need not): read as that, computing what ONNX Runtime does."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(3)
    names = ("g", "b", "m", "v") if op == "BatchNormalization" else ("g", "b")
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [4], (rng.random(4) + 0.5).astype(
        np.float32).tolist()) for n in names]
    nodes = [helper.make_node(op, ["x", *names], ["y"], name="norm")]
    path = _saved(tmp_path / "norm.onnx", nodes, inits, [1, 4, 5, 6], 15)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(path, weights_out=str(weights))
    assert imported.summary.rows[0].layer.describe() == {  # instancenorm's default is 1e-5
        "BatchNormalization": "batchnorm eps 1e-05",
        "InstanceNormalization": "instancenorm affine"}[op]
    x = rng.normal(size=(1, 4, 5, 6)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


def test_weights_of_nodes_no_output_reads_are_named(tmp_path):
    """A branch an exporter left behind (a conv whose result nothing reads): the spec is
    what computes the output, and says which weights of the file it leaves out, as the
    PyTorch import does for modules that never run; the command line says it too."""
    from onnx import helper, numpy_helper
    live, dead = np.zeros((4, 3, 3, 3), np.float32), np.zeros((5, 3, 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
             helper.make_node("Conv", ["x", "w2"], ["z"], name="unused_conv")]
    path = _saved(tmp_path / "dead.onnx", nodes, [numpy_helper.from_array(live, "w"),
                                                 numpy_helper.from_array(dead, "w2")],
                  [1, 3, 8, 8], 13)
    imported = from_onnx(str(path))
    assert imported.summary.totals.params == live.size
    assert f"# not in this spec: {dead.size:,} weight values of nodes whose results no " \
           "output reads (unused_conv)" in imported.text
    res = CliRunner().invoke(main, ["import", "onnx", str(path), "-o", str(tmp_path / "d.cnn")])
    assert res.exit_code == 0 and "note: not in this spec: 15 weight values" in res.output


def test_a_negative_pad_crops_as_onnx_runtime_does(tmp_path):
    """ONNX's Pad crops where a pad is negative: a crop, then the padding left, before a
    convolution that does not take it as its own padding."""
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    pads = numpy_helper.from_array(np.array([0, 0, -1, 2, 0, 0, 1, -2], np.int64), "pads")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
             helper.make_node("Conv", ["p", "w"], ["y"], name="conv")]
    path = _saved(tmp_path / "crop.onnx", nodes, [w, pads], [1, 3, 8, 9], 13)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(path, weights_out=str(weights))
    assert [r.layer.describe() for r in imported.summary.rows] == \
        ["crop 0x2x1x0", "zeropad 2x0x0x1", "conv 3x3x4 nobias"]
    x = rng.normal(size=(1, 3, 8, 9)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


@pytest.mark.parametrize("opset", [13, 17])
def test_groupnorm_as_pytorch_exports_it_imports_and_computes_the_same(tmp_path, opset):
    """PyTorch writes GroupNorm as Reshape to (N, G, -1), InstanceNormalization, Reshape
    back, Mul and Add per channel: read as one 'groupnorm G' with its epsilon and weights,
    which compute what ONNX Runtime computes on the file."""
    from torch import nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(4, 8, eps=1e-4)).eval()
    with torch.no_grad():
        module[1].weight.uniform_(0.5, 2)
        module[1].bias.uniform_(-1, 1)
    path = tmp_path / "gn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3, 10, 12),), str(path), input_names=["x"],
                          opset_version=opset, dynamo=False)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(str(path), weights_out=str(weights))
    norm = imported.summary.rows[1].layer
    assert (norm.kind, norm.groups, norm.eps) == ("groupnorm", 4, 1e-4)
    assert imported.summary.totals.params == sum(p.numel() for p in module.parameters())
    x = np.random.default_rng(3).normal(size=(1, 3, 10, 12)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)


@pytest.mark.parametrize("channels_last", [True, False])
def test_global_response_norm_as_exported_imports_and_computes_the_same(tmp_path,
                                                                       channels_last):
    """timm's GlobalResponseNorm (ConvNeXt V2) exports as ReduceL2, ReduceMean, Add, Div and
    products and sums: read as one 'grn' with its epsilon and weights, on a channels-last
    tensor (ConvNeXt V2's MLP) or a channels-first one, computing what ONNX Runtime does."""
    from timm.layers.grn import GlobalResponseNorm
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.grn = GlobalResponseNorm(8, eps=1e-5, channels_last=channels_last)

        def forward(self, x):
            x = self.conv(x)
            if channels_last:
                return self.grn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return self.grn(x)
    torch.manual_seed(0)
    module = Block().eval()
    with torch.no_grad():
        module.grn.weight.uniform_(0.5, 2)
        module.grn.bias.uniform_(-1, 1)
    path = tmp_path / "grn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3, 9, 11),), str(path), input_names=["x"],
                          opset_version=17, dynamo=False)
    weights = tmp_path / "w.safetensors"
    imported = from_onnx(str(path), weights_out=str(weights))
    grn = imported.summary.rows[-1].layer
    assert (grn.kind, grn.eps) == ("grn", 1e-5)
    assert imported.summary.totals.params == sum(p.numel() for p in module.parameters())
    x = np.random.default_rng(4).normal(size=(1, 3, 9, 11)).astype(np.float32)
    _computes_what_onnx_runtime_does(path, imported, weights, x)
