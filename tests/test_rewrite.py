"""The rewrites every importer shares (interop/rewrite.py), on graphs built by hand, with no
framework: what they fold computes what the unfolded graph computes (both built by
cnncalc's PyTorch backend and run on the same input), and nothing read twice is folded."""

import pytest

import cnncalc
from cnncalc.interop.emit import emit
from cnncalc.interop.graph import Op
from cnncalc.interop.rewrite import PERMUTE, VIEW, crop, primitive, rewrite, unfolded
from cnncalc.layers.deconv import Deconv
from cnncalc.layers.reading import Read
from cnncalc.layers.scaling import Rescale


def _rescale(id, inputs, scale, offset):
    op = Op(id, Rescale.write(scale=scale, offset=offset), inputs)
    op.meta.update(scale=scale, offset=offset)
    return op


def _run(spec, x):
    import torch
    torch.manual_seed(0)  # the same weights for a layer in either graph: drawn in one order
    module = cnncalc.to_torch(cnncalc.summarize(spec)).eval()
    with torch.no_grad():
        return module(x)


def _same(before, after, shape):
    import torch
    x = torch.randn(2, *shape)
    assert torch.allclose(_run(before, x), _run(after, x), atol=1e-6)


def test_a_scale_then_an_offset_is_one_rescale_that_computes_both():
    ops = [_rescale("a", ["input"], 0.5, 0.0), _rescale("b", ["a"], 1.0, -2.0)]
    unfolded = emit(list(ops), ["b"], "6x6x3", "net")
    ops, outputs = rewrite(ops, ["b"])
    assert [op.text for op in ops] == ["rescale 0.5 minus 2"] and outputs == ["b"]
    _same(unfolded, emit(ops, outputs, "6x6x3", "net"), (6, 6, 3))


def test_a_scale_read_twice_is_not_folded():
    ops = [_rescale("a", ["input"], 0.5, 0.0), _rescale("b", ["a"], 1.0, 1.0),
           Op("c", "add", ["a", "b"])]
    ops, _ = rewrite(ops, ["c"])
    assert len(ops) == 3


def test_crops_of_one_axis_then_another_are_one_crop():
    ops = [crop(Op("a", "", ["input"]), [(1, 0), (0, 0)]),
           crop(Op("b", "", ["a"]), [(0, 0), (0, 2)])]
    unfolded = emit(list(ops), ["b"], "8x7x2", "net")
    ops, outputs = rewrite(ops, ["b"])
    assert [op.text for op in ops] == ["crop 1x0x0x2"]
    _same(unfolded, emit(ops, outputs, "8x7x2", "net"), (8, 7, 2))


def test_a_transposed_convs_keras_crop_makes_it_same():
    """ConvTranspose(k=3, s=2) crops (k - s) // 2 = 0 before and 1 after for Keras' 'same':
    the exporter writes the crop; the reader notes it; the pass folds it."""
    r = Read("ConvTranspose2d", kernel=(3, 3), stride=(2, 2), dilation=(1, 1),
             pads=((0, 0), (0, 0)), extra=(0, 0), groups=1, filters=4, bias=True)
    deconv = Op("d", Deconv.from_read(r), ["input"], meta=dict(r.meta))
    assert deconv.text == "deconv 3x3x4 stride 2"
    ops, outputs = rewrite([deconv, crop(Op("c", "", ["d"]), r.meta["cropped_same"])], ["c"])
    assert [op.text for op in ops] == ["deconv 3x3x4 same stride 2"] and outputs == ["d"]
    out = cnncalc.summarize(emit(ops, outputs, "5x5x2", "net")).output
    assert out == (10, 10, 4)  # Keras' 'same': the input times the stride


@pytest.mark.parametrize("readers", [1, 2])
def test_a_centre_crop_read_by_a_concat_is_its_crop(readers):
    ops = [Op("s", "conv 1x1x2", ["input"], name="skip"), Op("a", "conv 3x3x4", ["s"]),
           crop(Op("c", "", ["s"]), [(1, 1), (1, 1)]), Op("j", "concat", ["a", "c"])]
    if readers == 2:
        ops.append(Op("k", "add", ["c", "c"]))
    ops, outputs = rewrite(ops, ["j"] if readers == 1 else ["j", "k"])
    folded = [op for op in ops if op.meta.get("centre_crop")]
    assert len(folded) == (1 if readers == 1 else 0)
    if readers == 1:  # U-Net's skip: 'concat skip crop', the saved map centre-cropped
        assert folded[0].inputs == ["a", "s"]
        text = emit(ops, outputs, "9x9x2", "net")
        assert "concat skip crop" in text and cnncalc.summarize(text).output == (7, 7, 6)


def test_x_times_its_sigmoid_is_silu_and_computes_the_same():
    ops = [Op("a", "conv 3x3x4 same", ["input"]), Op("s", "sigmoid", ["a"]),
           Op("m", "multiply", ["a", "s"])]
    unfolded = emit(list(ops), ["m"], "6x6x2", "net")
    ops, outputs = rewrite(ops, ["m"])
    assert [op.text for op in ops] == ["conv 3x3x4 same", "silu"] and outputs == ["s"]
    _same(unfolded, emit(ops, outputs, "6x6x2", "net"), (6, 6, 2))


@pytest.mark.parametrize("how", ["names", "scopes"])
def test_an_activation_its_module_applies_is_the_layers_own(how):
    """PyTorch names the activation 'X.act' after the layer X; ONNX's exporter scopes both
    in X's module ('/X/op/Conv', '/X/act/Relu'). Read by anything else, it stays a row."""
    conv, act = Op("c", "conv 3x3x4 same", ["input"]), Op("r", "relu", ["c"])
    if how == "names":
        conv.name, act.name = "block.conv", "block.conv.act"
    else:
        conv.meta["role"], act.meta["role"] = ("block", "op"), ("block", "act")
    unfolded = emit([conv, act], ["r"], "6x6x2", "net")
    ops, outputs = rewrite([conv, act], ["r"])
    assert [op.text for op in ops] == ["conv 3x3x4 same relu"] and outputs == ["c"]
    _same(unfolded, emit(ops, outputs, "6x6x2", "net"), (6, 6, 2))
    conv2, act2 = Op("c", "conv 3x3x4 same", ["input"]), Op("r", "relu", ["c"])
    conv2.meta["role"], act2.meta["role"] = ("block", "op"), ("block", "act")
    ops, _ = rewrite([conv2, act2, Op("k", "add", ["c", "r"])], ["k"])
    assert len(ops) == 3  # the conv's result is read by the add too


def test_relu6_of_x_plus_3_over_6_is_hardsigmoid_and_computes_the_same():
    ops = [Op("c", "conv 3x3x4 same", ["input"]), _rescale("p", ["c"], 1.0, 3.0),
           Op("r", "relu6", ["p"]), _rescale("d", ["r"], 1 / 6, 0.0)]
    unfolded = emit(list(ops), ["d"], "6x6x2", "net")
    ops, outputs = rewrite(ops, ["d"])
    assert [op.text for op in ops] == ["conv 3x3x4 same", "hardsigmoid"] and outputs == ["p"]
    _same(unfolded, emit(ops, outputs, "6x6x2", "net"), (6, 6, 2))


def _view_permute_view(before, split, perm):
    """The three primitives both readers write for x.view(split).permute(perm).reshape(...)
    on a channels-first tensor of shape ``before`` (batch first)."""
    after = [split[p] for p in perm]
    after = (after[0], after[1] * after[2], *after[3:]) if len(split) == len(before) + 1 else \
        (after[0], after[1] * after[2] * after[3], after[4], after[5])
    return [Op("v", "", ["input"], meta=primitive(VIEW, "a view", before=before, after=split,
                                                 opens=True)),
            Op("p", "", ["v"], meta=primitive(PERMUTE, "a permutation", perm=perm)),
            Op("b", "", ["p"], meta=primitive(VIEW, "a view back", before=tuple(after),
                                              after=after))]


def _pytorchs(ops, x, split, perm):
    """What cnncalc's module of the rewritten graph computes, and PyTorch's three steps."""
    spec = emit(ops, ["b"], "x".join(map(str, (x.shape[3], x.shape[2], x.shape[1]))), "net")
    got = _run(spec, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    want = x.view(*split).permute(*perm).reshape(got.shape)
    return got, want


def test_channels_viewed_as_groups_swapped_and_viewed_back_are_a_shuffle():
    """ShuffleNet's view (N, G, C / G, H, W), transpose(1, 2), view: one 'shuffle G', which
    computes what PyTorch's three steps compute."""
    import torch
    before, split, perm = (2, 6, 5, 4), (2, 3, 2, 5, 4), (0, 2, 1, 3, 4)
    ops, outputs = rewrite(_view_permute_view(before, split, perm), ["b"])
    assert [op.text for op in ops] == ["shuffle 3"] and outputs == ["b"] and not unfolded(ops)
    got, want = _pytorchs(ops, torch.randn(*before), split, perm)
    assert torch.equal(got, want)


def test_blocks_viewed_permuted_and_merged_are_space_to_depth():
    """TResNet's view (N, C, H / 4, 4, W / 4, 4), permute (0, 3, 5, 1, 2, 4), view: one
    'spacetodepth 4' (TensorFlow's channel order), which computes what PyTorch's do."""
    import torch
    before, split, perm = (2, 3, 8, 12), (2, 3, 2, 4, 3, 4), (0, 3, 5, 1, 2, 4)
    ops, outputs = rewrite(_view_permute_view(before, split, perm), ["b"])
    assert [op.text for op in ops] == ["spacetodepth 4"] and not unfolded(ops)
    got, want = _pytorchs(ops, torch.randn(*before), split, perm)
    assert torch.equal(got, want)


@pytest.mark.parametrize("before, split, perm, kind", [
    ((2, 3, 8, 12), (2, 3, 2, 4, 3, 4), (0, 1, 3, 5, 2, 4), "pixelunshuffle 4"),
    ((2, 12, 3, 5), (2, 3, 2, 2, 3, 5), (0, 1, 4, 2, 5, 3), "pixelshuffle 2")])
def test_pixel_shuffles_written_out_are_themselves(before, split, perm, kind):
    """F.pixel_unshuffle as ONNX exporters write it (Reshape, Transpose, Reshape), and
    pixel_shuffle written by hand: the kinds, computing what the three steps compute."""
    import torch
    steps = _view_permute_view(before, split, perm)
    if kind.startswith("pixelshuffle"):  # channels to blocks: the view back is not a merge
        n, c, r, _, h, w = split
        steps[2].meta["after"] = (n, c, h * r, w * r)
    ops, _ = rewrite(steps, ["b"])
    assert [op.text for op in ops] == [kind] and not unfolded(ops)
    got, want = _pytorchs(ops, torch.randn(*before), split, perm)
    assert torch.equal(got, want)


def test_a_primitive_no_pass_folds_is_refused_by_what_it_is():
    # a permutation no kind says: block row, channel, block column
    ops, _ = rewrite(_view_permute_view((2, 3, 8, 12), (2, 3, 2, 4, 3, 4),
                                        (0, 3, 1, 5, 2, 4)), ["b"])
    assert unfolded(ops) == [("v", "a view"), ("p", "a permutation"), ("b", "a view back")]
    ops = _view_permute_view((2, 6, 5, 4), (2, 3, 2, 5, 4), (0, 2, 1, 3, 4))
    ops, _ = rewrite(ops + [Op("c", "concat", ["v", "b"])], ["c"])  # the view read twice
    assert len(unfolded(ops)) == 3
    # TResNet's blocks on a map held columns first (cnncalc's own modules): not its order
    ops = _view_permute_view((2, 3, 8, 12), (2, 3, 2, 4, 3, 4), (0, 3, 5, 1, 2, 4))
    ops[0].meta["picture"] = False
    ops, _ = rewrite(ops, ["b"])
    assert len(unfolded(ops)) == 3


def test_a_padding_that_crops_is_its_crop_then_its_padding():
    """A negative pad (PyTorch's ZeroPad2d((-1, 1, -1, 1)), NASNet's shift): the kind
    writes the padding that is left and notes the crop; the pass puts the crop first. The
    two compute what F.pad does with the negative pads."""
    import torch
    from torch.nn import functional as F
    ops, outputs = rewrite([Op("p", "zeropad 0x1x0x1", ["input"],
                               meta={"crop_before": ((1, 0), (1, 0))})], ["p"])
    assert [op.text for op in ops] == ["crop 1x0x1x0", "zeropad 0x1x0x1"] and outputs == ["p"]
    x = torch.randn(2, 3, 5, 4)  # N, C, H, W
    got = _run(emit(ops, outputs, "4x5x3", "net"), x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.equal(got, F.pad(x, (-1, 1, -1, 1)))


def test_partial_stops_before_a_primitive_no_pass_folds():
    """--partial: what the first unfolded primitive reads is an output; what depends on
    the primitives is left out, outputs that do not are kept."""
    from cnncalc.interop.rewrite import before_unfolded
    ops = [Op("a", "conv 3x3x8 same", ["input"])] + \
        _view_permute_view((1, 8, 6, 6), (1, 8, 2, 3, 2, 3), (0, 2, 4, 3, 5, 1)) + \
        [Op("r", "relu", ["b"]), Op("s", "conv 1x1x4", ["a"])]
    ops[1].inputs = ["a"]
    ops, outputs = rewrite(ops, ["r", "s"])
    assert len(unfolded(ops)) == 3
    kept, outputs = before_unfolded(ops, outputs)
    assert [op.id for op in kept] == ["a", "s"] and outputs == ["a", "s"]
