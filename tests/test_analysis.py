"""Beyond shapes: compute, receptive fields, memory, explain and fit."""

import json
import re
from fractions import Fraction

import pytest
from click.testing import CliRunner

from cnncalc.cli import main
from cnncalc.analysis.memory import estimate, fit
from cnncalc.backends.check import check
import cnncalc
from conftest import SPECS, spec_text, summarize


def test_vgg16_macs_match_torchvision():
    # torchvision publishes 15.47 GFLOPS for vgg16, counting multiply-accumulates
    assert summarize(spec_text("vgg16.cnn")).total("macs") == 15_470_264_320


@pytest.mark.parametrize("layer,size,jump", [
    ("block5_conv3", 196, 16),  # Araujo et al. (Distill 2019) list VGG16's conv5_3 at 196
    ("block5_pool", 212, 32),
])
def test_vgg16_receptive_fields(layer, size, jump):
    row = next(r for r in summarize(spec_text("vgg16.cnn")).rows if r.name == layer)
    assert all((a[0], a[1]) == (size, jump) for a in row.rf)


def test_receptive_field_by_hand():
    # two valid 3x3 convolutions then a 2x2 pool: 3, then 5, then 6 with jump 2
    rows = summarize("input 32x32x1 | conv 3x3x1 | conv 3x3x1 | maxpool 2").rows
    assert [r.rf[0][:2] for r in rows] == [(3, 1), (5, 1), (6, 2)]
    # dilation 2 makes a 3x3 kernel see 5 pixels
    assert summarize("input 32x32x1 | conv 3x3x1 dilation 2").rows[0].rf[0][0] == 5


def test_flops_convention():
    # conv 3x3x2 on 4x4x1 valid: 2x2x2 outputs, 9 MACs each; bias adds 8, relu 8
    r = summarize("input 4x4x1 | conv 3x3x2 relu").rows[0]
    assert (r.macs, r.flops) == (72, 2 * 72 + 8 + 8)


def test_transposed_convolution_macs_count_every_input():
    # each of the 10x8 inputs scatters a 3x3x128x32 kernel, cropped or not
    r = summarize("input 10x8x128 | deconv 3x3x32 stride 2 same").rows[0]
    assert r.macs == 10 * 8 * 3 * 3 * 128 * 32


def test_vgg16_memory():
    m = estimate(summarize(spec_text("vgg16.cnn")), batch=1)
    assert m.param_bytes == 138_357_544 * 4  # the well-known 528 MB of VGG16 weights
    # the peak is block1_conv2 reading and writing 224x224x64 floats
    assert m.peak_activation_bytes == 2 * 224 * 224 * 64 * 4


def test_fit_is_the_largest_batch():
    s = summarize(spec_text("resnet50.cnn"))
    budget = 8 * 2**30
    best = fit(s, budget)
    assert estimate(s, best["training"]).training_bytes <= budget
    assert estimate(s, best["training"] + 1).training_bytes > budget


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_explain_cli():
    res = run("explain", "-e", "input 443x592x3 | conv 5x5x6 valid", "--layer", "conv_1")
    assert res.exit_code == 0
    assert "height: floor((592 + 0 - 5) / 1) + 1 = 588" in res.output
    assert "weights: 5 x 5 x 3 x 6 = 450" in res.output


def test_columns_all_and_json_fields():
    res = run("summary", str(SPECS / "vgg16.cnn"), "--columns", "all")
    assert res.exit_code == 0 and "15.47 G" in res.output and "527.8 MiB" in res.output
    data = json.loads(run("summary", str(SPECS / "vgg16.cnn"), "--format", "json", "--batch",
                          "2").output)
    assert data["totals"]["macs"] == 2 * 15_470_264_320
    assert data["totals"]["param_bytes"] == 138_357_544 * 4
    pool5 = data["layers"][17]
    assert pool5["receptive_field"][0] == {"size": 212, "jump": 32, "start": 15.5}
    assert run("summary", "-e", "input 8x8x1", "--columns", "nope").exit_code == 2


def test_fit_cli():
    import cnncalc
    res = run("fit", str(SPECS / "vgg16.cnn"), "--memory", "16GiB")
    best = cnncalc.fit(SPECS / "vgg16.cnn", "16GiB")  # the API the command calls
    assert res.exit_code == 0 and f"training (adam): batch {best['training']:,}" in res.output
    s = summarize(spec_text("vgg16.cnn"))
    assert estimate(s, best["training"]).training_bytes <= 16 * 2**30 < \
        estimate(s, best["training"] + 1).training_bytes


SWEEP_SPECS = [
    "input ?x?x1\nconv 3x3x4\nmaxpool 2\nconv 5x5x4 stride 2\nmaxpool 3 stride 2 ceil",
    "input ?x?x2\nconv 3x3x2 same stride 2\nadd { branch { conv 3x3x2 same } branch { } }\n"
    "conv 4x4x2 pad 1 stride 3\nname_me",
    "input ?x?x1\nconv 3x3x2 name=a\nmaxpool 2\ndeconv 2x2x2 stride 2\nconcat a crop\nconv 3x3x1",
    "input ?x?x1\nconv 3x3x2 name=a\nmaxpool 2\nupsample 2\nadd a",
    # floor(n / 2) and ceil(n / 2) agree for even sizes only
    "input ?x?x3\nconcat { branch { maxpool 2 } branch { conv 3x3x3 same stride 2 } }",
    "input ?x?x3\nconv 3x3x2 name=a\nmaxpool 2\nconcat { branch { } branch { conv 3x3x2 same } }",
]


@pytest.mark.parametrize("text", [t.replace("\nname_me", "") for t in SWEEP_SPECS])
def test_sizes_agree_with_brute_force(text):
    from cnncalc import SpecDesignError, analyse, parse as load
    from cnncalc import with_input
    from cnncalc.analysis.sizes import sweep
    net = load(text)
    axis = sweep(net, 1, 80)[0]
    for n in range(1, 81):
        try:
            s = analyse(with_input(net, f"{n}x{n}x{net.input.shape[-1]}"))
        except SpecDesignError:
            assert not axis.valid[n - 1], n
            continue
        assert axis.valid[n - 1], n
        exact = all(d == 0 for r in s.rows if r.geometry for d in r.geometry.get("dropped", ()))
        assert axis.exact[n - 1] == exact, n
        if axis.output is not None:
            assert axis.output[n - 1] == s.output[0], n


def test_sizes_unet_and_vgg():
    """Through the API as a user calls it (cnncalc.sizes), the command printing the same."""
    import cnncalc
    unet = spec_text("unet.cnn").replace("input 572x572x1", "input ?x?x1")
    axis = cnncalc.sizes(unet, 1, 1000)[0]
    assert axis.exact[571] and axis.output[571] == 388  # the paper's 572 -> 388
    axis = cnncalc.sizes(SPECS / "vgg16.cnn", 1, 4096, open_all=True)[0]
    assert list(axis.values[axis.exact]) == list(range(32, 4097, 32))  # five pools of 2
    res = run("sizes", "-e", "input ?x?x1 | conv 5x5x1 | maxpool 2", "--range", "1:20")
    assert res.exit_code == 0 and "exact: 6 to 20, every 2" in res.output


def test_open_sizes_as_formulas():
    from cnncalc import analyse, parse as load
    s = analyse(load("input HxWx3 | maxpool 4 stride 2"), open_sizes=True)
    # floor((H - 4) / 2) + 1 is floor(H / 2) - 1: the whole part of the offset comes out
    assert [str(v) for v in s.rows[0].output] == ["floor(H / 2) - 1", "floor(W / 2) - 1", "3"]
    res = run("summary", "-e", "input ?x?x1 | conv 5x5x2 | maxpool 2")
    assert res.exit_code == 0 and "(W - 4)x(H - 4)x2" in res.output
    assert run("summary", "-e", "input HxWx3 | relu", "--format", "json").exit_code == 2
    # 'same' at stride 2 pads (ceil(H / 2) - 1) x 2 + 3 - H in all, half before, the rest
    # after: written as a difference, not as '+ -(H)'
    s = analyse(load("input HxWx3 | conv 3x3x8 same stride 2"), explain=True, open_sizes=True)
    total = "max(2 x ceil(H / 2) + 1 - H, 0)"
    assert f"pad floor({total} / 2) left, {total} - floor({total} / 2) right" in \
        s.rows[0].explain[0]
    assert not any("+ -" in line for line in s.rows[0].explain)


def test_nested_floors_are_one_floor():
    """U-Net's four valid blocks and pools: one floor of (W + 4) / 16, not four nested ones;
    at 572 it gives the paper's 388 (Ronneberger et al., fig. 1), and it agrees with the
    numbers at every size from 1 to 1,000 where the design is valid."""
    from cnncalc import analyse, parse as load
    from cnncalc.analysis.sizes import sweep
    text = spec_text("unet.cnn").replace("input 572x572x1", "input WxHx1")
    s = analyse(load(text), open_sizes=True)
    out = str(s.output[0])
    assert out == "16 x (floor((W + 4) / 16)) - 188"
    formula = lambda w: 16 * ((w + 4) // 16) - 188  # noqa: E731 - the printed formula
    assert formula(572) == 388
    axis = sweep(load(text), 1, 1000)[0]
    for w in axis.values[axis.valid]:
        assert formula(int(w)) == axis.output[w - 1], w


def test_ceil_formula_notes_pytorchs_last_window_rule():
    import torch
    from cnncalc import analyse, parse as load
    from cnncalc import with_input
    # PyTorch on a 5-wide input, pool 2, stride 2, pad 1, ceil mode: the last window would
    # start in the padding, so it is dropped and 3 remain, where ceil(5 / 2) + 1 says 4.
    pool = torch.nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)
    assert pool(torch.zeros(1, 1, 5, 5)).shape[-1] == 3
    net = load("input HxWx1 | maxpool 2 stride 2 pad 1 ceil")
    row = analyse(net, open_sizes=True).rows[0]
    assert str(row.output[0]) == "ceil(H / 2) + 1" and "last window" in row.note
    assert analyse(with_input(net, "5x5x1")).output[0] == 3
    # without padding, and with the window at least the stride, the rule never fires
    assert analyse(load("input HxWx1 | maxpool 3 stride 2 ceil"), open_sizes=True).rows[0].note is None


@pytest.mark.parametrize("text", [t.replace("\nname_me", "") for t in SWEEP_SPECS[:2]] + [
    "input ?x?x1\nconv 3x3x2 same stride 2\ndeconv 3x3x2 stride 2\nupsample 2\nzeropad 1\n"
    "conv 5x5x1 dilation 2"])
def test_formulas_agree_with_numbers(text):
    import math
    from cnncalc import SpecDesignError, analyse, parse as load
    from cnncalc import with_input
    net = load(text)
    formula = str(analyse(net, open_sizes=True).output[0])
    for n in range(12, 40):
        try:
            want = analyse(with_input(net, f"{n}x{n}x{net.input.shape[-1]}")).output[0]
        except SpecDesignError:
            continue
        # our own generated text, evaluated in a closed namespace, in a test only
        got = eval(formula.replace(" x ", " * ").replace(" mod ", " % "),
                   {"__builtins__": {}, "floor": math.floor, "ceil": math.ceil, "W": n, "H": n})
        assert got == want, (n, formula)


def test_branches_take_the_largest_field_and_flag_misaligned_centres():
    from cnncalc import analyse, parse as load
    aligned = analyse(load("input 30x30x8 | add { branch { conv 3x3x8 same } "
                           "branch { zeropad 1 | conv 3x3x8 | conv 1x1x8 } }")).rows[0]
    assert aligned.rf[0][0] == 3 and aligned.note is None
    wide = analyse(load("input 30x30x8 | concat { branch { conv 5x5x8 same } branch { } }")).rows[0]
    assert wide.rf[0][0] == 5  # the largest over the paths
    # 'same' pads a 2x2 kernel after (0, 1); zeropad 1 then valid then a 2x2 pool sits elsewhere
    odd = analyse(load("input 30x30x8 | add { branch { conv 2x2x8 same } "
                       "branch { zeropad 1 | conv 2x2x8 | maxpool 2 stride 1 } }")).rows[0]
    assert odd.note == "receptive-field centres of the branches differ"


# The receptive field, size and place, of the centre unit measured by gradient (check's
# measure: positive weights, max pools read as averages) for every kind with a window,
# between two convolutions so that offsets, strides and dilations compose.
FIELD_KINDS = [
    "conv 3x2x3 stride 2x1 pad 1x0", "conv 2x2x3 same stride 2", "conv 3x3x4 dilation 2",
    "conv 3x3x4 pad half dilation 2", "conv 3x3x4 groups 2", "dwconv 3x2 stride 2",
    "dwconv 2x2 same multiplier 2", "sepconv 3x3x4 dilation 2 stride 2",
    "maxpool 3 stride 2", "avgpool 2", "maxpool 3 stride 2 pad 1", "maxpool 2 same",
    "avgpool 3 stride 2 same", "maxpool 3 stride 2 ceil", "zeropad 2x0x1x3", "crop 3x0x1x2",
    "reflectpad 1x2", "pixelunshuffle 2", "shuffle 2", "batchnorm",
    "groupnorm 2", "instancenorm affine", "layernorm", "prelu", "dropout 0.5", "droppath 0.2",
    "layerscale", "relu6", "add { branch { conv 3x3x4 same } branch { conv 1x1x4 } }",
    "concat { branch { maxpool 3 stride 1 same } branch { conv 5x5x4 same } }",
    "conv 3x3x4 name=a | conv 3x3x4 | conv 3x3x4 | concat a crop",
    "conv 3x3x4 same name=b | conv 3x3x4 same | add b",
]


@pytest.mark.parametrize("kind", FIELD_KINDS)
def test_the_receptive_field_is_where_the_gradient_says(kind):
    s = summarize(f"input 42x38x4 | conv 3x3x4 | {kind} | conv 3x2x4 stride 2 | conv 3x3x4")
    result = check(s, device="cpu")
    assert result.rf is not None and result.rf_from is not None, "the field must be measured"
    assert (result.rf[1], result.rf_from[0]) == (result.rf[2], result.rf_from[1])


# --- the bugs of issue 17, each worked out by hand here (Keras' values are the other source,
# tests/test_keras_values.py): 1-D so that every number can be checked on paper ---------------

def _run_1d(text, kernels, x):
    """cnncalc's module for a 1-D spec with one channel, its kernels set to ``kernels`` in
    order and every bias to 0, run on the sequence ``x``; the output per channel."""
    import torch
    net = cnncalc.to_torch(text).eval()
    weights = [p for p in net.parameters() if p.dim() > 1]
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for p, k in zip(weights, kernels, strict=True):
            p.copy_(torch.tensor(k, dtype=p.dtype).reshape(p.shape))
        y = net(torch.tensor(x, dtype=torch.float32).reshape(1, -1, 1))
    return y[0].T.tolist()


@pytest.mark.parametrize("text, kernel, n, want", [
    # even kernel, stride 1: total padding 1, TensorFlow puts it after (before = total // 2):
    # y[i] = x[i] + 10 x[i + 1], the last reads a zero
    ("input 5x1 | conv 2x1 same", [1, 10], 5, [[21, 32, 43, 54, 5]]),
    # kernel 4, stride 2 on 7: ceil(7 / 2) = 4 outputs, total (4 - 1) x 2 + 4 - 7 = 3, so 1
    # before and 2 after: windows over [0 1 2 3], [2 3 4 5], [4 5 6 7], [6 7 0 0]
    ("input 7x1 | conv 4x1 same stride 2", [1, 10, 100, 1000], 7, [[3210, 5432, 7654, 76]]),
    # transposed, kernel 3, stride 2 on 5: the full output has (5 - 1) x 2 + 3 = 11 values,
    # y[2i + k] += x[i] w[k]; 'same' keeps 10, cropping k - s = 1, after (as the conv pads)
    ("input 5x1 | deconv 3x1 stride 2 same", [1, 10, 100], 5,
     [[1, 10, 102, 20, 203, 30, 304, 40, 405, 50]]),
])
def test_placement_by_hand(text, kernel, n, want):
    assert _run_1d(text, [kernel], list(range(1, n + 1))) == want


def test_average_pooling_counts_only_real_pixels():
    # the figure, measured in TensorFlow: 3 x 3 windows, stride 2, 'same' on a 6 x 6
    # picture holding 1..36: the top-right window has six real pixels, 5 6 11 12 17 18: 11.5
    import torch
    net = cnncalc.to_torch("input 6x6x1 | avgpool 3 stride 2 same")
    y = net(torch.arange(1.0, 37.0).reshape(1, 6, 6, 1))
    assert y[0, 0, 2, 0].item() == pytest.approx(11.5, abs=1e-5)


def test_a_centre_crop_of_an_odd_difference_starts_at_its_floor():
    # a keeps x (a 1-wide kernel of 1); the valid 4-wide conv leaves 4 of 7: 3 to crop, the
    # odd one after, as Keras U-Nets write Cropping1D((3 // 2, 3 - 3 // 2)): x[1:5]
    out = _run_1d("input 7x1 | conv 1x1 name=a | conv 4x1 | concat a crop",
                  [[1], [1, 1, 1, 1]], [1, 2, 3, 4, 5, 6, 7])
    assert out[1] == [2, 3, 4, 5] and out[0] == [10, 14, 18, 22]


def test_a_dense_layer_on_a_map_works_at_every_position():
    # Keras Dense on 4x4x8 maps each of the 16 positions: 16 x 8 x 3 = 384 MACs, 27 params;
    # PyTorch's flop counter agrees through check
    s = summarize("input 4x4x8 | dense 3")
    assert (s.rows[0].output, s.rows[0].macs, s.rows[0].params) == ((4, 4, 3), 384, 27)
    assert check(s).layers[0].torch_macs == 384


def test_linear_costs_nothing():
    # conv 1x1x8 on 4x4x8: 4 x 4 x 8 x 8 = 1,024 MACs, one bias addition per output (128);
    # 'linear' is the identity, no operation, while relu is one per output
    ops = [summarize(f"input 4x4x8 | conv 1x1x8 {a}").rows[0].ops for a in ("linear", "", "relu")]
    assert ops == [128, 128, 256]
    assert summarize("input 4x4x8 | conv 1x1x8 linear").rows[0].flops == 2 * 1024 + 128


def test_batchnorm_is_built_with_keras_constants():
    # Keras BatchNormalization: epsilon 1e-3, momentum 0.99 (PyTorch's momentum is the new
    # value's weight: 1 - 0.99); PyTorch's own defaults are 1e-5 and 0.1
    import torch
    bn = [m for m in cnncalc.to_torch("input 4x4x3 | batchnorm").modules()
          if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)][0]
    assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.01)


@pytest.mark.parametrize("text, measured", [
    # a sequence: 3, then a 2-pool (4), then 3 at jump 2: 4 + 2 x 2 = 8
    ("input 40x2 | conv 3x2 | maxpool 2 | conv 3x2", ((8,), (16,))),
    # two 'same' 5-convs: 9 pixels; the centre unit (4 of 9) sees all of 0..8, touching both
    # borders; a unit off centre would be cut and could not be measured
    ("input 9x1 | conv 5x1 same | conv 5x1 same", ((9,), (0,))),
    # LeNet-5's C5 sees the whole 32 x 32 picture from its corner
    (SPECS / "lenet5.cnn", ((32, 32), (0, 0))),
    # nothing measured when the centre unit's field sticks out of the input (left only here:
    # 8 zeros before, so its 5 pixels start at -1)
    ("input 10x1 | zeropad 8x0 | conv 5x1", None),
    # by one pixel: 4 zeros and a 9-wide window give 6 outputs; the centre (3) sees -1..7
    ("input 10x1 | zeropad 4x0 | conv 9x1", None),
    # and on the right: 2 zeros after, 4 outputs; the centre (2) sees 2..10 of 0..9
    ("input 10x1 | zeropad 0x2 | conv 9x1", None),
])
def test_the_centre_units_field_is_measured_where_it_lies_inside(text, measured):
    result = check(cnncalc.summarize(text))
    assert result.ok
    if measured is None:
        assert result.rf is None
    else:
        assert (result.rf[2], result.rf_from[1]) == measured


def test_a_gate_seeing_the_whole_map_leaves_the_centres_aligned():
    # squeeze and excitation: the gate's path sees everything (no field), the other path its
    # own; nothing to warn about
    s = summarize("input 20x20x4 | conv 3x3x4 | multiply { branch { } branch { globalavgpool "
                  "| dense 4 hardsigmoid } } | conv 3x3x4")
    assert not any(r.note or r.misaligned for r in s.rows)


@pytest.mark.parametrize("k, size", [(2, 2), (3, 2), (4, 3), (5, 3)])
def test_the_field_after_nearest_upsampling(k, size):
    # upsampled pixel j copies input j // 2, so k neighbours j..j+k-1 read inputs j // 2 ..
    # (j + k - 1) // 2: at most k // 2 + 1 of them (k = 3: 2; k = 4: 3). Counted here by
    # brute force: the gradient of every output unit, its widest support
    import torch
    s = summarize(f"input 12x1 | upsample 2 | conv {k}x1")
    assert s.rows[-1].field[0][0] == size == k // 2 + 1
    net = cnncalc.to_torch(s, inplace=False).double()
    widest = 0
    for unit in range(s.rows[-1].output[0]):
        x = torch.rand(1, 12, 1, dtype=torch.float64, requires_grad=True)
        net(x)[0, unit, 0].backward()
        seen = x.grad[0, :, 0].nonzero()
        widest = max(widest, int(seen.max() - seen.min()) + 1)
    assert widest == size


def test_fields_with_open_sizes():
    # 'same' with stride 2 pads by an amount that depends on the open size, so where a field
    # starts is unknown, but its size is not: r + (k - 1) x jump (Araujo et al.): 3; 3 + 2 x 2
    # = 7; 7 + 2 x 2 = 11, at a jump of 2
    s = cnncalc.summarize("input ?x?x1 | conv 3x3x1 same stride 2 | conv 3x3x1 | conv 3x3x1")
    assert [r.rf for r in s.rows] == [((size, 2, None),) * 2 for size in (3, 7, 11)]


def test_fields_after_upsampling_with_open_sizes():
    # a transposed 3-kernel at stride 2 after a jump of 2: output o takes inputs o/2 - 1 and
    # o/2 (even o) or one (odd o): two neighbours, 3 + 1 x 2 = 5 pixels, on a grid twice as
    # fine (jump 1); a 3-kernel on it: three neighbouring inputs at most, 3 + 2 x 2 = 7
    s = cnncalc.summarize("input ?x?x1 | conv 3x3x1 same stride 2 | deconv 3x3x1 stride 2 "
                          "| conv 3x3x1")
    assert [r.field for r in s.rows] == [((size, jump, None),) * 2
                                         for size, jump in ((3, 2), (5, 1), (7, 1))]


def test_field_centres_by_hand():
    # the first output of a 4-kernel sees pixels 0..3, centred on 1.5; a 3-kernel at stride 2
    # on that sees outputs 0..2: pixels 0..5, centre 2.5, jump 2; a 2-kernel on that sees two
    # of those, 2 apart: pixels 0..7, centre 3.5
    s = cnncalc.summarize("input 8x8x1 | conv 4x4x1 | conv 3x3x1 stride 2 | conv 2x2x1")
    assert [r.rf for r in s.rows] == [((4, 1, 1.5),) * 2, ((6, 2, 2.5),) * 2, ((8, 2, 3.5),) * 2]


def test_a_head_leaves_the_field_of_the_flow():
    # 'output { ... }' is a side output: the next layer reads the block's input, so its field
    # is 3 + 2 = 5 (not the head's 3 + 4 = 7 grown to 9), and nothing is merged: no note
    s = cnncalc.summarize("input 32x32x3 | conv 3x3x8 | output { conv 5x5x2 } | conv 3x3x8")
    head, inside, after = s.rows[1], s.rows[2], s.rows[3]
    assert inside.field == ((7, 1, 3),) * 2
    assert head.field == ((3, 1, 1),) * 2 and after.field == ((5, 1, 2),) * 2
    assert head.note is None and not head.misaligned


@pytest.mark.parametrize("text, line", [
    # a block's branches give 4 and 6 channels; 'concat a' puts a's 4 after the current 6
    ("input 8x8x3 | concat { branch { conv 1x1x4 } branch { conv 3x3x6 same } }",
     "channels: 4 + 6 = 10"),
    ("input 8x8x3 | conv 1x1x4 name=a | conv 3x3x6 same | concat a", "channels: 6 + 4 = 10"),
])
def test_a_concat_explains_its_channels(text, line):
    row = next(r for r in cnncalc.summarize(text, explain=True).rows if r.kind == "concat")
    assert line in row.explain


@pytest.mark.parametrize("text, where", [
    # 'same' pads a 2-kernel 0 before, 1 after: its first output is centred on pixel 0.5;
    # a 3-kernel padded 1 before on pixel 0; a 1x1 on pixel 0
    ("input 8x8x3 | concat { branch { conv 2x2x4 same } branch { conv 3x3x4 same } }",
     "the branches"),
    ("input 8x8x3 | conv 1x1x4 name=a | conv 2x2x4 same | add a", "'a' and the current tensor"),
])
def test_merged_paths_whose_centres_differ_are_marked(text, where):
    row = next(r for r in cnncalc.summarize(text).rows if r.kind in ("concat", "add"))
    assert row.misaligned is True
    assert row.note == f"receptive-field centres of {where} differ"


def test_a_residual_add_keeps_the_wider_field():
    # two 3x3 'same' convolutions see 5x5, the skip 3x3, both centred on pixel 0: the sum
    # sees 5x5 (and is aligned)
    text = "input 16x16x3 | conv 3x3x4 same name=a | conv 3x3x4 same | add a"
    row = cnncalc.summarize(text).rows[-1]
    assert row.field == ((5, 1, 0),) * 2 and not row.misaligned and row.note is None


def test_an_unknown_reference_names_the_eight_layers_before():
    # ten layers before 'add nope': the message lists the last eight of them, in order
    text = "input 8x8x3 | " + " | ".join(["relu"] * 10) + " | add nope"
    result = CliRunner().invoke(main, ["summary", "-e", text])
    assert result.exit_code == 2
    assert "(earlier: " + ", ".join(f"relu_{i}" for i in range(3, 11)) + ")" in result.output


def test_a_cropped_skip_lines_up_by_hand():
    # a: 2x2 windows at stride 2, unit i sees pixels 2i..2i+1 (centre 2i + 0.5), 10 wide; a
    # 3x3 on a: units 0..2 of a, pixels 0..5, centre 2.5, 8 wide. 'concat a crop' takes a from
    # offset (10 - 8) / 2 = 1: its unit 1 sees pixels 2..3, centre 2.5, the same centre
    text = "input 20x20x1 | conv 2x2x2 stride 2 name=a | conv 3x3x2 | concat a crop"
    row = cnncalc.summarize(text).rows[-1]
    assert row.field == ((6, 2, 2.5),) * 2
    assert not row.misaligned and row.note is None


def test_open_sizes_need_numbers_unless_asked_for():
    # every way in refuses an open size with the same message, the backend too; explanations
    # are computed only when asked for
    from cnncalc import parse as load
    from cnncalc.analysis.walk import analyse as walk_analyse
    from cnncalc.backends.torch import to_torch
    net = load("input HxWx3 | relu")
    for build in (walk_analyse, to_torch, cnncalc.analyse):
        with pytest.raises(cnncalc.SpecDesignError, match="needs numbers"):
            build(net)
    conv = load("input 8x8x3 | conv 3x3x4")
    assert walk_analyse(conv).rows[0].explain is None
    assert "weights: 3 x 3 x 3 x 4 = 108" in walk_analyse(conv, explain=True).rows[0].explain


@pytest.mark.parametrize("text, field", [
    # a transposed convolution puts input i's centre on output s*i - p + (k - 1) / 2 (PyTorch's
    # ConvTranspose: o = s*i - p + t): output 0 lies at input (p - (k - 1) / 2) / s = -1/4 for
    # k 4, s 2 and the crop p 1 of 'same'; input units are 2 pixels apart, unit 0 centred on
    # pixel 1: 1 - 2/4 = 0.5. Two neighbours of 3 pixels at a jump of 2: 5
    ("input 16x16x1 | conv 3x3x1 stride 2 | deconv 4x4x1 stride 2 same", (5, 1, 0.5)),
    # k 3, s 2, 'same': Keras crops (3 - 2) // 2 = 0 before (the extra pixel goes after), so
    # output 0 lies at input (0 - 1) / 2 = -1/2: pixel 1 - 1/2 x 2 = 0
    ("input 16x16x1 | conv 3x3x1 stride 2 | deconv 3x3x1 stride 2 same", (5, 1, 0)),
    # nearest upsampling by 3 maps output u to input (u + 1/2) / 3 - 1/2 (half-pixel
    # centres, as PyTorch's Upsample and TensorFlow's resize): -1/3, pixel 1 - 2/3 = 1/3
    ("input 16x16x1 | conv 3x3x1 stride 2 | upsample 3", (3, Fraction(2, 3), Fraction(1, 3))),
    ("input 16x16x1 | conv 2x2x1 stride 2 | upsample 2", (2, 1, 0)),
])
def test_upsampled_fields_are_centred_by_the_half_pixel_rule(text, field):
    assert cnncalc.summarize(text).rows[-1].field == (field,) * 2


def test_dense_on_a_1d_map_works_per_position():
    # Keras' Dense on the last axis: 10 positions x 4 x 3 = 120 MACs, each output sees its own
    # position only (field 1); a vector has no positions to speak of
    s = cnncalc.summarize("input 10x4 | dense 3", explain=True)
    row = s.rows[0]
    assert row.output == (10, 3) and row.macs == 120 and row.field == ((1, 1, 0),)
    assert "applied to the last axis of 10x4 at each of 10 positions, as Keras does" in row.explain
    flat = cnncalc.summarize("input 12 | dense 3", explain=True).rows[0]
    assert flat.field is None and not any("positions" in line for line in flat.explain)
    # besides the MACs: one addition per output for the bias, one comparison for a ReLU
    ops = [cnncalc.summarize(f"input 12 | dense 3 {o}").rows[0].ops
           for o in ("", "relu", "nobias", "nobias relu")]
    assert ops == [3, 6, 0, 3]


def test_layerscale_by_hand():
    # one scale per channel (8 weights), one multiplication per value: 4 x 3 x 8 = 96
    row = cnncalc.summarize("input 4x3x8 | layerscale", explain=True).rows[0]
    assert (row.weights, row.ops) == (8, 96)
    assert "weights: one scale per channel = 8" in row.explain


def test_output_of_a_saved_layer_passes_the_current_tensor_on():
    # a: 8 - 2 = 6; conv_1: 6 - 2 = 4; 'output a' collects a (6x6x4) and the 1x1 goes on
    # from conv_1's 4x4x2
    s = cnncalc.summarize("input 8x8x3 | conv 3x3x4 name=a | conv 3x3x2 | output a | conv 1x1x5")
    assert [r.output for r in s.rows] == [(6, 6, 4), (4, 4, 2), (4, 4, 2), (4, 4, 5)]
    assert s.outputs == [("a", (6, 6, 4)), ("conv_2", (4, 4, 5))]
    with pytest.raises(cnncalc.SpecDesignError, match="output takes a layer's name or a block, "
                                                     "not both"):
        cnncalc.parse("input 8x8x3 | conv 3x3x4 name=a | output a { conv 1x1x2 }")


@pytest.mark.parametrize("kind", ["globalavgpool", "globalmaxpool"])
def test_a_global_pool_explains_one_value_per_channel(kind):
    # 7 wide, 5 high, 16 channels: 16 values, each over the 35 of its channel
    row = cnncalc.summarize(f"input 7x5x16 | {kind}", explain=True).rows[0]
    assert row.explain == ["one value per channel: 7x5x16 -> 16"]
    assert (row.output, row.ops) == ((16,), 7 * 5 * 16)


@pytest.mark.parametrize("spec, seen", [
    # its one output per channel reads every pixel: 7 by 5 input pixels centred on pixel
    # (3, 2); after a 3x3 convolution on 9 by 7, all 9 by 7, centred on (4, 3)
    ("input 7x5x16", [(7, 3), (5, 2)]), ("input 9x7x16 | conv 3x3x16", [(9, 4), (7, 3)])])
def test_a_global_pool_sees_its_whole_input(spec, seen):
    row = cnncalc.summarize(f"{spec} | globalavgpool").rows[-1]
    assert [(size, start) for size, _, start in row.field] == seen


@pytest.mark.parametrize("pool, lines", [
    # 9 wide, 8 high: (9 + 2 - 3) / 2 + 1 = 5; (8 + 2 - 3) / 2 = 3.5, floored: 4 rows, and
    # the last row of the padded input is never read
    ("maxpool 3 stride 2 pad 1", ["width: floor((9 + 2 - 3) / 2) + 1 = 5",
                                  "height: floor((8 + 2 - 3) / 2) + 1 = 4 (1 left unused at "
                                  "the bottom)", "maxpool: 5x4x3 outputs, each over 3 x 3 values"]),
    # Keras' same: ceil(9 / 2) = 5 outputs need (5 - 1) 2 + 3 = 11 pixels, 2 of padding, one
    # each side; ceil(8 / 2) = 4 need 9, one pixel after
    ("avgpool 3 stride 2 same", ["width: same padding, stride 2: ceil(9 / 2) = 5, pad 1 left, "
                                 "1 right", "height: same padding, stride 2: ceil(8 / 2) = 4, "
                                 "pad 0 top, 1 bottom", "avgpool: 5x4x3 outputs, each over 3 x 3 "
                                 "values; the average counts real pixels only, as Keras does"]),
])
def test_a_pool_explains_its_sizes(pool, lines):
    assert cnncalc.summarize(f"input 9x8x3 | {pool}", explain=True).rows[0].explain == lines


CEIL_NOTE = ("ceil mode: PyTorch drops a last window that would start in the padding, which "
             "this formula leaves out for some sizes; 'cnncalc sizes' applies it")


@pytest.mark.parametrize("pool, k, s, p", [
    ("maxpool 3 stride 2 pad 1 ceil", 3, 2, 1), ("maxpool 1 stride 2 ceil", 1, 2, 0),
    ("avgpool 2 ceil", 2, 2, 0), ("maxpool 3 stride 2 ceil", 3, 2, 0),
    ("maxpool 3 stride 2 pad 1", 3, 2, None), ("maxpool 3 stride 2 same ceil", 3, 2, None)])
def test_the_ceil_note_on_open_sizes_is_where_pytorch_drops_a_window(pool, k, s, p):
    # PyTorch's ceil mode, run on every size from the window up to 40: where it gives one
    # window fewer than ceil((n + 2p - k) / s) + 1 for some n, an open size needs the note
    # (floor mode and 'same' never count a window past the input)
    import math
    import torch
    drops = p is not None and any(
        torch.nn.functional.max_pool1d(torch.zeros(1, 1, n), k, s, p, ceil_mode=True).shape[-1]
        < math.ceil((n + 2 * p - k) / s) + 1 for n in range(max(k, 2 * p + 1), 41))
    from cnncalc.api import analyse, parse
    row = analyse(parse(f"input ?x9x3 | {pool}"), open_sizes=True).rows[0]
    assert row.note == (CEIL_NOTE if drops else None)
    assert cnncalc.summarize(f"input 9x9x3 | {pool}").rows[0].note is None  # numbers: exact


# --- concat: its words, its checks and its crop, by hand -------------------------------------

@pytest.mark.parametrize("block, described, params, kept", [
    # 8 channels split 2 and 6: a 1x1 convolution from 6 to 6 channels, 36 + 6
    ("concat split 2x6 { branch { } branch { conv 1x1x6 } }", "concat split 2x6 { 2 branches }",
     42, 2),
    # equal halves: 4 to 4, 16 + 4; a share of one channel is allowed: 7 to 7, 49 + 7
    ("concat split { branch { } branch { conv 1x1x4 } }", "concat split { 2 branches }", 20, 4),
    ("concat split 1x7 { branch { } branch { conv 1x1x7 } }", "concat split 1x7 { 2 branches }",
     56, 1),
    ("concat split 4x4 { branch { } branch { conv 1x1x4 } }", "concat split 4x4 { 2 branches }",
     20, 4),
])
def test_a_split_gives_each_branch_its_channels(block, described, params, kept):
    import torch
    s = cnncalc.summarize(f"input 5x4x8 | {block}")
    row = s.rows[0]
    total = sum(r.params for r in s.rows)  # the block's row counts nothing of its own
    assert (row.layer.describe(), row.output, total) == (described, (5, 4, 8), params)
    # the empty first branch passes its share on untouched: the first channels
    x = torch.randn(2, 4, 5, 8)
    with torch.no_grad():
        y = cnncalc.to_torch(s).eval()(x)
    torch.testing.assert_close(y[..., :kept], x[..., :kept])


@pytest.mark.parametrize("text, message", [
    ("input 5x4x8 | concat split 0x8 { branch { } branch { } }", "split must be at least 1, "
     "received 0"),
    ("input 5x4x8 | concat split 3x6 { branch { } branch { } }", "split 3x6: expected 2 sizes "
     "adding up to the 8 channels"),
    ("input 8x8x3 | concat crop { branch { } }", "concat: 'crop' applies to 'concat ID crop' only"),
    # a crop needs the saved map at least as large on every axis: 8 < 10 in both, then 6 < 8
    # in the height alone
    ("input 8x8x2 | conv 1x1x2 name=a | zeropad 1 | concat a crop",
     "cannot crop 'a' (8x8x2) to the current size (10x10): it is smaller"),
    ("input 10x6x2 | conv 1x1x2 name=a | crop 1x0 | zeropad 0x1 | concat a crop",
     "cannot crop 'a' (10x6x2) to the current size (8x8): it is smaller"),
    ("input 8x8x2 | conv 1x1x2 name=a | globalavgpool | concat a",
     "concat: the current tensor gives 2 but 'a' gives 8x8x2; the ranks differ"),
    # the sizes must agree on every axis: the height alone, then the width alone
    ("input 8x8x3 | concat { branch { conv 1x3x4 } branch { } }",
     "branch 1 gives 8x6x4 but branch 2 gives 8x8x3; concatenated tensors must have the same"),
    ("input 8x8x3 | concat { branch { conv 3x1x4 } branch { } }",
     "branch 1 gives 6x8x4 but branch 2 gives 8x8x3"),
])
def test_concat_refuses_what_cannot_be_joined(text, message):
    with pytest.raises((cnncalc.SpecDesignError, cnncalc.SpecSyntaxError), match=re.escape(message)):
        cnncalc.summarize(text)


@pytest.mark.parametrize("text, message", [
    ("input 8x8x3 | concat crop { branch { } }", "concat: 'crop' applies to 'concat ID crop' only"),
    ("input 8x8x2 | conv 1x1x2 name=a | concat a split", "split applies to a block: add split "
     "{ branch { ... } ... }"),
    ("input 8x8x2 | conv 1x1x2 name=a | add a split", "split applies to a block: add split "
     "{ branch { ... } ... }"),
])
def test_options_of_the_wrong_form_of_merge_are_refused(text, message):
    with pytest.raises(cnncalc.SpecDesignError) as e:
        cnncalc.summarize(text)
    assert e.value.message == message


def test_a_cropped_concat_explains_its_crop():
    # a 12-wide map: a is 10 wide, the current tensor 8: (10 - 8) / 2 = 1 pixel off each side
    s = cnncalc.summarize("input 12x12x1 | conv 3x3x2 name=a | conv 3x3x2 | concat a crop",
                          explain=True)
    assert s.rows[-1].explain == ["centre crop of a: 10x10 -> 8x8, offsets (1, 1)",
                                  "channels: 2 + 2 = 4"]
    assert s.rows[-1].layer.describe() == "concat a crop"


@pytest.mark.parametrize("text, described", [
    ("add a", "add a"), ("multiply a", "multiply a"), ("concat a", "concat a"),
    ("add { branch { } branch { relu } }", "add { 2 branches }")])
def test_a_merge_shows_what_it_merges(text, described):
    row = cnncalc.summarize(f"input 8x8x2 | conv 1x1x2 name=a | {text}").rows[1]
    assert row.layer.describe() == described


@pytest.mark.parametrize("text, ops, explain", [
    # README: one operation per output per extra input: 4 x 4 x 2 = 32 outputs, 2 extra
    ("input 4x4x2 | add { branch { } branch { relu } branch { sigmoid } }", 64, []),
    ("input 4x4x2 | multiply { branch { } branch { relu } }", 32, []),
    # a squeeze-and-excitation gate: 4 scales broadcast over an 8x8x4 map, 256 products
    ("input 8x8x4 | conv 1x1x4 name=a | globalavgpool | dense 4 sigmoid | multiply a", 256,
     ["broadcast: 4 and 8x8x4 give 8x8x4"]),
])
def test_an_elementwise_merge_by_hand(text, ops, explain):
    row = next(r for r in cnncalc.summarize(text, explain=True).rows
               if r.kind in ("add", "multiply"))
    assert (row.ops, row.explain) == (ops, explain)


@pytest.mark.parametrize("k, s, pad", [(3, 2, "same"), (4, 2, "same"), (5, 2, "same"),
                                       (2, 2, "same"), (1, 3, "same"), (3, 2, ""), (1, 3, "")])
def test_transposed_convolution_crops_against_pytorch(k, s, pad):
    # PyTorch's ConvTranspose1d writes (n - 1) s + k values, plus output_padding; Keras keeps
    # n s of them for 'same', cropping (k - s) // 2 before and the rest after (the extra pixel
    # after, as 'same' padding puts it), and (n - 1) s + max(k, s) for 'valid'
    import torch
    row = summarize(f"input 7x1 | deconv {k}x1 stride {s} {pad}").rows[0]
    ((before, after),), (extra,) = row.geometry["crops"], row.geometry["output_padding"]
    full = torch.nn.ConvTranspose1d(1, 1, k, s, output_padding=extra)(torch.zeros(1, 1, 7))
    assert before + row.output[0] + after == full.shape[-1]
    assert before == (max(k - s, 0) // 2 if pad else 0)
    assert row.output[0] == (7 * s if pad else 6 * s + max(k, s))


def test_a_transposed_convolution_explains_itself_by_hand():
    # 10 x 2 and 8 x 2 under 'same'; a 3-kernel at stride 2 writes 2 n + 1 values, one more
    # than kept, cropped after; every one of the 10 x 8 inputs scatters 3 x 3 x 128 x 32
    # weights: 80 x 36,864 = 2,949,120 MACs
    row = cnncalc.summarize("input 10x8x128 | deconv 3x3x32 stride 2 same",
                            explain=True).rows[0]
    assert row.explain == [
        "width: same: 10 x 2 = 20, crop 0 before and 1 after",
        "height: same: 8 x 2 = 16, crop 0 before and 1 after",
        "weights: 3 x 3 x 128 x 32 = 36,864", "biases: 32",
        "MACs: 10x8 inputs x 36,864 = 2,949,120 (each input scatters the whole kernel)"]


@pytest.mark.parametrize("text, exact", [
    # a 3-kernel at stride 2 uses every pixel when (n - 3) is even: odd n; a 2-pool when n is
    # even; both in a row: n - 3 even and (n - 3) / 2 + 1 even, n = 5, 9, 13, ...
    ("input ?x?x3 | conv 3x3x8 stride 2", [n for n in range(3, 30) if (n - 3) % 2 == 0]),
    ("input ?x?x3 | maxpool 2", [n for n in range(2, 30) if n % 2 == 0]),
    ("input ?x?x3 | conv 3x3x8 stride 2 | maxpool 2", [5, 9, 13, 17, 21, 25, 29]),
    # causal: 2 zeros before, windows every 2 steps reach the last input when n - 1 is even;
    # at stride 1 every size is exact
    ("input ?x3 | conv 3x8 causal stride 2", [n for n in range(2, 30) if (n - 1) % 2 == 0]),
    ("input ?x3 | conv 3x8 causal stride 3", [n for n in range(2, 30) if (n - 1) % 3 == 0]),
    ("input ?x3 | conv 3x8 causal", list(range(2, 30))),
    # ceil mode: the last window hangs over the end, so no input is ever left out
    ("input ?x?x3 | maxpool 2 ceil", list(range(2, 30))),
    ("input ?x?x3 | maxpool 3 stride 2 ceil", list(range(2, 30))),
])
def test_exact_sizes_by_hand(text, exact):
    from cnncalc.analysis.sizes import sweep
    axis = sweep(cnncalc.api.parse(text), 1, 29)[0]
    assert [int(n) for n, e in zip(axis.values, axis.exact) if e and n >= 2] == exact


def test_a_dilated_window_too_large_says_its_extent():
    # dilation 2 spreads a 3-kernel over 2 x (3 - 1) + 1 = 5 pixels; a 4-wide map has fewer
    with pytest.raises(cnncalc.SpecDesignError, match=r"the window 5 \(kernel 3, dilation 2\) "
                                                      r"is larger than the width 4"):
        cnncalc.summarize("input 4x4x1 | conv 3x3x1 dilation 2")
    assert cnncalc.summarize("input 8x8x3 | conv 3x3x4 nobias", explain=True).rows[0].explain[3] \
        == "biases: 0 (nobias)"


def test_ceil_mode_explained_by_hand():
    # PyTorch's MaxPool1d(2, 2, padding=1, ceil_mode=True): on 5 values ceil((5 + 2 - 2) / 2)
    # + 1 = 4 windows, but the last would start at 3 x 2 = 6, in the padding after 5 + 1, so
    # PyTorch drops it: 3; on 6 values the 4th starts at 6, on the last real value: 4
    import torch
    pool = torch.nn.MaxPool1d(2, 2, padding=1, ceil_mode=True)
    assert [pool(torch.zeros(1, 1, n)).shape[-1] for n in (5, 6)] == [3, 4]
    five = cnncalc.summarize("input 5x1 | maxpool 2 stride 2 pad 1 ceil", explain=True).rows[0]
    assert five.output == (3, 1)
    assert five.explain[0] == ("length: ceil((5 + 2 - 2) / 2) + 1 = 4; PyTorch drops the last "
                               "window, which would start at 6, in the padding after 5 + 1: 3")
    six = cnncalc.summarize("input 6x1 | maxpool 2 stride 2 pad 1 ceil", explain=True).rows[0]
    assert six.output == (4, 1)
    assert six.explain[0] == "length: ceil((6 + 2 - 2) / 2) + 1 = 4"


def test_causal_padding_at_a_stride_by_hand():
    # Keras Conv1D(8, 3, strides=2, padding='causal') on 9 steps: 2 zeros before, windows at
    # 0, 2, 4, 6, 8 of the 11: floor((9 - 1) / 2) + 1 = 5 (its values: test_keras_values.py)
    row = cnncalc.summarize("input 9x4 | conv 3x8 causal stride 2", explain=True).rows[0]
    assert row.output == (5, 8)
    assert row.explain[0] == ("length: causal padding: 2 before, none after; "
                              "floor((9 - 1) / 2) + 1 = 5")


@pytest.mark.parametrize("text, output, line", [
    # at stride 1 'same' and 'causal' keep the size whatever it is: the formula stays W, L
    ("input ?x?x3 | conv 3x3x8 same", ("W", "H", 8),
     "width: same padding, stride 1: ceil(W / 1) = W, pad 1 left, 1 right"),
    ("input ?x3 | conv 3x8 causal", ("L", 8),
     "length: causal padding: 2 before, none after; floor((L - 1) / 1) + 1 = L"),
])
def test_open_sizes_at_stride_one_keep_their_name(text, output, line):
    from cnncalc.api import analyse, parse
    row = analyse(parse(text), open_sizes=True, explain=True).rows[0]
    assert tuple(str(v) for v in row.output) == tuple(str(v) for v in output)
    assert row.explain[0] == line
