"""Memory measured, not derived (issue 17): the inference peak of a real forward pass on
CPU, every module output's bytes counted from its creation until PyTorch frees it, against
the estimate. The caller holds the input for the whole pass while the estimate frees it
after its last reader, so the measurement lies between the estimate and the estimate plus
the input: a tolerance of one input, exact otherwise."""

import weakref

import pytest
import torch

import cnncalc
from cnncalc.analysis.memory import estimate
from cnncalc.backends.data import picture_shape
from conftest import SPECS


def measured_peak(summary, batch):
    net = cnncalc.to_torch(summary, inplace=False).eval()
    live = {"now": 0, "peak": 0}
    sizes = {}

    def free(key):
        live["now"] -= sizes.pop(key, 0)

    def track(t):
        if isinstance(t, (tuple, list)):
            for u in t:
                track(u)
            return
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in sizes:
            return
        sizes[key] = storage.nbytes()
        live["now"] += sizes[key]
        live["peak"] = max(live["peak"], live["now"])
        weakref.finalize(storage, free, key)

    for m in net.modules():  # leaves: layers, and the ops that merge branches
        if not list(m.children()):
            m.register_forward_hook(lambda mod, args, out: track(out))
    x = torch.randn((batch, *picture_shape(summary.network.input.shape)))
    with torch.no_grad():
        track(x)
        net(x)
    return live["peak"], x.nbytes


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet50", "unet", "inception3a"])
@pytest.mark.parametrize("batch", [1, 8])
def test_the_inference_peak_is_what_a_run_holds(name, batch):
    s = cnncalc.summarize(SPECS / f"{name}.cnn")
    peak, held_input = measured_peak(s, batch)
    want = estimate(s, batch).peak_activation_bytes
    assert want <= peak <= want + held_input


@pytest.mark.slow
def test_the_peak_scales_with_the_batch():
    # the bug the mutation run found: a peak that ignored --batch (VGG16: 24.5 MiB, not 196)
    s = cnncalc.summarize(SPECS / "vgg16.cnn")
    assert estimate(s, 8).peak_activation_bytes == 8 * estimate(s, 1).peak_activation_bytes
    assert measured_peak(s, 8)[0] > 190 * 2**20


# Peaks worked out by hand from the definition (README, "Memory"): a tensor lives from the
# layer that makes it until its last reader; a block's input until its merge (as in a
# module's forward); a saved tensor ('name=a', read by 'add a') to the end. Units per example.
HAND = [
    # 8x8x16 = 1,024 in, 1,024 out, both alive in the conv
    ("input 8x8x16 | conv 1x1x16", 2048),
    # the input lives until the merge: input + branch output + concat's new tensor
    ("input 8x8x16 | concat { branch { conv 1x1x16 } }", 3072),
    # 32 in -> 64 -> 16: the first conv holds 32 + 64, the second 64 + 16
    ("input 4x4x2 | conv 1x1x4 | conv 1x1x1", 96),
    # branch 1: 32 + 64; branch 2: 32 + 64 + 128; merge: 32 + 64 + 128 + 192
    ("input 4x4x2 | concat { branch { conv 1x1x4 } branch { conv 1x1x8 } }", 416),
    # a (32) stays saved: 32 + 64, then 32 + 64 + 32, add 32 + 32 + 32, last 32 + 32 + 128
    ("input 4x4x2 | conv 1x1x2 name=a | conv 1x1x4 | conv 1x1x2 | add a | conv 1x1x8", 192),
    # an empty branch is the input itself: 32 + 32, then the merge 32 + 32 + 64
    ("input 4x4x2 | concat { branch { } branch { conv 1x1x2 } }", 128),
    # split parts are views of the input (64): 64 + 32, 64 + 32 + 64, merge 64 + 96 + 96
    ("input 4x4x4 | concat split { branch { conv 1x1x2 } branch { conv 1x1x4 } }", 256),
    # nothing but the input
    ("input 8x8x3", 192),
    # the peak inside a branch: the block's input (32) lives on beside 1,024 and 16
    ("input 4x4x2 | concat { branch { conv 1x1x64 | conv 1x1x1 } branch { conv 1x1x1 } }",
     1072),
    # ... and beside the finished branch's 16 too
    ("input 4x4x2 | concat { branch { conv 1x1x1 } branch { conv 1x1x64 | conv 1x1x1 } }",
     1088),
    # s (32) is saved for the add and is the block's input: 32 + 1,024 + 16 in branch 1
    ("input 4x4x2 | conv 1x1x2 name=s | concat { branch { conv 1x1x64 | conv 1x1x1 } branch "
     "{ conv 1x1x1 } } | add s", 1072),
    # t (32), saved inside a branch, lives to the end: 32 (block out) + 32 + 1,024 later
    ("input 4x4x2 | add { branch { conv 1x1x2 name=t | conv 1x1x2 } branch { conv 1x1x2 } } "
     "| conv 1x1x64 | conv 1x1x2 | add t", 1088),
    # a small branch on a large input: 1,024 + 64, merged 1,024 + 64 + 64
    ("input 8x8x16 | concat { branch { conv 1x1x1 } }", 1152),
    # two saved tensors alive together: a and b (32 each) beside 1,024 and 32
    ("input 4x4x2 | conv 1x1x2 name=a | conv 1x1x2 name=b | conv 1x1x64 | conv 1x1x2 | add b "
     "| add a", 1120),
    # the merge is the peak with s saved: s 32 + branches 128 + 128 + concat 256
    ("input 4x4x2 | conv 1x1x2 name=s | concat { branch { conv 1x1x8 } branch { conv 1x1x8 } "
     "} | conv 1x1x2 | add s", 544),
    # outer branch 1 ends with 32 (peak 96); inner block under input 32 + 32 done: 64 + 16,
    # 64 + 16 + 16, merge 64 + 32 + 32 = 128; outer merge 32 + 32 + 32 + 32 = 128
    ("input 4x4x2 | add { branch { conv 1x1x2 | conv 1x1x2 } branch { concat { branch "
     "{ conv 1x1x1 } branch { conv 1x1x1 } } } }", 128),
]


@pytest.mark.parametrize("text, units", HAND, ids=[str(i) for i in range(len(HAND))])
def test_small_peaks_worked_out_by_hand(text, units):
    s = cnncalc.summarize(text)
    assert estimate(s, 1).peak_activation_bytes == 4 * units
    assert estimate(s, 3, dtype="float16").peak_activation_bytes == 2 * 3 * units
    peak, held_input = measured_peak(s, 3)  # and a real run agrees
    assert 4 * 3 * units <= peak <= 4 * 3 * units + held_input


def test_training_and_fit_worked_out_by_hand():
    # conv 3x3x4 on 2 channels: 3*3*2*4 + 4 = 76 params; batchnorm 4 * 4 = 16 (8 trainable,
    # 8 moving statistics): 92 params, 84 trainable. Activations kept for the backward pass,
    # as autograd saves them: the conv its input (32 values), batchnorm its input (the conv's
    # output, 64); batchnorm's output feeds nothing that keeps it: 96 values per example.
    s = cnncalc.summarize("input 4x4x2 | conv 3x3x4 same | batchnorm")
    m = estimate(s)  # batch 1, float32, adam stepping all parameters at once
    assert (m.param_bytes, m.kept_bytes) == (92 * 4, 96 * 4)
    # the step: parameters 368 B and Adam's 2 x 84 x 4 = 672 held: 1,040; the batch 128.
    # Backward: the output (64 values, 256 B, held for the loss), the loss's gradient (256)
    # and batchnorm's saved input (256); batchnorm makes its input's gradient (256) and its
    # weights' (32): 1,056 at once; the conv then only its weights' (the batch needs none).
    # Adam's step: the gradients (336) and sqrt(v) of each (336): 672. Peak 1,040 + 128 +
    # 1,056.
    assert m.step == {"peak": 2224, "fixed": 1040, "input": 128, "backward": 1056,
                      "step": 672}
    assert m.training_bytes == 2224
    # one parameter at a time, Adam's two temporaries are the largest tensor's (72 weights):
    # 336 + 2 x 288 = 912, still below the backward pass's 1,056
    assert estimate(s, foreach=False).step["step"] == 912
    assert estimate(s, foreach=False).training_bytes == 2224
    assert m.activation_bytes == [64 * 4, 64 * 4] and m.batch == 1
    assert estimate(s, 2).activation_bytes == [64 * 4 * 2] * 2 and estimate(s, 2).batch == 2
    # sgd at batch 2: 368 + 256 + (512 held + 512 kept + 512 + 512 + 32) = 2,704
    assert estimate(s, 2, optimizer="sgd").training_bytes == 2704
    assert estimate(s, 1, optimizer="momentum").training_bytes == 368 + 336 + 128 + 1056
    assert estimate(s, 1, dtype="float64").training_bytes == 2 * 2224
    assert estimate(s, 5, dtype="bfloat16").kept_bytes == 5 * 96 * 2
    # at batch b the peak is 1,040 + 128 b + 1,024 b + 32: in 10,000 bytes, 7 examples
    # (9,136); inference (10,000 - 368) // (peak 128 values * 4 = 512) = 18
    fit = s.fit(10_000)
    assert fit == {"training": 7, "training_bytes": 9136, "inference": 18,
                   "fixed_training_bytes": 1040, "param_bytes": 368,
                   "per_example_inference_bytes": 512}
    assert s.fit("10000B") == fit
    assert s.fit(100) == {**fit, "training": 0, "inference": 0, "training_bytes": 2224}
    # with sgd: 368 + 128 b + 1,024 b + 32 <= 10,000: 8 examples
    assert s.fit(10_000, optimizer="sgd")["training"] == 8
    # and a real step, at batch 64 (where PyTorch's few scalars do not count): within 0.2%
    from cnncalc.backends.measure import measured_step
    for optimizer, foreach in [("sgd", False), ("momentum", False), ("adam", False),
                               ("adam", True)]:
        real = measured_step(s, 64, optimizer, foreach)
        assert abs(estimate(s, 64, optimizer=optimizer, foreach=foreach).training_bytes
                   - real) <= 0.002 * real, optimizer


@pytest.mark.parametrize("kw, word", [({"batch": 0}, "--batch"), ({"dtype": "int8"}, "--dtype"),
                                      ({"optimizer": "lion"}, "--optimizer")])
def test_bad_memory_options_are_named(kw, word):
    s = cnncalc.summarize("input 4x4x2 | conv 3x3x4")
    with pytest.raises(cnncalc.CnnCalcError, match=word):
        estimate(s, **kw)
