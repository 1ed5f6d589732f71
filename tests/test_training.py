"""A training step's compute, against PyTorch's own count around a real backward pass
(torch.utils.flop_counter.FlopCounterMode), for the zoo's specs; and the built module
trains: a merge never overwrites a tensor autograd saved."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

import cnncalc
from cnncalc.analysis.training import training_macs
from cnncalc.backends.measure import saved_bytes
from cnncalc.backends.data import picture_shape
from conftest import SPECS


def _conv_backward(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                   transposed, _output_padding, _groups, output_mask, out_shape, **kw):
    """FlopCounterMode's own formula leaves the groups out of the weight's gradient (a
    depthwise layer reads as C times its cost): each gradient costs the forward pass's."""
    return conv_flop_count(x_shape, w_shape, grad_out_shape, transposed) * \
        (int(output_mask[0]) + int(output_mask[1]))


SIZES = {"vgg16": "32x32x3", "vgg19": "32x32x3", "resnet18": "64x64x3", "resnet50": "64x64x3",
         "unet": "188x188x1", "fpn": "64x64x3", "mobilenet_v2": "64x64x3",
         "mobilenet_v3_small": "64x64x3", "mobilenet_v3_large": "64x64x3",
         "efficientnet_b0": "64x64x3", "convnext_tiny": "64x64x3", "googlenet": "64x64x3",
         "inception_v3": "96x96x3", "densenet121": "64x64x3", "densenet121_torch": "64x64x3",
         "shufflenet_v2_x1_0": "64x64x3", "squeezenet1_0": "96x96x3", "alexnet": "96x96x3",
         "regnet_y_400mf": "64x64x3", "resnext50_32x4d": "64x64x3", "mobilenet": "64x64x3",
         "resnet50_keras": "64x64x3", "conv3d": "8x32x32x3", "espcn": "12x10x1",
         "efficientnet": "64x64x3"}


@pytest.mark.parametrize("name", sorted(p.stem for p in SPECS.glob("*.cnn")))
def test_backward_macs_and_kept_activations_are_pytorchs(name):
    """Backward MACs against FlopCounterMode; the activations kept for the backward pass
    against what autograd saves at batch 2 and 3: each example's bytes exactly, and what
    does not grow with the batch is batchnorm's per-channel statistics."""
    from cnncalc.analysis.memory import estimate
    s = cnncalc.summarize(SPECS / f"{name}.cnn", input=SIZES.get(name))
    torch.manual_seed(0)
    net = cnncalc.to_torch(s).train()
    three, _ = saved_bytes(net, torch.randn(3, *picture_shape(s.network.input.shape)))
    x = torch.randn(2, *picture_shape(s.network.input.shape))
    two, y = saved_bytes(net, x)  # (batch 2 and 3: batchnorm trains on no 1x1 map of one example)
    kept = estimate(s, 1).kept_bytes
    assert three - two == kept, name
    # the rest: batchnorm's running mean and variance and the batch's mean and 1/std, and
    # (inception_v3, 8 bytes) the map of counts a padded average pool divides by
    stats = sum(16 * r.output[-1] for r in s.rows if r.kind == "batchnorm")
    assert two - 2 * kept == three - 3 * kept, name
    assert 0 <= two - 2 * kept - stats <= 64, name
    loss = sum(t.float().sum() for t in (y if isinstance(y, tuple) else (y,)))
    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.convolution_backward: _conv_backward})
    with counter:
        loss.backward()  # trains: no merge wrote into a tensor a ReLU saved
    forward, backward = training_macs(s)
    assert 2 * backward == counter.get_total_flops() // 2, name  # batch 2; a FLOP is half a MAC


def test_the_first_layer_computes_no_input_gradient():
    # conv 3x3x8 on 10x10x3: 8 x 8 x 8 x 27 = 13,824 MACs; backward, only its weight gradient;
    # the second conv (3,456 x 8 ... ) both: 6 x 6 x 4 x 72 = 10,368, twice
    s = cnncalc.summarize("input 10x10x3 | conv 3x3x8 | conv 3x3x4")
    assert training_macs(s) == (13_824 + 10_368, 13_824 + 2 * 10_368)
    res = s.table()
    assert "training step: 58.75 kMACs (forward 24.19 kMACs, backward 34.56 kMACs)" in res


def _kinds():
    from cnncalc.layers import KINDS
    out = {}
    for word, cls in sorted(KINDS.items()):
        if word == cls.keyword or word in cls.words:  # each kind and each activation once
            out[word] = cls.example if word == cls.keyword else word
    return out


CONTEXTS = ("input 16x16x64 | conv 1x1x64 | {}", "input 16x16x64 | conv 1x1x64 name=a | {}",
            "input 16x16x72 | conv 1x1x72 | {}", "input 64 | dense 64 | {}")


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "autocast"])
@pytest.mark.parametrize("word, example", sorted(_kinds().items()))
def test_every_kind_keeps_what_autograd_saves(word, example, amp):
    """Each kind's own example after a weighted layer (so a gradient passes): the bytes
    autograd saves per example (batch 3 less batch 2) are cnncalc's, in float32 and under
    bfloat16 autocast (a convolution keeps half-precision copies; a float32 parameter
    promotes a half input without copying it: layerscale, affine and grn keep the half
    input itself)."""
    import contextlib

    from cnncalc.analysis.kept import keep
    from cnncalc.errors import CnnCalcError
    for context in CONTEXTS:
        try:
            s = cnncalc.summarize(context.format(example))
            break
        except CnnCalcError:
            continue
    else:
        raise AssertionError(f"{word}: its example {example!r} builds in no context")
    net = cnncalc.to_torch(s).train()

    def saved(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            return saved_bytes(net, torch.randn(batch, *picture_shape(s.network.input.shape)))[0]
    assert saved(3) - saved(2) == keep(s, amp).total(2 if amp else 4), \
        (word, context.format(example))


def test_a_dropout_of_rate_zero_keeps_nothing():
    """PyTorch's dropout of rate 0, and stochastic depth of 0, return their input in
    training too (timm writes drop_rate=0 layers everywhere): no mask is kept, and the
    block's add reads the same tensor."""
    from cnncalc.analysis.memory import estimate
    s = cnncalc.summarize("input 12x12x16 | conv 3x3x16 same | gelu | dropout 0 | "
                          "add { branch { conv 1x1x16 | droppath 0 } branch { } }")
    net = cnncalc.to_torch(s).train()
    two, _ = saved_bytes(net, torch.randn(2, *picture_shape(s.network.input.shape)))
    three, _ = saved_bytes(net, torch.randn(3, *picture_shape(s.network.input.shape)))
    assert three - two == estimate(s).kept_bytes
