"""Bring your own model (issue 13): a PyTorch module imports as a spec whose summary equals
what PyTorch measures on the module itself; every spec in specs/ and random specs survive
spec -> module -> import -> spec row for row; what has no counterpart is refused by name."""

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

import cnncalc
from cnncalc.cli import main
from cnncalc.interop.from_torch import from_torch
from conftest import ROOT, SPECS
from families import models

SMALL = {"unet.cnn": "188x188x1", "inception_v3.cnn": "96x96x3", "conv3d.cnn": "8x32x32x3",
         "tcn.cnn": "100x8", "espcn.cnn": "16x16x1", "alexnet.cnn": "127x127x3"}


def _key(r):
    return (r.output, r.weights, r.biases, r.non_trainable, r.macs)


def _round_trip(network, ordered=True):
    s = cnncalc.summarize(network)
    back = from_torch(cnncalc.to_torch(s), "x".join(map(str, network.input.shape))).summary
    mine, theirs = [_key(r) for r in s.rows], [_key(r) for r in back.rows]
    if ordered:
        assert theirs == mine
    else:  # 'add ID' may come back as the same merge written as a block (its row first)
        assert sorted(map(repr, theirs)) == sorted(map(repr, mine))
    assert [sh for _, sh in back.outputs] == [sh for _, sh in s.outputs]


def _degenerate(summary) -> bool:
    """Designs PyTorch runs as nothing: a merge of one branch (the identity), or a tensor
    merged with (a crop of) itself. Their rows cannot come back from a module."""
    return any((r.branches is not None and len(r.branches) == 1 and r.kind != "output")
               or (r.source is not None and r.source.index == r.index - 1
                   and r.kind == "concat" and r.layer.crop) for r in summary.rows)


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.cnn")))
def test_every_spec_round_trips(name):
    net = cnncalc.read(SPECS / name)
    if name in SMALL:
        net = cnncalc.with_input(net, SMALL[name])
    elif net.input.rank == 2 and net.input.shape[0] > 64:
        net = cnncalc.with_input(net, "64x64x3")
    _round_trip(net)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(__import__("test_property").graph())
def test_random_graphs_round_trip(text):
    try:
        net = cnncalc.parse(text)
        s = cnncalc.summarize(net)
    except cnncalc.SpecDesignError:
        return
    if not _degenerate(s):
        _round_trip(net, ordered=False)


def _measured(module, shape_nchw):
    """PyTorch's own figures for a module: parameters, buffers, MACs, output shape."""
    from torch.utils.flop_counter import FlopCounterMode
    module.eval()
    x = torch.randn(1, *shape_nchw)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for n, b in module.named_buffers() if "num_batches" not in n)
    return params, buffers, counter.get_total_flops() // 2, tuple(y.shape[1:])


@pytest.mark.parametrize("factory", ["tiny_resnet", "mobile_block", "shufflenet_tiny",
                                     "convnext_tiny", "dense_tiny"])
def test_family_modules_import_to_what_pytorch_measures(factory):
    module = getattr(models, factory)()
    imported = from_torch(module, "32x32x3")
    params, buffers, macs, output = _measured(module, (3, 32, 32))
    s = imported.summary
    assert (s.totals.trainable, s.totals.non_trainable) == (params, buffers), imported.text
    assert s.totals.macs == macs, imported.text
    assert s.output == output
    assert cnncalc.check(s).ok  # the spec built again, and compared layer by layer


def test_module_names_become_layer_names_and_repeats():
    text = from_torch(models.tiny_resnet(), "32x32x3").text
    # layer1.1 and layer1.2 are built alike: one repeat with torchvision's names
    assert "repeat 2 from 1 name=layer1 {" in text
    assert "conv 1x1x16 nobias name=conv1" in text and "name=layer1.0.conv1" in text
    names = [r.name for r in cnncalc.summarize(text)]
    assert "layer1.2.conv3" in names and "layer1.0.downsample.0" in names


def test_shuffle_and_split_read_as_the_paper():
    text = from_torch(models.shufflenet_tiny(), "32x32x3").text
    assert "concat split {" in text and "shuffle 2" in text


def test_unsupported_operators_are_named():
    with pytest.raises(cnncalc.CnnCalcError) as info:
        from_torch(models.sinusoid(), "16x16x3")
    assert "sin" in str(info.value) and "1 node(s)" in str(info.value)
    partial = from_torch(models.sinusoid(), "16x16x3", partial=True)
    assert partial.text.startswith("network sinusoid\ninput 16x16x3\nconv 3x3x8 name=conv")
    assert "# import stopped at node sin" in partial.text


@pytest.mark.parametrize("dims, read", [((2, 3), "globalavgpool"), ((1,), None)])
def test_a_mean_is_a_global_pool_over_the_spatial_axes_only(dims, read):
    """x.mean((2, 3)) is a global average pool (what torchvision's heads write in
    functional code); a mean over the channels is no layer of cnncalc's: refused, saying
    which dimensions it reduced."""
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.conv(x).mean(dims)
    if read:
        assert read in from_torch(Head().eval(), "16x16x3").text
        return
    with pytest.raises(cnncalc.CnnCalcError, match=r"a reduction over dimensions \(1,\), "
                       "not the spatial ones"):
        from_torch(Head().eval(), "16x16x3")


def test_import_torch_cli(tmp_path):
    path = ROOT / "tests" / "families" / "models.py"
    out = tmp_path / "resnet.cnn"
    res = CliRunner().invoke(main, ["import", "torch", f"{path}:tiny_resnet", "--input",
                                    "32x32x3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert cnncalc.summarize(out).totals.trainable == \
        sum(p.numel() for p in models.tiny_resnet().parameters())
    res = CliRunner().invoke(main, ["import", "torch", f"{path}:sinusoid", "--input", "16x16x3"])
    assert res.exit_code == 2 and "sin" in res.output
    res = CliRunner().invoke(main, ["import", "torch", f"{path}:nothing", "--input", "16x16x3"])
    assert res.exit_code == 2 and "no callable 'nothing'" in res.output


# every activation torch names without arguments, as a module and as a function (torch's
# names, written here from its documentation), imports to the word that computes the same
ACTIVATIONS = [("ReLU", "relu"), ("ReLU6", "relu6"), ("SiLU", "silu"), ("GELU", "gelu"),
               ("Hardswish", "hardswish"), ("Hardsigmoid", "hardsigmoid"),
               ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("ELU", "elu"), ("SELU", "selu"),
               ("Mish", "mish")]


@pytest.mark.parametrize("cls, word", ACTIVATIONS)
def test_every_torch_activation_imports(cls, word):
    F = torch.nn.functional
    fn = getattr(F, cls.lower(), None) or getattr(torch, cls.lower())

    class Functional(torch.nn.Module):
        def forward(self, x):
            return fn(x)

    x = torch.randn(2, 3, 4, 5) * 4
    for module in (getattr(torch.nn, cls)(), Functional()):
        imported = from_torch(module, "5x4x3")
        assert [r.layer.describe() for r in imported.summary.rows] == [word]
        got = cnncalc.to_torch(imported.summary).eval()(x.permute(0, 2, 3, 1))
        torch.testing.assert_close(got.permute(0, 3, 1, 2), module(x))


def test_batchnorm_keeps_the_models_epsilon():
    # PyTorch's BatchNorm2d adds 1e-5 to the variance, Keras (cnncalc's default) 1e-3: the
    # import must say so, or its values drift from the model's (by a factor of three here,
    # with moving variances near 1e-4)
    from cnncalc.backends.weights import apply
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.BatchNorm2d(4, eps=1e-3)).eval()
    for bn in model[1:]:
        bn.running_var.uniform_(1e-4, 2e-4)
    imported = from_torch(model, "8x8x3")
    assert [r.layer.describe() for r in imported.summary.rows] == \
        ["conv 3x3x4", "batchnorm eps 1e-05", "batchnorm"]
    net = cnncalc.to_torch(imported.summary).eval()
    apply(net, dict(zip(net.state_dict(), model.state_dict().values())))
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), model(x),
                               rtol=1e-4, atol=1e-4)


def test_an_average_pool_that_counts_the_padding_imports_and_computes_pytorchs():
    """torchvision's inception_v3 pools with nn.AvgPool2d(3, 1, 1): PyTorch's default
    count_include_pad=True averages the padding's zeros in. Its import was once a word the
    language refused ('countpad')."""
    import torch
    from torch import nn
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(3, stride=1, padding=1)).eval()
    imported = cnncalc.from_torch(module, "9x7x3")
    assert "avgpool 3 pad 1 stride 1 countpad" in imported.text
    net = cnncalc.to_torch(imported.summary).eval()
    with torch.no_grad():
        conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
        conv.weight.copy_(module[0].weight.transpose(-2, -1))  # cnncalc: kernels width first
        conv.bias.copy_(module[0].bias)
        x = torch.randn(2, 3, 7, 9)  # N, C, H, W
        want = module(x)
        got = net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(got, want, atol=1e-5)
    # Keras has no such pool: the Keras export says so; PyTorch's file writes the default
    code = cnncalc.to_pytorch_code(imported.summary)
    assert "nn.AvgPool2d(3, stride=1, padding=1)" in code


@pytest.mark.parametrize("factory", ["tiny_resnet", "mobile_block", "shufflenet_tiny",
                                     "convnext_tiny", "dense_tiny"])
def test_a_module_built_on_the_meta_device_imports_the_same(factory):
    """On PyTorch's meta device a module has shapes and no memory: the import traces it on
    meta tensors and writes the spec it writes for the module built for real."""
    real = from_torch(getattr(models, factory)(), "32x32x3")
    with torch.device("meta"):
        module = getattr(models, factory)()
    assert next(module.parameters()).is_meta
    assert from_torch(module, "32x32x3").text == real.text


def test_importing_leaves_the_module_as_it_was():
    """The import swaps each module's weights for meta tensors, its forward for a scoped
    one and sets eval mode, in place: all is put back, a module used twice included (it
    was once left in eval mode, its second visit saving the mode the first had set)."""
    from torch import nn
    shared = nn.Conv2d(4, 4, 3, padding=1)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), shared, nn.ReLU(),
                           shared).train()
    params = [id(p) for p in module.parameters()] + [id(b) for b in module.buffers()]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    module.eval()
    with torch.no_grad():
        before = module(x)
    module.train()
    from_torch(module, "9x9x3")
    assert all(m.training for m in module.modules())
    assert [id(p) for p in module.parameters()] + [id(b) for b in module.buffers()] == params
    assert not any(p.is_meta for p in module.parameters())
    assert not any("forward" in m.__dict__ for m in module.modules())
    module.eval()
    with torch.no_grad():
        assert torch.equal(module(x), before)


def test_a_model_larger_than_memory_imports_from_the_meta_device(tmp_path):
    # a dense layer of 57,600 x 200,000 weights: 46 GB of float32, imported in no memory
    # (conv 3x3x64 on 32x32x3: 1,792 params; 30 x 30 x 64 = 57,600 features)
    big = 57_600 * 200_000 + 200_000
    factory = tmp_path / "big.py"
    factory.write_text("from torch import nn\n\n\ndef big():\n    return nn.Sequential("
                       "nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(57600, 200000))\n")
    res = CliRunner().invoke(main, ["import", "torch", f"{factory}:big", "--input", "32x32x3",
                                    "--meta", "-o", str(tmp_path / "big.cnn")])
    assert res.exit_code == 0, res.output
    s = cnncalc.summarize(tmp_path / "big.cnn")
    assert s.totals.params == 1_792 + big and s.output == (200_000,)


@pytest.mark.parametrize("pads", [(-1, 1, -1, 1), (-1, -1, -2, 0), (2, -1, 0, -1)])
def test_a_negative_padding_crops_as_pytorch_does(pads):
    """PyTorch's ZeroPad2d and F.pad crop where a pad is negative (timm's NASNet shifts a
    map by one pixel so): a crop, then the padding left. cnncalc's module of the imported
    spec computes what PyTorch's does."""
    from torch import nn
    from torch.nn import functional as F

    class Functional(nn.Module):
        def forward(self, x):
            return F.max_pool2d(F.pad(x, pads), 1, 2)
    for module in (nn.Sequential(nn.ZeroPad2d(pads), nn.MaxPool2d(1, 2)), Functional()):
        imported = from_torch(module, "11x9x3")
        assert any(line.startswith("crop ") for line in imported.text.splitlines())
        x = torch.randn(2, 3, 9, 11)  # N, C, H, W
        net = cnncalc.to_torch(imported.summary).eval()
        with torch.no_grad():
            want, got = module(x), net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        assert got.shape == want.shape and torch.equal(got, want)


def test_a_view_no_kind_says_is_named_first_and_partial_stops_before_it():
    """A window partition (view to (N, C, 2, 3, 2, 3), permute, view): no kind says it. The
    refusal names the view first, before what fails after it; --partial writes the layers
    before it, its input the output."""
    from torch import nn

    class Windows(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.LayerNorm(8)

        def forward(self, x):
            x = self.conv(x)
            n, c, h, w = x.shape
            x = x.view(n, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 3, 5, 1)
            return self.norm(x.reshape(n * 4, h * w // 4, c))
    with pytest.raises(cnncalc.CnnCalcError) as e:
        from_torch(Windows().eval(), "6x6x3")
    lines = str(e.value).splitlines()
    assert lines[1].startswith("  view: a reshape of a channels-first tensor (1, 8, 6, 6) to "
                               "(1, 8, 2, 3, 2, 3)")
    imported = from_torch(Windows().eval(), "6x6x3", partial=True)
    assert [r.kind for r in imported.summary.rows] == ["conv"]
    assert imported.summary.output == (6, 6, 8)
    assert "# import stopped at node view: a reshape" in imported.text
