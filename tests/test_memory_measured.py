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


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "unet", "inception3a"])
@pytest.mark.parametrize("batch", [1, 8])
def test_the_inference_peak_is_what_a_run_holds(name, batch):
    s = cnncalc.summarize(SPECS / f"{name}.cnn")
    peak, held_input = measured_peak(s, batch)
    want = estimate(s, batch).peak_activation_bytes
    assert want <= peak <= want + held_input


def test_the_peak_scales_with_the_batch():
    # the bug the mutation run found: a peak that ignored --batch (VGG16: 24.5 MiB, not 196)
    s = cnncalc.summarize(SPECS / "vgg16.cnn")
    assert estimate(s, 8).peak_activation_bytes == 8 * estimate(s, 1).peak_activation_bytes
    assert measured_peak(s, 8)[0] > 190 * 2**20
