"""The layers since 2016 (issue 12), each against a PyTorch module written here by hand
(not cnncalc's backend): the same output shape and the same parameter count. Shapes in
specs are width first; the hand-written modules take pictures (N, C, rows, columns)."""

import itertools
import re
from fractions import Fraction

import pytest
import torch
from torch import nn

import cnncalc


def _torch_shape(module, spec_input):
    """Run ``module`` on a picture of the spec's input; the output in the spec's order."""
    *spatial, c = spec_input
    picture = (*spatial[:-2], *spatial[-2:][::-1]) if len(spatial) >= 2 else tuple(spatial)
    with torch.no_grad():
        y = module.eval()(torch.randn(2, c, *picture))
    shape = tuple(y.shape[1:])
    if len(shape) == 1:
        return shape
    c, *sp = shape
    sp = (*sp[:-2], *sp[-2:][::-1]) if len(sp) >= 2 else sp
    return (*sp, c)


class Flat(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _ln(c, eps):
    norm = nn.LayerNorm(c, eps=eps)
    return nn.Sequential(Flat(lambda x: x.permute(0, 2, 3, 1)), norm,
                         Flat(lambda x: x.permute(0, 3, 1, 2)))


class Scale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c, 1, 1))

    def forward(self, x):
        return x * self.gamma


# (spec of one layer on an input, hand-written module, Keras' count where Keras has the layer)
CASES = [
    # Keras DepthwiseConv2D(3, depth_multiplier=2) on 32 channels: 3*3*32*2 + 64 = 640
    # Keras 'same' on 15 and 11 with k 3, stride 2: ceil(n / 2) outputs, (8 - 1) * 2 + 3 - 15 = 2
    # and (6 - 1) * 2 + 3 - 11 = 2 pixels of padding, one on each side
    pytest.param("input 15x11x32 | dwconv 3x3 multiplier 2 stride 2 same",
                 lambda: nn.Conv2d(32, 64, 3, 2, padding=1, groups=32),
                 640, id="dwconv-keras-depthwiseconv2d"),
    # Keras SeparableConv2D(64, 3) on 32 channels: 3*3*32 + 32*64 + 64 = 2,400
    pytest.param("input 12x12x32 | sepconv 3x3x64",
                 lambda: nn.Sequential(nn.Conv2d(32, 32, 3, groups=32, bias=False), nn.Conv2d(32, 64, 1)),
                 2400, id="sepconv-keras-separableconv2d"),
    # PyTorch's ceil_mode lets a window hang over a small input: MaxPool2d(3, 2,
    # ceil_mode=True) on 9 rows and 2 columns gives ceil((9 - 3) / 2) + 1 = 4 rows and
    # ceil((2 - 3) / 2) + 1 = 1 column (found by the property test's refusal check)
    pytest.param("input 2x9x4 | maxpool 3 stride 2 ceil",
                 lambda: nn.MaxPool2d(3, 2, ceil_mode=True), None, id="maxpool-ceil-overhang"),
    pytest.param("input 2x1x3 | avgpool 3 ceil",
                 lambda: nn.AvgPool2d(3, ceil_mode=True), None, id="avgpool-ceil-overhang"),
    pytest.param("input 30x4 | conv 3x8 causal dilation 2",
                 lambda: nn.Sequential(nn.ConstantPad1d((4, 0), 0), nn.Conv1d(4, 8, 3, dilation=2)),
                 104, id="causal-keras-conv1d"),
    pytest.param("input 13x10x8 | adaptiveavgpool 7x7", lambda: nn.AdaptiveAvgPool2d(7), 0,
                 id="adaptiveavgpool-torch"),
    pytest.param("input 5x3x8 | adaptivemaxpool 7x7", lambda: nn.AdaptiveMaxPool2d(7), 0,
                 id="adaptivemaxpool-upsampling-torch"),
    # Keras LayerNormalization on 96 channels: gamma and beta, 192
    pytest.param("input 7x7x96 | layernorm eps 1e-6", lambda: _ln(96, 1e-6), 192,
                 id="layernorm-keras"),
    # Keras GroupNormalization(groups=8) on 64 channels: 128
    pytest.param("input 7x7x64 | groupnorm 8", lambda: nn.GroupNorm(8, 64), 128,
                 id="groupnorm-keras"),
    pytest.param("input 7x7x64 | instancenorm", lambda: nn.InstanceNorm2d(64), None,
                 id="instancenorm-torch-no-affine"),
    pytest.param("input 7x7x64 | instancenorm affine", lambda: nn.InstanceNorm2d(64, affine=True),
                 None, id="instancenorm-torch-affine"),
    pytest.param("input 7x7x64 | prelu", lambda: nn.PReLU(64), None, id="prelu-torch"),
    pytest.param("input 9x7x8 | zeropad 1x2x3x4",
                 lambda: nn.ZeroPad2d((1, 2, 3, 4)), 0, id="zeropad-before-after-keras"),
    pytest.param("input 9x7x8 | crop 1x2x0x3", lambda: Flat(lambda x: x[:, :, 0:4, 1:7]), 0,
                 id="crop-keras-cropping2d"),
    pytest.param("input 9x7x8 | reflectpad 2", lambda: nn.ReflectionPad2d(2), 0,
                 id="reflectpad-torch"),
    pytest.param("input 9x7x8 | upsample 2 bilinear",
                 lambda: nn.Upsample(scale_factor=2, mode="bilinear"), 0, id="upsample-bilinear"),
    pytest.param("input 9x7x18 | pixelshuffle 3", lambda: nn.PixelShuffle(3), 0,
                 id="pixelshuffle-torch"),
    pytest.param("input 8x6x2 | pixelunshuffle 2", lambda: nn.PixelUnshuffle(2), 0,
                 id="pixelunshuffle-torch"),
    pytest.param("input 9x7x8 | shuffle 2", lambda: nn.ChannelShuffle(2), 0, id="shuffle-torch"),
    pytest.param("input 9x7x8 | layerscale", lambda: Scale(8), None, id="layerscale-torch"),
    pytest.param("input 9x7x8 | droppath 0.2", lambda: nn.Identity(), 0, id="droppath-eval"),
    pytest.param("input 9x7x8 | relu6", lambda: nn.ReLU6(), 0, id="relu6-torch"),
]


@pytest.mark.parametrize("text,module,keras", CASES)
def test_kind_against_a_hand_written_module(text, module, keras):
    row = cnncalc.summarize(text).rows[0]
    m = module()
    assert row.output == _torch_shape(m, row.input)
    assert row.trainable == sum(p.numel() for p in m.parameters())
    if keras is not None:
        assert row.params == keras


def test_leakyrelu_slope_is_darknets_point_one():
    # Darknet's leaky activation and torch's LeakyReLU(0.1) map -2 to -0.2 (the default slope
    # is that of Keras' activation="leaky_relu", 0.2)
    x = torch.tensor([[-2.0, 3.0]], dtype=torch.float64)
    assert cnncalc.to_torch("input 2 | leakyrelu slope 0.1").double()(x).tolist() == \
        nn.LeakyReLU(0.1)(x).tolist() == [[-0.2, 3.0]]
    with pytest.raises(cnncalc.SpecSyntaxError, match="leakyrelu's option"):
        cnncalc.parse("input 2 | relu slope 0.1")


def test_reshape_follows_keras_order():
    # Keras Reshape((2, 3, 4)) of a 24-vector fills rows, then columns, then channels: the
    # value at row 1, column 2, channel 3 is index (1 * 3 + 2) * 4 + 3 = 23
    net = cnncalc.to_torch("input 24 | reshape 3x2x4")  # 3 wide, 2 high
    y = net(torch.arange(24.)[None])
    assert y.shape == (1, 2, 3, 4) and y[0, 1, 2, 3] == 23


def test_dcgan_generator_of_the_pytorch_example():
    # the PyTorch DCGAN example's G with nz=100, ngf=64, nc=3 has 3,576,704 parameters
    text = """network dcgan_g
input 1x1x100
deconv 4x4x512 nobias | batchnorm | relu
deconv 4x4x256 stride 2 same nobias | batchnorm | relu
deconv 4x4x128 stride 2 same nobias | batchnorm | relu
deconv 4x4x64 stride 2 same nobias | batchnorm | relu
deconv 4x4x3 stride 2 same nobias | tanh"""
    s = cnncalc.summarize(text)
    assert s.output == (64, 64, 3) and s.totals.trainable == 3_576_704


def test_squeeze_and_excitation_broadcasts_the_gate():
    s = cnncalc.summarize("input 56x56x64 | multiply { branch { } branch { globalavgpool | "
                          "dense 16 relu | dense 64 sigmoid } }")
    assert s.output == (56, 56, 64)
    # the gate's two dense layers: 64*16 + 16 + 16*64 + 64
    assert s.totals.params == 2_128


def test_broadcast_refusal_states_the_rule():
    with pytest.raises(cnncalc.SpecDesignError, match="one may have size 1"):
        cnncalc.summarize("input 8x8x4 | add { branch { } branch { globalavgpool | dense 3 } }")


def test_counts_keras_or_torch():
    from click.testing import CliRunner
    from cnncalc.cli import main
    spec = "input 8x8x3 | conv 3x3x8 | batchnorm"
    keras = CliRunner().invoke(main, ["summary", "-e", spec]).output
    torch_ = CliRunner().invoke(main, ["summary", "-e", spec, "--counts", "torch"]).output
    # conv 3*3*3*8 + 8 = 224; batchnorm 16 trainable, 16 moving statistics
    assert "params: 256 (trainable 240, non-trainable 16)" in keras
    assert "params: 240 (PyTorch's parameters(); buffers 16)" in torch_


def test_side_outputs_are_returned_by_the_module():
    text = "input 32x32x3 | conv 3x3x8 stride 2 same name=c1 | output | conv 3x3x16 stride 2 same"
    s = cnncalc.summarize(text)
    assert [(n, sh) for n, sh in s.outputs] == [("c1", (16, 16, 8)), ("conv_1", (8, 8, 16))]
    outs = cnncalc.to_torch(s)(torch.randn(1, 32, 32, 3))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 8), (1, 8, 8, 16)]


# --- values of the kinds Keras lacks, against torch.nn.functional on the same picture -------

def _picture_run(spec, x):
    """cnncalc's module on a picture batch (N, H, W, C); the output as (N, C, H, W)."""
    with torch.no_grad():
        y = cnncalc.to_torch(spec).eval()(x.permute(0, 2, 3, 1))
    return y.permute(0, 3, 1, 2) if y.dim() == 4 else y


F = torch.nn.functional
# (spec on a 6-wide, 4-high, 8-channel picture, the same done by PyTorch's own function on
# (N, C, H, W); the spec writes width first, PyTorch height first)
FUNCTIONAL = [
    ("reflectpad 1x2", lambda x: F.pad(x, (1, 1, 2, 2), mode="reflect")),
    ("reflectpad 2x0x1x3", lambda x: F.pad(x, (2, 0, 1, 3), mode="reflect")),
    ("pixelshuffle 2", lambda x: F.pixel_shuffle(x, 2)),
    ("pixelunshuffle 2", lambda x: F.pixel_unshuffle(x, 2)),
    ("shuffle 4", lambda x: nn.ChannelShuffle(4)(x)),
    ("adaptiveavgpool 4x3", lambda x: F.adaptive_avg_pool2d(x, (3, 4))),
    ("adaptivemaxpool 5x3", lambda x: F.adaptive_max_pool2d(x, (3, 5))),
    ("instancenorm", lambda x: F.instance_norm(x, eps=1e-5)),
    ("instancenorm eps 0.1", lambda x: F.instance_norm(x, eps=0.1)),
    ("maxpool 3 stride 2 ceil", lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True)),
    ("avgpool 3 stride 2 pad 1 ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                            count_include_pad=False)),
    ("maxpool 2x3 stride 1x2 pad 1", lambda x: F.max_pool2d(x, (3, 2), (2, 1), (1, 1))),
    ("layerscale init 0.5", lambda x: x * 0.5),
    ("droppath 0.5", lambda x: x),
    ("dropout 0.5", lambda x: x),
    ("upsample 2x3", lambda x: F.interpolate(x, scale_factor=(3, 2), mode="nearest")),
    ("upsample 2 bilinear", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                                    align_corners=False)),
]


@pytest.mark.parametrize("spec, fn", FUNCTIONAL, ids=[s for s, _ in FUNCTIONAL])
def test_values_of_kinds_keras_lacks(spec, fn):
    x = torch.randn(2, 8, 4, 6, generator=torch.Generator().manual_seed(0))
    got = _picture_run(f"input 6x4x8 | {spec}", x)
    want = fn(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["input 3x2x4 | droppath 0.25", "input 5x4 | droppath 0.25",
                                  "input 4 | droppath 0.25"])
def test_droppath_in_training_drops_whole_examples(spec):
    # stochastic depth (Huang et al. 2016; timm's drop_path): in training each example is
    # zeroed as a whole with probability p, the others scaled by 1 / (1 - p); 4,000 examples
    # at p = 0.25: about 1,000 dropped (a binomial's standard deviation is 27)
    s = cnncalc.summarize(spec)
    net = cnncalc.to_torch(s).train()
    from cnncalc.backends.data import picture_shape
    x = torch.rand(4000, *picture_shape(s.input)) + 1
    torch.manual_seed(0)
    y = net(x)
    flat_x, flat_y = x.reshape(4000, -1), y.reshape(4000, -1)
    dropped = (flat_y == 0).all(1)
    kept = torch.isclose(flat_y, flat_x / 0.75).all(1)
    assert bool((dropped | kept).all())
    assert 850 < int(dropped.sum()) < 1150
    assert torch.equal(net.eval()(x), x)


# --- normalisations and PReLU on every rank: PyTorch builds what the calculator counts, and
# the values are PyTorch's functions' (the mutation runs found 1-D maps never run) ----------

NORMS = ["layernorm", "groupnorm 2", "instancenorm", "instancenorm affine", "batchnorm",
         "prelu"]


@pytest.mark.parametrize("shape", ["7x8", "7x6x8", "6x7x6x8"])
@pytest.mark.parametrize("kind", NORMS)
def test_normalisations_on_every_rank_are_what_pytorch_builds(kind, shape):
    # check compares parameters and buffers with the module PyTorch built, and measures the
    # field by gradient: one pixel for a layernorm (over the channels at each position),
    # the whole map for a group or instance norm (no field is reported: it is "all")
    s = cnncalc.summarize(f"input {shape} | conv 3x8 | {kind} | conv 3x8".replace(
        "3x8", "x".join(["3"] * (shape.count("x")) + ["8"])))
    result = cnncalc.check(s, device="cpu")
    assert result.ok, [(c.row.name, c.torch_params, c.row.trainable) for c in result.layers]
    whole = kind.startswith(("groupnorm", "instancenorm"))
    assert (s.rows[1].rf is None) == whole
    if not whole:  # conv, the kind, conv: a 3-wide window twice, 5 pixels on every axis
        assert result.rf[1] == result.rf[2] == (5,) * shape.count("x")


def _channels_first(y, rank):
    return y.permute(0, rank + 1, *range(1, rank + 1))


@pytest.mark.parametrize("kind, fn", [
    ("instancenorm", lambda x: F.instance_norm(x, eps=1e-5)),
    ("instancenorm affine eps 0.1", lambda x: F.instance_norm(x, eps=0.1)),  # γ 1, β 0 at first
    ("groupnorm 2", lambda x: F.group_norm(x, 2, eps=1e-3)),
    ("layernorm eps 0.5", lambda x: F.layer_norm(x.transpose(1, 2), (8,), eps=0.5).transpose(1, 2)),
    ("batchnorm", lambda x: F.batch_norm(x, torch.zeros(8), torch.ones(8), eps=1e-3)),
    ("prelu", lambda x: F.prelu(x, torch.full((8,), 0.25))),
])
def test_normalisations_on_a_1d_map_compute_pytorchs_functions(kind, fn):
    # on (N, C, L): InstanceNorm2d would read such a tensor as one unbatched picture
    x = torch.randn(3, 8, 11, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = cnncalc.to_torch(f"input 11x8 | {kind}").eval()(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(got, fn(x), rtol=1e-5, atol=1e-5)


def test_prelu_starts_as_pytorchs():
    # a fresh PReLU's slopes are PyTorch's default, 0.25 (Keras starts at 0; the backend is
    # PyTorch's), one per channel
    net = cnncalc.to_torch("input 5x4x6 | prelu")
    assert torch.equal(next(net.parameters()).detach(), nn.PReLU(6).weight.detach())


def test_instancenorm_on_a_vector_is_refused_as_pytorch_refuses_it():
    # F.instance_norm on (N, C): "Expected more than 1 spatial element"
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(torch.zeros(4, 8))
    with pytest.raises(cnncalc.SpecDesignError, match="instancenorm needs a feature map"):
        cnncalc.summarize("input 8 | instancenorm affine")


@pytest.mark.parametrize("kind, ops", [
    # README, 'Conventions': two operations per value for a normalisation (scale and shift),
    # one for an activation, PReLU's too; 7 x 5 x 8 = 280 values
    ("layernorm", 560), ("groupnorm 4", 560), ("instancenorm", 560),
    ("instancenorm affine", 560), ("batchnorm", 560), ("prelu", 280), ("relu", 280),
    ("leakyrelu slope 0.1", 280), ("linear", 0),
])
def test_element_wise_operations_by_hand(kind, ops):
    row = cnncalc.summarize(f"input 7x5x8 | {kind}").rows[0]
    assert (row.ops, row.flops, row.macs) == (ops, ops, 0)


@pytest.mark.parametrize("kind, weights, said", [
    # 8 channels: a scale and an offset each
    ("instancenorm", 0, "no parameters"),
    ("instancenorm affine", 8, "trainable: scale and offset, 16"),
    ("layernorm", 8, "trainable: scale and offset, 16"),
    ("groupnorm 2", 8, "trainable: scale and offset, 16"),
])
def test_normalisation_parameters_by_hand(kind, weights, said):
    s = cnncalc.summarize(f"input 3x3x8 | {kind}", explain=True)
    row = s.rows[0]
    assert (row.weights, row.biases, row.params) == (weights, weights, 2 * weights)
    assert row.explain == [said]
    from click.testing import CliRunner
    from cnncalc.cli import main
    out = CliRunner().invoke(main, ["summary", "-e", f"input 3x3x8 | {kind}", "--format", "csv",
                                    "--columns", "weights,biases,params"]).output
    import csv
    cells = list(csv.DictReader(out.splitlines()))[-1]
    assert (cells["weights"], cells["biases"], cells["params"]) == (
        str(weights), str(weights), str(2 * weights))  # whole numbers, no "8.0"


@pytest.mark.parametrize("text, shown", [
    ("leakyrelu slope 0.1", "leakyrelu slope 0.1"), ("leakyrelu", "leakyrelu"),
    ("leakyrelu slope 0.2", "leakyrelu"), ("relu", "relu"),
])
def test_leakyrelu_shows_its_slope_unless_it_is_keras_default(text, shown):
    assert cnncalc.summarize(f"input 4 | {text}").rows[0].layer.describe() == shown


# --- adaptive pooling's windows, as PyTorch takes them -------------------------------------

@pytest.mark.parametrize("n, o", [(5, 3), (10, 4), (7, 7), (3, 5), (10, 3), (13, 4), (2, 1)])
def test_adaptive_pool_windows_are_pytorchs(n, o):
    # the inputs each output depends on, by gradient through F.adaptive_avg_pool1d: their
    # count summed over the outputs is the layer's operations per channel, the widest is the
    # receptive field
    x = torch.rand(1, 1, n, requires_grad=True)
    widths = []
    for i in range(o):
        (g,) = torch.autograd.grad(F.adaptive_avg_pool1d(x, o)[0, 0, i], x)
        seen = g[0, 0].nonzero().flatten()
        widths.append(int(seen.max() - seen.min()) + 1)
        assert len(seen) == widths[-1]  # a window: no holes
    row = cnncalc.summarize(f"input {n}x3 | adaptiveavgpool {o}").rows[0]
    assert row.ops == 3 * sum(widths)
    assert row.rf[0][0] == max(widths)
    wide = cnncalc.summarize(f"input {n}x{n}x2 | adaptivemaxpool {o}x1").rows[0]
    assert wide.ops == 2 * sum(widths) * n


def test_adaptive_pool_field_by_gradient():
    # 12 into 4: windows [0, 3), [3, 6), ...: 3 wide, jump 3; a 3-wide convolution after it
    # sees 3 + 2 x 3 = 9 pixels, its first unit 0..8, centred on 4. PyTorch's gradient:
    x = torch.rand(1, 1, 12, requires_grad=True)
    y = F.conv1d(F.adaptive_avg_pool1d(x, 4), torch.ones(1, 1, 3))
    (g,) = torch.autograd.grad(y[0, 0, 0], x)
    seen = g[0, 0].nonzero().flatten().tolist()
    assert seen == list(range(9))
    text = "input 12x3 | adaptiveavgpool 4 | conv 3x3"
    assert cnncalc.summarize(text).rows[1].field == ((9, 3, 4),)
    # uneven windows: the note says what the field means; even ones need no note
    assert cnncalc.summarize(text).rows[0].note is None
    assert cnncalc.summarize("input 5x3 | adaptiveavgpool 3").rows[0].note == (
        "windows of unequal width: the receptive field is the widest's, the jump the mean")


@pytest.mark.parametrize("size, line", [
    ("12x3", "length: 4 windows over 12: each 3 wide, stride 3"),
    # 5 into 4: windows [0, 2), [1, 3), [2, 4), [3, 5): 2 wide each, yet not a stride
    ("5x3", "length: 4 windows over 5: window i covers floor(i x 5 / 4) to "
            "ceil((i + 1) x 5 / 4), 2 to 2 wide"),
])
def test_adaptive_pool_explains_its_windows(size, line):
    assert cnncalc.summarize(f"input {size} | adaptiveavgpool 4", explain=True).rows[0].explain \
        == [line]


@pytest.mark.parametrize("text", ["input 10x?x3 | adaptiveavgpool 4",
                                  "input ?x10x3 | adaptivemaxpool 4", "input ?x?x3 | adaptiveavgpool 4"])
def test_adaptive_pool_on_open_sizes(text):
    # the output size is the layer's whatever the input; its windows are not known
    from cnncalc.api import analyse, parse
    row = analyse(parse(text), open_sizes=True).rows[0]
    assert (row.output, row.note) == ((4, 4, 3), "window sizes depend on the open input size")


# --- reshaping kinds, by hand and against PyTorch's own refusals (what mutation found
# unpinned: pixelshuffle's field and explanation, the modes of 1-D and 3-D linear upsampling,
# reshape's open size) ---------------------------------------------------------------------

def _supports(spec):
    """Per output unit of a 1-row network: the input columns its gradient reaches (brute
    force, no formula), as (first, last)."""
    from cnncalc.backends.data import picture_shape
    net = cnncalc.to_torch(spec, inplace=False).double()
    out = []
    for unit in range(spec.rows[-1].output[0]):
        x = torch.rand(1, *picture_shape(spec.input), dtype=torch.float64, requires_grad=True)
        net(x)[0, 0, unit].sum().backward()
        seen = x.grad[0].abs().sum(-1).sum(0).nonzero()
        out.append((int(seen.min()), int(seen.max())))
    return out


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_pixelshuffle_sees_what_nearest_upsampling_sees(k):
    # PixelShuffle(2) puts the 4 channels of input pixel i on outputs 2i and 2i + 1 of each
    # axis, where nearest upsampling copies pixel i: k neighbours j..j+k-1 read inputs j // 2
    # .. (j + k - 1) // 2, at most k // 2 + 1 of them. Both counted by brute force
    shuffled = cnncalc.summarize(f"input 12x1x4 | pixelshuffle 2 | conv {k}x1x1")
    copied = cnncalc.summarize(f"input 12x1x1 | upsample 2 | conv {k}x1x1")
    seen = _supports(shuffled)
    widest = max(b - a + 1 for a, b in seen)
    assert widest == max(b - a + 1 for a, b in _supports(copied)) == k // 2 + 1
    assert shuffled.rows[-1].field[0][:2] == (widest, Fraction(1, 2))
    # the same pixels, so the same field, centred by the half-pixel rule of upsampling
    # (test_analysis.py); it placed a shuffled output u at u / 2 instead, off by a quarter
    assert shuffled.rows[-1].field == copied.rows[-1].field


def test_pixelshuffle_counts_and_explains_by_hand():
    # 18 channels on 9x7 become 18 / 3^2 = 2 channels on 27x21 (ESPCN's sub-pixel layer)
    row = cnncalc.summarize("input 9x7x18 | pixelshuffle 3", explain=True).rows[0]
    assert row.output == (27, 21, 2) and all(type(n) is int for n in row.output)
    assert row.explain == ["9x7x18 -> 9 x 3, 7 x 3, 18 / 9"]
    assert [f[1] for f in row.field] == [Fraction(1, 3)] * 2  # a grid three times finer


@pytest.mark.parametrize("kind", ["pixelshuffle", "pixelunshuffle"])
def test_pixel_shuffles_need_a_picture(kind):
    # PyTorch's pixel_(un)shuffle works on the last three axes: a sequence (N, C, L) reads as
    # one picture whose channels are the batch, a volume (N, C, D, H, W) as pictures whose
    # channels are its depth: (2, 8, 4, 4, 4) comes out (2, 8, 1, 8, 8), not 2 channels on 8^3
    assert tuple(F.pixel_shuffle(torch.zeros(2, 8, 4, 4, 4), 2).shape) == (2, 8, 1, 8, 8)
    for spec, dims in (("input 12x4", "1-D (12x4)"), ("input 4x4x4x8", "3-D (4x4x4x8)")):
        with pytest.raises(cnncalc.CnnCalcError) as e:
            cnncalc.summarize(f"{spec} | {kind} 2")
        assert f"{kind} has a 2-D window but the input is {dims}" in str(e.value)


@pytest.mark.parametrize("n, want", [
    # half-pixel centres (PyTorch's align_corners=False, TensorFlow's resize): output u reads
    # input (u + 1/2) / 2 - 1/2, clamped to the ends: 0, 1/4, 3/4, 5/4, ..., 11/4, 3
    (4, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]),
    (2, [0, 0.25, 0.75, 1]),
])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_linear_upsampling_on_every_rank_by_hand(n, want, rank):
    # a ramp along the first axis, constant along the others: linear, bilinear and trilinear
    # interpolation all give the 1-D values along it
    sizes = [n] + [2] * (rank - 1)
    spec = cnncalc.summarize(f"input {'x'.join(map(str, sizes))}x1 | upsample 2 bilinear")
    row, net = spec.rows[0], cnncalc.to_torch(spec)
    from cnncalc.backends.data import picture_shape
    ramp = torch.arange(n, dtype=torch.float32).reshape(n, *[1] * (rank - 1), 1)
    x = ramp.expand(*sizes, 1)  # the spec's order: the ramp along its first axis
    x = x.transpose(-3, -2) if rank >= 2 else x
    assert tuple(x.shape) == picture_shape((*sizes, 1))
    y = net(x[None])[0]
    y = y.transpose(-3, -2) if rank >= 2 else y  # back to the spec's order
    assert row.output == (*[2 * s for s in sizes], 1)
    for rest in itertools.product(*[range(2 * s) for s in sizes[1:]]):
        assert y[(slice(None), *rest, 0)].tolist() == want


def test_reshape_with_an_open_size_by_hand():
    # 4x3x2 holds 24 values: as ?x4, 24 / 4 = 6; as 2x?x4, 24 / 8 = 3; a rank that changes
    # leaves no field in pixels (Keras' Reshape of values in the order rows, columns, channels
    # is compared value by value in test_keras_values.py)
    rows = [cnncalc.summarize(f"input 4x3x2 | reshape {t}", explain=True).rows[0]
            for t in ("?x4", "2x?x4")]
    assert [r.output for r in rows] == [(6, 4), (2, 3, 4)]
    assert all(type(n) is int for r in rows for n in r.output)
    assert rows[0].explain == ["4x3x2 = 24 values as 6x4"]
    assert rows[0].field is None and rows[1].field is not None
    refused = {"?x5": "reshape ?x5: 4x3x2 holds 24 values, not a multiple of 5",
               "?x?x4": "reshape ?x?x4: one size may be '?' (it is worked out), no other letters",
               "?xAx4": "no other letters", "0x24": "reshape must be at least 1, received 0",
               "5x5": "reshape 5x5 needs 25 values, 4x3x2 holds 24"}
    for target, said in refused.items():
        with pytest.raises(cnncalc.CnnCalcError) as e:
            cnncalc.summarize(f"input 4x3x2 | reshape {target}")
        assert said in str(e.value)
    # an open input size: the number of values is not known, so neither is '?'
    with pytest.raises(cnncalc.CnnCalcError, match=r"Wx3x2 holds 6 x W values, not a multiple"):
        cnncalc.api.analyse(cnncalc.api.parse("input ?x3x2 | reshape ?x2"), open_sizes=True)


def test_a_crop_may_leave_one_pixel():
    # Keras' Cropping2D(((0, 0), (3, 4))) leaves 8 - 7 = 1 column; 4 + 4 leaves none
    assert cnncalc.summarize("input 8x8x3 | crop 3x4x0x0").rows[0].output == (1, 8, 3)
    with pytest.raises(cnncalc.CnnCalcError, match="crop 8x0 leaves nothing of the width 8"):
        cnncalc.summarize("input 8x8x3 | crop 4x4x0x0")
    with pytest.raises(cnncalc.CnnCalcError, match="crop needs a 1-D feature map"):
        cnncalc.summarize("input 8 | crop 1")


def test_the_field_after_bilinear_upsampling_by_brute_force():
    # bilinear output u reads inputs floor(s) and floor(s) + 1, s = (u + 1/2) / 2 - 1/2: a
    # 3-kernel after it reads 3 inputs (nearest: 2); counted over every output unit
    for mode, size in (("bilinear", 3), ("", 2)):
        s = cnncalc.summarize(f"input 12x1x1 | upsample 2 {mode} | conv 3x1x1")
        assert max(b - a + 1 for a, b in _supports(s)) == size == s.rows[-1].field[0][0]


@pytest.mark.parametrize("kind, dims", [("upsample 2", "1-D"), ("pixelshuffle 2", "2-D"),
                                        ("sepconv 3x4", "1-D"), ("maxpool 2", "1-D"),
                                        ("zeropad 1", "1-D"), ("crop 1", "1-D"),
                                        ("deconv 3x4", "1-D"), ("conv 3x4", "1-D")])
def test_a_kind_on_a_flat_vector_says_which_kind(kind, dims):
    # after flatten every kind with a window is refused by name, as PyTorch refuses a
    # (N, C) tensor for Upsample, PixelShuffle, Conv1d (unbatched (C, L) misread), MaxPool1d;
    # per-axis sizes were read for the 1-D map before it, pixelshuffle's are always 2-D
    word = kind.split()[0]
    with pytest.raises(cnncalc.CnnCalcError) as e:
        cnncalc.summarize(f"input 8x8 | flatten | {kind}")
    assert f"{word} needs a {dims} feature map, received a flat vector of 64 values" in \
        str(e.value)


def test_reflection_padding_stops_where_pytorch_stops():
    # ReflectionPad2d needs each pad below the size it reflects: 3 on 4 pixels runs, 4 fails
    assert tuple(nn.ReflectionPad2d(3)(torch.zeros(1, 1, 4, 4)).shape) == (1, 1, 10, 10)
    with pytest.raises(RuntimeError):
        nn.ReflectionPad2d(4)(torch.zeros(1, 1, 4, 4))
    assert cnncalc.summarize("input 4x4x1 | reflectpad 3").rows[0].output == (10, 10, 1)
    with pytest.raises(cnncalc.CnnCalcError, match="reflectpad 4 needs a size above it, received 4"):
        cnncalc.summarize("input 4x4x1 | reflectpad 4")


@pytest.mark.parametrize("bias, params", [("", 2400), (" nobias", 2336)])
def test_separable_convolution_counts_against_pytorch(bias, params):
    # Keras SeparableConv2D(64, 3) on 32 channels: 3*3*32 + 32*64 (+ 64 biases); MACs from
    # PyTorch's flop counter on the two convolutions written out, on a 12x10 map (10x8 out)
    from torch.utils.flop_counter import FlopCounterMode
    row = cnncalc.summarize(f"input 12x10x32 | sepconv 3x3x64{bias}", explain=True).rows[0]
    m = nn.Sequential(nn.Conv2d(32, 32, 3, groups=32, bias=False),
                      nn.Conv2d(32, 64, 1, bias=not bias))
    with FlopCounterMode(display=False) as count:
        m(torch.zeros(1, 32, 10, 12))
    assert (row.params, row.biases) == (params, 0 if bias else 64)
    assert row.params == sum(p.numel() for p in m.parameters())
    assert row.macs == count.get_total_flops() // 2 == 186_880
    # the depthwise part's lines, then the pointwise part's: 10x8 outputs x 32 channels x 9
    assert row.explain[4] == "MACs: 10x8x32 outputs x 9 = 23,040"
    assert row.explain[-1] == "MACs: 23,040 depthwise + 10x8x64 outputs x 32 = 186,880"


@pytest.mark.parametrize("array, ok", [
    ("[[[1,2,3],[4,5,6],[7,8,9]]]", True),  # 1x3x3: one leading 1 left out of 1x1x3x3
    ("[[[[1,2,3],[4,5,6],[7,8,9]]]]", True),
    ("[[1,2],[3]]", "every row of the array needs the same length"),  # ragged
    ("[[1,2,3],[4,5,6],[7,8]]", "every row of the array needs the same length"),
    ("[[1,2,3,4],[4,5,6,7],[7,8,9,1]]", "the array is 3x4, expected 1x1x3x3"),  # not the kernel
    ("[]", "the array is 0, expected 1x1x3x3"),
])
def test_written_kernels_by_shape(array, ok):
    text = f"input 3x3x1 | conv 3x3x1 kernel={array}"
    if ok is True:
        assert cnncalc.summarize(text).rows[0].params == 10
        return
    with pytest.raises(cnncalc.CnnCalcError, match=re.escape(f"kernel=: {ok}")):
        cnncalc.summarize(text)


def test_real_options_take_whole_numbers():
    # 'slope 1' is the identity on both sides of 0; 'eps 1' is layer_norm's eps=1.0
    relu = cnncalc.to_torch(cnncalc.summarize("input 2x1x1 | leakyrelu slope 1"))
    x = torch.tensor([[[[-2.0], [3.0]]]])
    assert relu(x).flatten().tolist() == [-2.0, 3.0]
    s = cnncalc.summarize("input 3x1x4 | layernorm eps 1")
    assert s.rows[0].layer.eps == 1.0 and s.rows[0].layer.describe() == "layernorm eps 1"
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    want = F.layer_norm(x, (4,), eps=1.0)
    assert torch.allclose(cnncalc.to_torch(s)(x), want)
    scale = cnncalc.to_torch(cnncalc.summarize("input 2x1x3 | layerscale init 2"))
    assert scale(torch.ones(1, 1, 2, 3)).flatten().tolist() == [2.0] * 6


@pytest.mark.parametrize("text, said", [
    ("layernorm eps 0", "1:25: eps must be positive, received 0"),
    ("leakyrelu slope 0.0", "1:25: slope must be positive, received 0.0"),
    ("layerscale init 0", "1:26: init must be positive, received 0"),
])
def test_real_options_must_be_positive(text, said):
    # the column is the option's word: 'input 8x8x4 | ' is 14 characters
    with pytest.raises(cnncalc.CnnCalcError) as e:
        cnncalc.summarize(f"input 8x8x4 | {text}")
    assert said in str(e.value)


def test_separable_convolution_operations_by_hand():
    # one addition per output for the bias and one comparison for the ReLU: 10x8x64 outputs
    # (12x10 less the 3x3 kernel's border) x 2
    ops = [cnncalc.summarize(f"input 12x10x32 | sepconv 3x3x64 {o}").rows[0].ops
           for o in ("relu", "", "nobias")]
    assert ops == [10 * 8 * 64 * 2, 10 * 8 * 64, 0]


@pytest.mark.parametrize("kind", ["groupnorm 2", "instancenorm", "layernorm", "relu"])
def test_a_vector_has_no_pixels_to_see(kind):
    # a flat vector has no spatial axis: no field to widen, whatever the layer (instancenorm
    # is refused there, as PyTorch reads (N, C) as one unbatched example)
    if kind == "instancenorm":
        with pytest.raises(cnncalc.CnnCalcError, match="instancenorm needs a feature map"):
            cnncalc.summarize(f"input 12 | {kind}")
        return
    assert cnncalc.summarize(f"input 12 | {kind}").rows[0].field == ()


def test_depthwise_convolution_explains_itself_by_hand():
    # Keras 'same' at stride 2: ceil(15 / 2) = 8, (8 - 1) x 2 + 3 - 15 = 2 pixels of padding,
    # one each side; ceil(11 / 2) = 6, (6 - 1) x 2 + 3 - 11 = 2. One 3x3 kernel per channel and
    # multiplier: 3 x 3 x 64 = 576 weights; 8 x 6 x 64 outputs of 9 MACs each: 27,648
    row = cnncalc.summarize("input 15x11x32 | dwconv 3x3 multiplier 2 stride 2 same",
                            explain=True).rows[0]
    assert (row.output, row.params, row.macs) == ((8, 6, 64), 640, 27_648)
    assert row.explain == [
        "width: same padding, stride 2: ceil(15 / 2) = 8, pad 1 left, 1 right",
        "height: same padding, stride 2: ceil(11 / 2) = 6, pad 1 top, 1 bottom",
        "weights: 3 x 3 x 32 / 32 groups x 64 = 576", "biases: 64 (one per filter)",
        "MACs: 8x6x64 outputs x 9 = 27,648"]


@pytest.mark.parametrize("kind", ["dropout", "droppath"])
def test_a_rate_of_zero_keeps_everything_and_one_is_refused(kind):
    # a whole-number rate reads as a real one; rate 0 drops nothing even in training (as
    # PyTorch's Dropout(0)); rate 1 would drop everything: refused, pointing at the rate
    # ('input 8x8x4 | ' is 14 characters, the kind's word follows), as 'the rate 2x2' is
    s = cnncalc.summarize(f"input 4x3x2 | {kind} 0")
    assert s.rows[0].layer.rate == 0.0 and s.rows[0].layer.describe() == f"{kind} 0"
    net = cnncalc.to_torch(s).train()
    x = torch.rand(8, 3, 4, 2) + 1
    assert torch.equal(net(x), x)
    column = 14 + len(kind) + 2
    for rate, said in (("1", "the rate must be in [0, 1), received 1"),
                       ("1.0", "the rate must be in [0, 1), received 1.0"),
                       ("2x2", "the rate: expected one number, received 2x2")):
        with pytest.raises(cnncalc.CnnCalcError) as e:
            cnncalc.summarize(f"input 8x8x4 | {kind} {rate}")
        assert f"<spec>:1:{column}: {said}" in str(e.value)


def test_flatten_explains_its_count_by_hand():
    # 8 x 6 x 3 = 144 values in a row
    assert cnncalc.summarize("input 8x6x3 | flatten", explain=True).rows[0].explain == [
        "8 x 6 x 3 = 144"]


def test_the_picture_order_by_hand():
    # a spec writes width before height (the lecture notes' 443x592x3 is 443 wide); an array
    # holds rows first; depth, before both, stays first. Written out here, since the Keras
    # value tests convert their inputs with this very function
    from cnncalc.backends.data import picture_shape
    from cnncalc.layers.base import picture
    assert [picture(s) for s in ((5,), (4, 3), (5, 4, 3))] == [(5,), (3, 4), (5, 3, 4)]
    assert picture_shape((443, 592, 3)) == (592, 443, 3)
    assert picture_shape((8, 7, 6, 3)) == (8, 6, 7, 3) and picture_shape((12, 4)) == (12, 4)


@pytest.mark.parametrize("text, picture, said", [
    # PyTorch refuses each: 6 channels are not a multiple of 2^2; 5 columns or rows not of 2
    ("input 4x4x6 | pixelshuffle 2", (1, 6, 4, 4), "pixelshuffle 2 needs channels divisible "
                                                    "by 4, received 6"),
    ("input 5x4x2 | pixelunshuffle 2", (1, 2, 4, 5), "pixelunshuffle 2 needs the width "
                                                      "divisible by 2, received 5"),
    ("input 4x5x2 | pixelunshuffle 2", (1, 2, 5, 4), "pixelunshuffle 2 needs the height "
                                                      "divisible by 2, received 5"),
])
def test_pixel_shuffles_refuse_what_pytorch_refuses(text, picture, said):
    fn = F.pixel_shuffle if "pixelshuffle" in text else F.pixel_unshuffle
    with pytest.raises(RuntimeError):
        fn(torch.zeros(picture), 2)
    with pytest.raises(cnncalc.CnnCalcError, match=said):
        cnncalc.summarize(text)
