"""Golden files of imported specs (issue 24): what the importers write for real models,
kept in tests/golden/imported/, so that a change in how a model is read or written shows
as a diff to review ('make golden' rewrites them). Each also holds the model's own figures,
from PyTorch or Keras, checked against the spec the file holds."""

import warnings

import pytest
import torch

import cnncalc
from cnncalc.interop.from_torch import from_torch
from conftest import ROOT
from test_import_libraries import ChannelAttention, _measured

GOLDEN = ROOT / "tests" / "golden" / "imported"


def _torchvision(name):
    import torchvision.models as models
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(models, name)()


def _timm(name):
    import timm
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False)


# (golden file, the model, its input): blocks and repeats with torchvision's names; a
# squeeze-and-excitation gate; a graph that does not nest (chains and 'from ID'); a shared
# MLP ('shares ID')
MODELS = [("resnet18.cnn", lambda: _torchvision("resnet18"), 64),
          ("mobilenet_v3_small.cnn", lambda: _torchvision("mobilenet_v3_small"), 64),
          ("dla34.cnn", lambda: _timm("dla34"), 64),
          ("channel_attention.cnn", ChannelAttention, 16)]


@pytest.mark.parametrize("name, factory, size", MODELS, ids=[m[0] for m in MODELS])
def test_imported_specs_are_the_golden_files(update_golden, name, factory, size):
    module = factory().eval()
    text = from_torch(module, f"{size}x{size}x3").text
    golden = GOLDEN / name
    if update_golden:
        golden.write_text(text)
    assert text == golden.read_text()
    trainable, buffers, macs, _ = _measured(module, (1, 3, size, size))
    t = cnncalc.summarize(golden.read_text()).totals
    assert (t.trainable, t.non_trainable, t.macs) == (trainable, buffers, macs)
