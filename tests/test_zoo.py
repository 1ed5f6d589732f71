"""The model zoo against published counts, and each spec against a real PyTorch run."""

import pytest

from cnncalc.backends.torch import to_torch  # noqa: F401  (torch is part of the test set-up)
from cnncalc import with_input
from cnncalc.backends.check import check
from conftest import spec_text, summarize

# spec, output, total params, trainable, non-trainable; source of the figure
ZOO = [
    pytest.param("vgg16.cnn", (1000,), 138_357_544, 138_357_544, 0, id="vgg16-keras"),
    pytest.param("vgg16_blocks.cnn", (1000,), 138_357_544, 138_357_544, 0, id="vgg16-def-keras"),
    pytest.param("vgg19.cnn", (1000,), 143_667_240, 143_667_240, 0, id="vgg19-keras"),
    pytest.param("lenet5.cnn", (10,), 61_706, 61_706, 0, id="lenet5-keras-rebuild"),
    pytest.param("alexnet.cnn", (1000,), 61_100_840, 61_100_840, 0, id="alexnet-torchvision"),
    pytest.param("resnet18.cnn", (1000,), 11_699_112, 11_689_512, 9_600, id="resnet18-torchvision"),
    pytest.param("resnet50.cnn", (1000,), 25_610_152, 25_557_032, 53_120, id="resnet50-torchvision"),
    pytest.param("resnet50_keras.cnn", (1000,), 25_636_712, 25_583_592, 53_120, id="resnet50-keras"),
    pytest.param("densenet121.cnn", (1000,), 8_062_504, 7_978_856, 83_648, id="densenet121-keras"),
    pytest.param("mobilenet.cnn", (1000,), 4_253_864, 4_231_976, 21_888, id="mobilenet-v1-keras"),
    pytest.param("inception3a.cnn", (28, 28, 256), 163_696, 163_696, 0, id="inception3a-paper"),
    pytest.param("unet.cnn", (388, 388, 2), 31_030_658, 31_030_658, 0, id="unet-paper"),
]


# torchvision's sum(p.numel() for p in model.parameters()) and torch.utils.flop_counter's
# FLOPs / 2 (eval mode, no weights), as issue 12 pins them; --counts torch gives the figure
TORCHVISION = [
    pytest.param("mobilenet_v2.cnn", 3_504_872, 300_774_272, id="mobilenet_v2-torchvision"),
    pytest.param("mobilenet_v3_large.cnn", 5_483_032, 216_589_760, id="mobilenet_v3_large-torchvision"),
    pytest.param("mobilenet_v3_small.cnn", 2_542_856, 56_510_400, id="mobilenet_v3_small-torchvision"),
    pytest.param("efficientnet_b0.cnn", 5_288_548, 385_814_752, id="efficientnet_b0-torchvision"),
    pytest.param("convnext_tiny.cnn", 28_589_128, 4_455_531_264, id="convnext_tiny-torchvision"),
    pytest.param("resnext50_32x4d.cnn", 25_028_904, 4_230_479_872, id="resnext50_32x4d-torchvision"),
    pytest.param("shufflenet_v2_x1_0.cnn", 2_278_604, 144_907_992, id="shufflenet_v2_x1_0-torchvision"),
    pytest.param("googlenet.cnn", 6_624_904, 1_498_376_192, id="googlenet-no-aux-torchvision"),
    pytest.param("inception_v3.cnn", 23_834_568, 5_713_216_096, id="inception_v3-no-aux-299-torchvision"),
    pytest.param("squeezenet1_0.cnn", 1_248_424, 818_924_576, id="squeezenet1_0-torchvision"),
    pytest.param("densenet121_torch.cnn", 7_978_856, 2_834_161_664, id="densenet121-torchvision"),
    pytest.param("regnet_y_400mf.cnn", 4_344_144, 401_842_848, id="regnet_y_400mf-torchvision"),
    # the PyTorch DCGAN example's G (nz 100, ngf 64) and D (ndf 64)
    pytest.param("dcgan_generator.cnn", 3_576_704, None, id="dcgan-G-pytorch-example"),
    pytest.param("dcgan_discriminator.cnn", 2_765_568, None, id="dcgan-D-pytorch-example"),
    # ESPCN by hand: 5*5*1*64 + 64 + 3*3*64*32 + 32 + 3*3*32*9 + 9
    pytest.param("espcn.cnn", 22_729, None, id="espcn-by-hand"),
]


@pytest.mark.parametrize("name,params,macs", TORCHVISION)
def test_torchvision_counts(name, params, macs):
    s = summarize(spec_text(name))
    assert s.total("trainable") == params
    if macs is not None:
        assert s.total("macs") == macs
    if name.endswith(("_v2.cnn", "_large.cnn", "_small.cnn", "b0.cnn", "tiny.cnn", "4d.cnn",
                      "x1_0.cnn", "googlenet.cnn", "v3.cnn", "1_0.cnn", "torch.cnn", "400mf.cnn")):
        assert s.output == (1000,)


@pytest.mark.parametrize("name,output,params,trainable,frozen", ZOO)
def test_zoo_counts(name, output, params, trainable, frozen):
    s = summarize(spec_text(name))
    assert s.output == output
    assert (s.total("params"), s.total("trainable"), s.total("non_trainable")) == \
        (params, trainable, frozen)


def test_vgg16_def_gives_identical_rows():
    a, b = summarize(spec_text("vgg16.cnn")), summarize(spec_text("vgg16_blocks.cnn"))
    key = lambda r: (r.kind, r.output, r.weights, r.biases, r.units)  # noqa: E731
    assert [key(r) for r in a.rows] == [key(r) for r in b.rows]


def test_vgg16_keras_layer_names():
    names = [r.name for r in summarize(spec_text("vgg16.cnn")).rows]
    assert names[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert names[-3:] == ["fc1", "fc2", "predictions"]


# Each spec runs in PyTorch; big inputs are reduced to keep CPU time small.
SMALLER = {"vgg16.cnn": "64x64x3", "vgg16_blocks.cnn": "64x64x3", "vgg19.cnn": "64x64x3",
           "alexnet.cnn": "127x127x3", "resnet18.cnn": "64x64x3", "resnet50.cnn": "64x64x3",
           "resnet50_keras.cnn": "64x64x3", "densenet121.cnn": "64x64x3",
           "mobilenet.cnn": "64x64x3", "unet.cnn": "188x188x1", "conv3d.cnn": "8x32x32x3",
           "mobilenet_v2.cnn": "64x64x3", "mobilenet_v3_large.cnn": "64x64x3",
           "mobilenet_v3_small.cnn": "64x64x3", "efficientnet_b0.cnn": "64x64x3",
           "convnext_tiny.cnn": "64x64x3", "resnext50_32x4d.cnn": "64x64x3",
           "shufflenet_v2_x1_0.cnn": "64x64x3", "googlenet.cnn": "64x64x3",
           "inception_v3.cnn": "96x96x3", "squeezenet1_0.cnn": "64x64x3",
           "densenet121_torch.cnn": "64x64x3", "regnet_y_400mf.cnn": "64x64x3",
           "fpn.cnn": "64x64x3", "espcn.cnn": "16x16x1", "tcn.cnn": "100x8",
           "dcgan_discriminator.cnn": "64x64x3"}
ALL_SPECS = sorted(p.name for p in (__import__("conftest").SPECS).glob("*.cnn"))


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_spec_matches_pytorch(name):
    from cnncalc import analyse, parse as load
    net = load(spec_text(name))
    if name in SMALLER:
        net = with_input(net, SMALLER[name])
    result = check(analyse(net), device="cpu")
    bad = [(c.row.name, c.row.output, c.torch_shape) for c in result.layers if not c.ok]
    assert result.ok, bad
    assert len(result.layers) == len(analyse(net).rows)


# graphs where a tensor is read again after a layer that could overwrite it: a saved
# output, a block's input, a branch that passes its input on
ALIASED = ["input 8x8x4 | conv 1x1x4 name=a | add a | add a",
           "input 8x8x4 | conv 1x1x4 name=a | relu | add a | multiply a",
           "input 8x8x4 | conv 1x1x4 | add { branch { relu } branch { conv 1x1x4 } }",
           "input 8x8x4 | conv 1x1x4 | concat { branch { } branch { relu } branch { sigmoid } }",
           "input 8x8x4 | conv 1x1x4 | add { branch { } branch { relu } } "
           "| add { branch { } branch { } }",
           "input 8x8x4 | conv 1x1x4 name=a | multiply { branch { relu } branch { add a } }",
           "input 8x8x4 | conv 1x1x4 | output { relu } | add { branch { relu } branch { } }",
           "input 16 | relu | dense 3", "input 16x2 | relu | add { branch { sigmoid } branch { } }"]


@pytest.mark.parametrize("name", ["resnet18.cnn", "densenet_block.cnn", "inception3a.cnn",
                                  "mobilenet_v3_small.cnn", "shufflenet_v2_x1_0.cnn",
                                  "convnext_tiny.cnn", "fpn.cnn", "unet.cnn"] + ALIASED)
def test_working_in_place_changes_no_value(name):
    # in inference the module overwrites tensors nothing reads later (ReLU(inplace=True),
    # out += identity): every output must equal that of a run where nothing is overwritten,
    # with the same weights, and the caller's input must stay as it was
    import torch
    from cnncalc import analyse, parse as load
    net = load(spec_text(name) if name.endswith(".cnn") else name)
    if name in SMALLER:
        net = with_input(net, SMALLER[name])
    s = analyse(net)
    fast, plain = to_torch(s).eval(), to_torch(s, inplace=False).eval()
    plain.load_state_dict(fast.state_dict())
    from cnncalc.backends.data import picture_shape
    x = torch.randn((2, *picture_shape(s.input)), generator=torch.Generator().manual_seed(0))
    before = x.clone()
    with torch.no_grad():
        got, want = fast(x), plain(x)
    got, want = (o if isinstance(o, tuple) else (o,) for o in (got, want))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert torch.equal(x, before)


@pytest.mark.parametrize("text, by_hand", [
    ("add a | add a", lambda a, f: 3 * a),
    # dropout in inference hands on the very tensor it got (a): the add must not overwrite it
    ("dropout 0.5 | add a | add a", lambda a, f: 3 * a),
    ("relu | add a | multiply a", lambda a, f: (a.relu() + a) * a),
    ("add { branch { relu } branch { } }", lambda a, f: a.relu() + a),
    ("multiply { branch { relu } }", lambda a, f: a.relu()),
    ("add { branch { } branch { relu } branch { sigmoid } }",
     lambda a, f: a + a.relu() + a.sigmoid()),
    ("multiply { branch { sigmoid } branch { } branch { relu } }",
     lambda a, f: a.sigmoid() * a * a.relu()),
    # fresh outputs of convolutions: the sum and the product may go into the first
    ("add { branch { } branch { conv 1x1x4 name=b } branch { conv 1x1x4 name=c } }",
     lambda a, f: a + f("b", a) + f("c", a)),
    ("multiply { branch { conv 1x1x4 name=b } branch { } branch { conv 1x1x4 name=c } }",
     lambda a, f: f("b", a) * a * f("c", a)),
    # a branch that hands on a tensor it does not own (dropout's is the block's input, a
    # kept layer's is read again): the sum must not go into it
    ("add { branch { dropout 0.5 } branch { conv 1x1x4 name=b } } | add a",
     lambda a, f: a + f("b", a) + a),
    ("add { branch { conv 1x1x4 name=b } branch { relu } } | add b",
     lambda a, f: f("b", a) + a.relu() + f("b", a)),
    ("concat { branch { } branch { relu } branch { sigmoid } }",
     lambda a, f: __import__("torch").cat([a, a.relu(), a.sigmoid()], -1)),
    # a side output, then the flow from the block's input: two outputs, in that order
    ("output { relu } | add { branch { relu } branch { } }",
     lambda a, f: (a.relu(), a.relu() + a)),
    # 'output a' collects a and passes the current tensor on
    ("conv 1x1x4 name=b | output a | relu", lambda a, f: (a, f("b", a).relu())),
    # a bare 'output' first in a branch collects the block's input: the ReLU after it
    # must leave it as it was
    ("add { branch { output | relu } }", lambda a, f: (a, a.relu())),
    ("concat { branch { output | relu } branch { conv 1x1x4 name=b } }",
     lambda a, f: (a, __import__("torch").cat([a.relu(), f("b", a)], -1))),
    # a squeeze-and-excitation gate by reference: a vector of 4 scales each channel of a
    ("globalavgpool | dense 4 sigmoid name=g | multiply a",
     lambda a, f: a * f("g", a.mean((1, 2)))[:, None, None, :]),
    ("globalavgpool | dense 4 name=g | add a",
     lambda a, f: a + f("g", a.mean((1, 2)))[:, None, None, :]),
])
def test_reused_tensors_by_hand(text, by_hand):
    # what the graph computes from the convolution's output a, written out in torch: an
    # in-place layer must not change a tensor that is read again
    import torch
    from cnncalc.backends.tensor_ops import from_keras, to_keras
    s = summarize("input 8x8x4 | conv 1x1x4 name=a | " + text)
    net = to_torch(s).eval()

    def layer(name, t):  # one of the spec's layers on a picture-order tensor (or a vector)
        rank = t.dim() - 2
        return to_keras(net.layers[name](from_keras(t, rank)), rank)

    x = torch.randn(1, 8, 8, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = by_hand(layer("a", x), layer)
        got = net(x)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        assert all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, want))
    else:
        assert torch.allclose(got, want, atol=1e-6)


def test_in_place_where_torchvision_works_in_place():
    # torchvision's BasicBlock: ReLU(inplace=True) after each batchnorm, 'out += identity',
    # then ReLU(inplace=True) on the sum
    s = summarize("input 8x8x4 | conv 3x3x4 same | relu | conv 3x3x4 same | batchnorm | relu "
                  "| conv 3x3x4 same | add relu_1 | relu")
    net = to_torch(s)
    assert all(net.layers[n].inplace is True for n in ("relu_1", "relu_2", "relu_3", "add_1"))
    # but not on a tensor read again: 'a' is added after the ReLU
    net = to_torch(summarize("input 8x8x4 | conv 3x3x4 same name=a | relu | add a"))
    assert net.layers["relu_1"].inplace is False
    plain = to_torch(s, inplace=False)
    assert not any(getattr(m, "inplace", False) for m in plain.modules())
    # a block sums into its first branch's fresh output, as 'out += identity' does; never
    # into the block's input (an empty branch), nor into a branch of another shape
    from cnncalc.backends.torch import Branches
    blocks = ["add { branch { conv 1x1x4 } branch { conv 1x1x4 } }",
              "add { branch { } branch { conv 1x1x4 } }",
              "add { branch { conv 1x1x1 } branch { conv 1x1x4 } }",
              "concat { branch { conv 1x1x4 } branch { conv 1x1x4 } }"]
    for text, first in zip(blocks, [0, 1, 1, None]):
        s = summarize("input 8x8x4 | " + text)
        block, = [m for m in to_torch(s).modules() if isinstance(m, Branches)]
        assert block.first == first, text
        block, = [m for m in to_torch(s, inplace=False).modules() if isinstance(m, Branches)]
        assert block.first is None, text
    # and the block's sum is its own: the ReLU after it works in place
    s = summarize("input 8x8x4 | add { branch { conv 1x1x4 } branch { conv 1x1x4 } } | relu")
    assert to_torch(s).layers["relu_1"].inplace is True
    # an activation fused into its layer works on that layer's own output: in place
    fused = to_torch(summarize("input 8x8x3 | conv 3x3x4 relu | flatten | dense 2 relu"))
    assert fused.layers["conv_1"].act.inplace is True and fused.layers["dense_1"].act.inplace


def test_an_error_inside_the_model_reaches_the_caller():
    # a wrong input is PyTorch's error, raised through the model (not swallowed)
    import torch
    net = to_torch(summarize("input 8x8x3 | conv 3x3x4"))
    with pytest.raises(RuntimeError, match="channels"):
        net(torch.zeros(1, 8, 8, 5))
