"""'cnncalc export --to keras' (issue 14): the zoo specs Keras can express build in Keras 3
with Keras' own count_params() equal to the spec's, every output shape Keras infers equal
to the spec's, the file lint-clean; the others are refused with the layer named."""

import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")  # as the other Keras tests: one backend

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import cnncalc  # noqa: E402
from cnncalc.cli import main  # noqa: E402
from cnncalc.interop.to_keras import load_model  # noqa: E402
from cnncalc.layers.base import picture  # noqa: E402
from conftest import SPECS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SMALL = {"unet.cnn": "188x188x1", "conv3d.cnn": "8x32x32x3"}
# Keras has no PyTorch-style padded or ceil_mode pools, no stochastic depth, layer scale or
# pixel shuffle layer: these specs are refused, each at its first such layer
REFUSED = {"convnext_tiny.cnn": "layerscale", "densenet121_torch.cnn": "maxpool",
           "efficientnet_b0.cnn": "droppath", "efficientnet.cnn": "droppath",
           "espcn.cnn": "pixelshuffle",
           "googlenet.cnn": "maxpool", "inception_v3.cnn": "avgpool", "resnet18.cnn": "maxpool",
           "resnet50.cnn": "maxpool", "resnext50_32x4d.cnn": "maxpool",
           "shufflenet_v2_x1_0.cnn": "maxpool", "squeezenet1_0.cnn": "maxpool"}


def _summary(name):
    net = cnncalc.read(SPECS / name)
    return cnncalc.summarize(cnncalc.with_input(net, SMALL[name]) if name in SMALL else net)


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.cnn")
                                        if p.name not in REFUSED))
def test_keras_builds_the_spec_with_its_counts_and_shapes(name):
    s = _summary(name)
    model = load_model(cnncalc.to_keras_code(s))
    assert model.count_params() == s.totals.params
    assert [tuple(o.shape[1:]) for o in model.outputs] == \
        [(*picture(shape[:-1]), shape[-1]) for _, shape in s.outputs]
    rows = {r.name.replace(".", "_"): r for r in s.rows}
    for layer in model.layers:  # each Keras layer under the spec's name, the spec's shape
        if layer.name in rows:
            shape = rows[layer.name].output
            assert tuple(layer.output.shape[1:]) == (*picture(shape[:-1]), shape[-1])


@pytest.mark.parametrize("name,kind", sorted(REFUSED.items()))
def test_what_keras_cannot_say_is_named(name, kind):
    res = CliRunner().invoke(main, ["export", str(SPECS / name), "--to", "keras"])
    assert res.exit_code == 2 and f"cannot write '{kind}' as Keras source" in res.output


def test_the_keras_file_is_lint_clean_and_runs(tmp_path):
    path = tmp_path / "vgg16_keras.py"
    res = CliRunner().invoke(main, ["export", str(SPECS / "vgg16.cnn"), "--to", "keras", "-o",
                                    str(path)])
    assert res.exit_code == 0 and "138,357,544 parameters" in res.output
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select",
                           "E,F,W,I", "--ignore", "E501", str(path)], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert run.returncode == 0 and "138,357,544" in run.stdout, run.stderr[-500:]


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.cnn")
                                        if p.name not in REFUSED))
def test_check_backend_keras_agrees_across_the_zoo(name):
    import cnncalc
    result = cnncalc.check(_summary(name), backend="keras")
    assert result.ok, str(result)
    # every row but output markers and 'from ID' (no layer of their own) is compared
    assert len(result.rows) == sum(r.kind not in ("output", "from") for r in _summary(name).rows)


def test_check_backend_keras_catches_a_wrong_row(monkeypatch):
    import cnncalc.analysis.walk as walk
    honest = walk.analyse

    def spoilt(*args, **kwargs):
        s = honest(*args, **kwargs)
        s["conv_2"].weights += 1
        return s
    monkeypatch.setattr(walk, "analyse", spoilt)
    res = CliRunner().invoke(main, ["check", "-e", "input 8x8x3 | conv 3x3x4 | conv 3x3x2",
                                    "--backend", "keras"])
    assert res.exit_code == 1 and "MISMATCH" in res.output and "1 of 2 layers" in res.output


def test_a_batchnorm_epsilon_reaches_both_files():
    # an imported PyTorch model's 'batchnorm eps 1e-05' must stay 1e-5 in the files written
    # for either framework (Keras' own default is 1e-3, PyTorch's 1e-5)
    from cnncalc.interop.to_pytorch import load_class
    s = cnncalc.summarize("input 8x8x3 | conv 3x3x4 | batchnorm eps 1e-5 | batchnorm")
    keras = [layer.epsilon for layer in load_model(cnncalc.to_keras_code(s)).layers
             if type(layer).__name__ == "BatchNormalization"]
    torch_ = [m.eps for m in load_class(cnncalc.to_pytorch_code(s))().modules()
              if type(m).__name__ == "BatchNorm2d"]
    assert keras == torch_ == [1e-5, 1e-3]


def test_frozen_layers_are_what_keras_and_pytorch_do_not_train():
    """'frozen' on each kind with weights: Keras' trainable=False and PyTorch's
    requires_grad_(False) in the exports, counted as each framework counts them."""
    import numpy as np
    import torch
    from cnncalc.interop.to_pytorch import load_class
    s = cnncalc.summarize("input 16x16x3 | conv 3x3x8 same frozen | batchnorm frozen | "
                          "prelu frozen | globalavgpool | dense 4 frozen | dense 2")
    model = load_model(cnncalc.to_keras_code(s))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (s.totals.trainable, s.totals.params) == (trainable, model.count_params()) == (10, 310)
    module = load_class(cnncalc.to_pytorch_code(s))()
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == 10
    assert cnncalc.check(s).ok  # the backend keeps them as buffers: PyTorch counts them so
    module(torch.zeros(1, 3, 16, 16))
