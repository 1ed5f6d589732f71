"""Darknet cfg files as specs (issue 13): YOLOv3 and YOLOv3-tiny against the published counts
(Keras ports' model.summary(), the paper's three scales), Darknet's padding rules against a
PyTorch module written from Darknet's C code, and mistakes named with their line."""

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import cnncalc
from cnncalc.cli import main
from cnncalc.interop.from_darknet import from_darknet
from conftest import ROOT

YOLOV3 = ROOT / "examples" / "yolov3.cfg"


def cbl(filters, size, stride=1, bn=1, act="leaky"):
    head = f"batch_normalize={bn}\n" if bn else ""
    return (f"[convolutional]\n{head}filters={filters}\nsize={size}\nstride={stride}\npad=1\n"
            f"activation={act}\n\n")


# darknet's cfg/yolov3-tiny.cfg, layer for layer (training settings left out)
TINY = ("[net]\nwidth=416\nheight=416\nchannels=3\n\n"
        + "".join(cbl(f, 3) + "[maxpool]\nsize=2\nstride=2\n\n" for f in (16, 32, 64, 128, 256))
        + cbl(512, 3) + "[maxpool]\nsize=2\nstride=1\n\n" + cbl(1024, 3)
        + cbl(256, 1) + cbl(512, 3) + cbl(255, 1, bn=0, act="linear") + "[yolo]\nclasses=80\n\n"
        + "[route]\nlayers=-4\n\n" + cbl(128, 1) + "[upsample]\nstride=2\n\n"
        + "[route]\nlayers=-1, 8\n\n" + cbl(256, 3) + cbl(255, 1, bn=0, act="linear")
        + "[yolo]\nclasses=80\n")


def csp(filters):
    """YOLOv4-tiny's CSP block: half the channels ('groups=2 group_id=1') through two convs,
    joined, a 1x1, joined with the block's input."""
    half = filters // 2
    return (cbl(filters, 3) + "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n\n" + cbl(half, 3)
            + cbl(half, 3) + "[route]\nlayers=-1,-2\n\n" + cbl(filters, 1)
            + "[route]\nlayers=-6,-1\n\n")


# darknet's cfg/yolov4-tiny.cfg, layer for layer (training settings left out)
TINY4 = ("[net]\nwidth=416\nheight=416\nchannels=3\n\n" + cbl(32, 3, 2) + cbl(64, 3, 2)
         + csp(64) + "[maxpool]\nsize=2\nstride=2\n\n" + csp(128)
         + "[maxpool]\nsize=2\nstride=2\n\n" + csp(256) + "[maxpool]\nsize=2\nstride=2\n\n"
         + cbl(512, 3) + cbl(256, 1) + cbl(512, 3) + cbl(255, 1, bn=0, act="linear")
         + "[yolo]\nclasses=80\n\n[route]\nlayers=-4\n\n" + cbl(128, 1)
         + "[upsample]\nstride=2\n\n[route]\nlayers=-1, 23\n\n" + cbl(256, 3)
         + cbl(255, 1, bn=0, act="linear") + "[yolo]\nclasses=80\n")


def test_yolov4_tiny_has_the_published_counts():
    # the Keras ports' yolov4-tiny summary(): Total params: 6,062,814, Trainable params:
    # 6,056,606; its CSP blocks keep the second half of the channels: 'slice 32 start 32'
    cfg = from_darknet(_write(TINY4))
    s = cfg.summary
    assert (s.totals.params, s.totals.trainable) == (6_062_814, 6_056_606)
    assert [shape for _, shape in s.outputs] == [(13, 13, 255), (26, 26, 255)]
    assert "slice 32 start 32" in cfg.text
    half = torch.arange(64.0).reshape(1, 64, 1, 1)  # group_id=1 of 2: channels 32 to 63
    module = cnncalc.to_torch("input 1x1x64 | slice 32 start 32").eval()
    assert torch.equal(module(half.permute(0, 2, 3, 1)).flatten(), half.flatten()[32:])


def test_yolov3_has_the_published_counts_and_scales():
    # keras-yolo3's yolo_body(Input((416, 416, 3)), 3, 80).summary(): Total params: 62,001,757,
    # Trainable params: 61,949,149; the paper's three scales 13, 26 and 52 with 3 x (5 + 80)
    s = from_darknet(YOLOV3).summary
    assert (s.totals.params, s.totals.trainable) == (62_001_757, 61_949_149)
    assert [shape for _, shape in s.outputs] == [(13, 13, 255), (26, 26, 255), (52, 52, 255)]


def test_yolov3_tiny_has_the_published_counts():
    # keras-yolo3's tiny_yolo_body(...).summary(): Total params: 8,858,734, Trainable
    # params: 8,852,366; darknet prints layer 11 (maxpool 2x2/1) as 13 x 13 -> 13 x 13
    cfg = from_darknet(_write(TINY))
    s = cfg.summary
    assert (s.totals.params, s.totals.trainable) == (8_858_734, 8_852_366)
    assert [shape for _, shape in s.outputs] == [(13, 13, 255), (26, 26, 255)]
    assert "maxpool 2 same stride 1" in cfg.text


class DarknetSmall(nn.Module):
    """Written from darknet's C: conv padding size/2 when pad=1; a max pool pads size-1 in
    all, (size-1) // 2 before and the rest after, never picked (-inf); leaky slope 0.1;
    shortcut adds; upsample repeats."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c = nn.Conv2d(16, 16, 1)

    def forward(self, x):
        a = F.leaky_relu(self.a(x), 0.1)
        p = F.max_pool2d(F.pad(a, (0, 1, 0, 1), value=float("-inf")), 2, 1)
        b = F.leaky_relu(self.b(p), 0.1)
        return F.interpolate(F.leaky_relu(self.c(b), 0.1) + b, scale_factor=2)


def test_darknet_padding_agrees_with_a_module_written_from_darknets_code():
    cfg = ("[net]\nwidth=10\nheight=10\nchannels=3\n\n" + cbl(8, 3, bn=0) +
           "[maxpool]\nsize=2\nstride=1\n\n" + cbl(16, 3, 2, bn=0) + cbl(16, 1, bn=0) +
           "[shortcut]\nfrom=-2\nactivation=linear\n\n[upsample]\nstride=2\n\n")
    imported = from_darknet(_write(cfg))
    assert "maxpool 2 same stride 1" in imported.text
    torch.manual_seed(0)
    hand, net = DarknetSmall().eval(), cnncalc.to_torch(imported.summary).eval()
    ours = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for mine, theirs in zip(ours, [hand.a, hand.b, hand.c], strict=True):
            # cnncalc's module runs axes in the spec's order (width, height): kernels transposed
            mine.weight.copy_(theirs.weight.transpose(2, 3))
            mine.bias.copy_(theirs.bias)
        x = torch.randn(1, 3, 10, 10)
        want = hand(x)  # N, C, H, W
        got = net(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # cnncalc takes N, H, W, C
    assert imported.summary.output == (10, 10, 16) == tuple(want.shape[2:]) + (16,)
    assert torch.allclose(got, want, atol=1e-5)


def test_the_cli_writes_the_spec(tmp_path):
    out = tmp_path / "yolov3.cnn"
    res = CliRunner().invoke(main, ["import", "darknet", str(YOLOV3), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "62,001,757 params, output 52x52x255" in res.output
    assert cnncalc.summarize(out).totals.trainable == 61_949_149
    res = CliRunner().invoke(main, ["import", "darknet", str(YOLOV3), "--input", "608x608x3"])
    assert cnncalc.summarize(res.output).outputs[0][1] == (19, 19, 255)


@pytest.mark.parametrize("text,message", [
    ("[convolutional]\nfilters=8\n", "does not start with a [net] section"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=eight\n",
     "'filters' should be a whole number, got 'eight'"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[shortcut]\nfrom=-3\n",
     "'from=-3' names layer -3, but only layers 0 to -1 come before layer 0"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\n[reorg]\nstride=2\n",
     "[reorg] (layer 1): [reorg] has no cnncalc counterpart"),
    ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nactivation=stair\n",
     "activation=stair has no cnncalc counterpart"),
    ("[net]\nchannels=3\n[convolutional]\nfilters=4\n", "give them with --input"),
])
def test_mistakes_are_named_with_their_line(tmp_path, text, message):
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    res = CliRunner().invoke(main, ["import", "darknet", str(path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_partial_stops_before_the_first_layer_without_a_counterpart(tmp_path):
    path = _write("[net]\nwidth=8\nheight=8\nchannels=3\n" + cbl(4, 3) + "[reorg]\nstride=2\n")
    res = CliRunner().invoke(main, ["import", "darknet", str(path), "--partial"])
    assert res.exit_code == 0 and "# import stopped at" in res.output
    assert cnncalc.summarize(res.output).output == (8, 8, 4)


def test_a_binary_file_is_not_a_cfg():
    res = CliRunner().invoke(main, ["import", "darknet", str(ROOT / "examples" / "shapes.onnx")])
    assert res.exit_code == 2 and "not a Darknet cfg" in res.output


def _write(text, counter=[0]):
    import tempfile
    from pathlib import Path
    counter[0] += 1
    path = Path(tempfile.mkdtemp()) / f"net{counter[0]}.cfg"
    path.write_text(text)
    return path
