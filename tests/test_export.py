"""'cnncalc export' (issue 14): every spec in specs/ becomes a standalone PyTorch file that
is ruff-clean, runs as a script, has the published parameter counts and the spec's shapes,
and computes what cnncalc's own module computes with the same weights; and an ONNX file
that ONNX Runtime runs at any batch and that imports back to the same layers."""

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cnncalc
from cnncalc.cli import main
from cnncalc.interop.to_pytorch import load_class
from cnncalc.layers.base import picture
from conftest import SPECS

SMALL = {"unet.cnn": "188x188x1", "conv3d.cnn": "8x32x32x3"}


def _summary(name, size=None):
    net = cnncalc.read(SPECS / name)
    size = size or SMALL.get(name)
    return cnncalc.summarize(cnncalc.with_input(net, size) if size else net)


def _nchw(shape):
    return (shape[-1], *picture(shape[:-1]))


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.cnn")))
def test_every_spec_exports_with_its_shapes_and_counts(name):
    s = _summary(name)
    model = load_class(cnncalc.to_pytorch_code(s))().eval()
    with torch.no_grad():
        y = model(torch.zeros(1, *_nchw(s.network.input.shape)))
    ys = y if isinstance(y, tuple) else (y,)
    assert [tuple(t.shape[1:]) for t in ys] == [_nchw(shape) for _, shape in s.outputs]
    assert sum(p.numel() for p in model.parameters()) == s.totals.trainable
    assert sum(b.numel() for n, b in model.named_buffers()
               if not n.endswith("num_batches_tracked")) == s.totals.non_trainable


@pytest.mark.parametrize("name,published", [
    ("resnet18.cnn", 11_689_512),       # torchvision resnet18
    ("vgg16.cnn", 138_357_544),         # torchvision / Keras VGG16
    ("convnext_tiny.cnn", 28_589_128),  # torchvision convnext_tiny
    ("efficientnet_b0.cnn", 5_288_548),  # torchvision efficientnet_b0
])
def test_the_file_runs_as_a_script_and_is_ruff_clean(tmp_path, name, published):
    path = tmp_path / "net.py"
    res = CliRunner().invoke(main, ["export", str(SPECS / name), "--to", "pytorch", "-o",
                                    str(path)])
    assert res.exit_code == 0, res.output
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["(1, 1000)", f"{published} parameters"]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select",
                           "E,F,W,I", "--ignore", "E501", str(path)], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout


def _copy_weights(ours, theirs):
    """cnncalc's module holds kernels in the spec's axis order (width first); the exported
    file as PyTorch does. Both name them as the spec does; cnncalc's module wraps some
    (conv1.op.weight, norm.norm.weight, layer_scale.gamma) where the file does not."""
    def named(module):
        return {re.sub(r"\.(op|norm|gamma)(?=\.|$)", "", n): p
                for n, p in module.named_parameters()}
    mine, other = named(ours), named(theirs)
    assert sorted(mine) == sorted(other)
    with torch.no_grad():
        for a, b in ((mine[k], other[k]) for k in mine):
            if a.dim() >= 4:
                a = a.transpose(-2, -1)
            b.copy_(a.reshape(b.shape))


@pytest.mark.parametrize("name,size", [
    ("resnet18.cnn", "64x48x3"), ("mobilenet_v3_small.cnn", "64x64x3"),
    ("convnext_tiny.cnn", "64x64x3"), ("unet.cnn", "188x188x1"), ("fpn.cnn", "64x64x3"),
    ("shufflenet_v2_x1_0.cnn", "64x64x3"), ("inception3a.cnn", None), ("tcn.cnn", None),
    ("espcn.cnn", "12x10x1"), ("densenet_block.cnn", None),
])
def test_the_file_computes_what_cnncalcs_module_computes(name, size):
    _computes_the_same(_summary(name, size))


@pytest.mark.parametrize("text", [
    # Keras' 'same' transposed convolution with an odd kernel crops one more row after
    "input 9x7x3 | deconv 3x3x8 same stride 2 | conv 3x3x4",
    "input 9x7x3 | deconv 4x3x8 same stride 3 relu",
    "input 12x10x3 | crop 1x2 | conv 3x3x4 | crop 2x1x0x3",
    "input 40x2 | deconv 5x4 same stride 2",
    # Keras' Rescaling, adapted Normalization, half-affine batchnorm, keepdims
    "input 8x8x3 | rescale 0.0078431 minus 1 | normalize stats | conv 3x3x4 | "
    "batchnorm noscale | batchnorm nocenter | globalavgpool keepdims | conv 1x1x2",
], ids=["deconv-same-odd", "deconv-same-stride-3", "crop", "deconv-same-1d", "keras-kinds"])
def test_every_kind_exports_and_computes_the_same(text):
    _computes_the_same(cnncalc.summarize(text))


def _computes_the_same(s):
    ours = cnncalc.to_torch(s).eval()
    theirs = load_class(cnncalc.to_pytorch_code(s))().eval()
    torch.manual_seed(0)
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.1)
    _copy_weights(ours, theirs)
    shape = s.network.input.shape
    x = torch.randn(2, *_nchw(shape))  # N, C, H, W
    rank = len(shape) - 1
    with torch.no_grad():
        want = ours(x.permute(0, *range(2, rank + 2), 1) if rank else x)  # cnncalc: N, H, W, C
        got = theirs(x)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for w, g in zip(want, got, strict=True):
        r = g.dim() - 2
        g = g.permute(0, *range(2, r + 2), 1) if r > 0 else g
        assert torch.allclose(w, g, rtol=1e-4, atol=1e-4), (w - g).abs().max()


def test_onnx_runs_at_any_batch_and_imports_back(tmp_path):
    import onnx
    import onnxruntime as ort
    s = _summary("resnet18.cnn", "64x64x3")
    path = tmp_path / "resnet18.onnx"
    torch_model = load_class(cnncalc.to_pytorch_code(s))().eval()
    cnncalc.to_onnx(s, str(path), module=torch_model)
    assert onnx.load(str(path)).graph.value_info  # every tensor's shape is in the file
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    (y,) = ort.InferenceSession(str(path)).run(None, {"input": x})  # batch 3, exported at 1
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    assert y.shape == (3, 1000) and np.allclose(y, want, atol=1e-4)
    res = CliRunner().invoke(main, ["check", str(SPECS / "resnet18.cnn"), "--input",
                                    "64x64x3", "--against", str(path)])
    assert res.exit_code == 0 and "agree: 68 steps" in res.output, res.output


@pytest.mark.parametrize("name", ["unet.cnn", "convnext_tiny.cnn", "fpn.cnn",
                                  "efficientnet_b0.cnn", "inception3a.cnn"])
def test_onnx_files_import_to_the_spec_they_came_from(tmp_path, name):
    s = _summary(name)
    path = tmp_path / "net.onnx"
    cnncalc.to_onnx(s, str(path))
    assert cnncalc.check(s, against=str(path)).ok


@pytest.mark.parametrize("args,message", [
    (["-e", "input 8x8x3 | reshape 64x3", "--to", "pytorch"],
     "layer 'reshape_1' (reshape 64x3): cnncalc cannot write 'reshape' as PyTorch source"),
    (["-e", "input 8x8x3 | conv 3x3x4", "--to", "onnx"], "--to onnx needs -o FILE.onnx"),
    (["-e", "input WxHx3 | conv 3x3x4", "--to", "pytorch"], "the input has open sizes (WxHx3)"),
    (["-e", "input 8x8x3 | conv 3x3x4", "--to", "pytorch", "-o", "/no/such/folder/x.py"],
     "does not exist"),
])
def test_what_cannot_be_written_is_said(args, message):
    res = CliRunner().invoke(main, ["export", *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert "Traceback" not in res.output


def test_onnx_of_open_sizes_has_a_dynamic_height_and_width(tmp_path):
    """A fully convolutional spec at open sizes: one file, run by ONNX Runtime at several
    exact sizes, gives the calculator's output at each."""
    import onnxruntime as ort
    text = "input ?x?x3 | conv 3x3x8 same relu | maxpool 2 | conv 3x3x4 same | upsample 2"
    path = tmp_path / "fcn.onnx"
    res = CliRunner().invoke(main, ["export", "-e", text, "--to", "onnx", "-o", str(path)])
    assert res.exit_code == 0, res.output
    assert "input (batch, 3, height, width)" in res.output
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    for w, h in ((64, 48), (130, 22), (8, 300)):
        (y,) = session.run(None, {"input": np.zeros((2, 3, h, w), np.float32)})
        out = cnncalc.summarize(text, input=f"{w}x{h}x3").output  # width first, channels last
        assert y.shape == (2, out[2], out[1], out[0]), (w, h)


def test_onnx_of_open_sizes_refuses_a_spec_that_fixes_a_size(tmp_path):
    res = CliRunner().invoke(main, ["export", str(SPECS / "unet.cnn"), "--input", "?x?x1",
                                    "--to", "onnx", "-o", str(tmp_path / "unet.onnx")])
    assert res.exit_code == 2 and "unet fixes a size while it is traced" in res.output
    assert not (tmp_path / "unet.onnx").exists()


class _Live:
    """Bytes of every tensor an operation makes, from its making until PyTorch frees it
    (a TorchDispatchMode sees the merges a forward writes as plain Python too); the
    module's own weights are not activations."""

    def __init__(self, module):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils import _pytree as pytree
        import weakref
        live = self
        self.now = self.peak = 0
        self.sizes = {}
        known = {p.untyped_storage().data_ptr() for p in module.parameters()} | \
            {b.untyped_storage().data_ptr() for b in module.buffers()}

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in pytree.tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        st = t.untyped_storage()
                        key = st.data_ptr()
                        if key and key not in live.sizes and key not in known:
                            live.sizes[key] = st.nbytes()
                            live.now += st.nbytes()
                            live.peak = max(live.peak, live.now)
                            weakref.finalize(st, live.free, key)
                return out
        self.mode = Mode()

    def free(self, key):
        self.now -= self.sizes.pop(key, 0)


@pytest.mark.parametrize("name,size", [("resnet50.cnn", "64x64x3"), ("unet.cnn", "188x188x1"),
                                       ("densenet_block.cnn", None),
                                       ("convnext_tiny.cnn", "64x64x3")])
def test_the_exported_forward_holds_what_the_spec_says(name, size):
    """The exported forward deletes each branch and saved tensor after its last read, so a
    run of it holds the inference peak cnncalc states, to the byte (ResNet-50 as exported
    held 2.83 times it, the DenseNet block 1.33 times). ConvNeXt's GELU cannot run in place:
    its result lives beside the 4C map it reads (the estimate was 0.67 of this run)."""
    from cnncalc.analysis.memory import estimate
    s = _summary(name, size)
    model = load_class(cnncalc.to_pytorch_code(s))().eval()
    live = _Live(model)
    x = torch.randn(1, *_nchw(s.network.input.shape))  # the caller's: not counted
    with torch.no_grad(), live.mode:
        model(x)
    assert live.peak == estimate(s).peak_activation_bytes
