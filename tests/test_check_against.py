"""'cnncalc check SPEC --against MODEL' (issue 16): zoo specs against the modules their
sources write by hand (tests/families/zoo.py, torchvision's layouts), and the two mistakes
a spec makes most, caught and named with the spec's line: a stride on the wrong convolution
(ResNet v1 against v1.5) and swapped concat branches."""

import pytest

import cnncalc
from click.testing import CliRunner

from cnncalc.cli import main
from conftest import ROOT, SPECS

ZOO = ROOT / "tests" / "families" / "zoo.py"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("spec,factory,steps", [
    ("lenet5", "lenet5", 12),        # 5 weighted layers, 5 activations, 2 pools
    ("alexnet", "alexnet", 19),      # 8 weighted layers, 7 ReLUs, 3 pools, a flatten
    # stem conv, bn, relu, pool (4); 8 blocks of conv, bn, relu, conv, bn, add, relu (56);
    # 3 downsamples of conv, bn (6); the global pool and fc (2)
    ("resnet18", "resnet18", 68),
    # 6 convolutions and their 6 ReLUs, the 3x3 max pool of the fourth branch, the concat
    ("inception3a", "inception3a", 14),
])
def test_a_spec_agrees_with_the_module_written_by_hand(spec, factory, steps):
    res = run("check", SPECS / f"{spec}.cnn", "--against", f"{ZOO}:{factory}")
    assert res.exit_code == 0, res.output
    assert f"agree: {steps} steps compared" in res.output


def test_a_stride_on_the_wrong_convolution_is_named_with_its_line():
    # torchvision's ResNet strides the first 3x3 of a block; moving it to the second leaves
    # every block's output as it was, but not conv1's, nor the MACs
    res = run("check", SPECS / "resnet18.cnn", "--against", f"{ZOO}:resnet18_stride_on_second_conv")
    assert res.exit_code == 1
    assert "spec:  layer 'conv_5' (line 13, from down(128) called on line 24)" in res.output
    assert "28x28x128" in res.output and "model: 'layer2.0.conv1'" in res.output
    assert "56x56x128" in res.output


def test_swapped_concat_branches_are_caught():
    res = run("check", SPECS / "inception3a.cnn", "--against", f"{ZOO}:inception3a_swapped")
    assert res.exit_code == 1
    assert "differ at step 3 of 14" in res.output and "layer 'conv_2' (line 6)" in res.output
    assert "model: 'branch3.0', conv 1x1x16" in res.output


def test_against_an_onnx_file_and_a_darknet_cfg(tmp_path):
    res = run("check", ROOT / "examples" / "shapes.cnn", "--against",
              ROOT / "examples" / "shapes.onnx")
    assert res.exit_code == 0 and "agree" in res.output, res.output
    # YOLOv3 written by hand with a 3x3 conv where the cfg has 1x1 at layer 81
    spec = tmp_path / "yolo.cnn"
    text = run("import", "darknet", ROOT / "examples" / "yolov3.cfg").output
    spec.write_text(text.replace("conv 1x1x255 name=yolo82", "conv 3x3x255 pad 1 name=yolo82"))
    res = run("check", spec, "--against", ROOT / "examples" / "yolov3.cfg")
    assert res.exit_code == 1 and "layer 'yolo82'" in res.output


def test_a_model_of_another_kind_is_a_usage_error():
    res = run("check", SPECS / "lenet5.cnn", "--against", "model.h5")
    assert res.exit_code == 2 and "expected FILE.py:FACTORY, MODEL.onnx, MODEL.cfg" in res.output


def test_the_python_api_takes_a_module():
    import cnncalc
    from families.zoo import ResNet18
    result = cnncalc.check(SPECS / "resnet18.cnn", against=ResNet18(stride_first=False))
    assert not result.ok and "layer 'conv_5'" in str(result)
    assert cnncalc.check(SPECS / "resnet18.cnn", against=ResNet18()).ok


# dcgan_generator's 'reshape 4x4x512' is written as nn.Unflatten, which orders the values
# channels first where the spec orders them as Keras: the importer rightly refuses to read
# it as the spec's reshape, so that spec has no plain file to agree with
PLAIN = sorted(p.name for p in SPECS.glob("*.cnn") if p.name != "dcgan_generator.cnn")


@pytest.mark.parametrize("name", PLAIN)
def test_every_spec_agrees_with_its_plain_pytorch_file(tmp_path, name):
    # the exported file is plain torch.nn code (no cnncalc); imported back by torch.fx, it
    # must agree with the spec step by step: export, import and compare are three paths
    from cnncalc.interop.to_pytorch import class_name
    net = cnncalc.read(SPECS / name)
    small = {"unet.cnn": "188x188x1", "inception_v3.cnn": "139x139x3",
             "conv3d.cnn": "8x32x32x3"}
    if name in small:
        net = cnncalc.with_input(net, small[name])
    code = cnncalc.to_pytorch_code(net)
    path = tmp_path / "net.py"
    path.write_text(code)
    result = cnncalc.check(net, against=f"{path}:{class_name(code)}")
    assert result.ok, str(result)


def test_a_pool_that_keeps_the_size_is_compared_too():
    # Inception's pool branch without its 3x3/1 max pool: every shape and count agrees, the
    # pool is the only difference
    spec = SPECS / "inception3a.cnn"
    text = spec.read_text().replace("maxpool 3 stride 1 same | ", "")
    res = run("check", "-e", text, "--against", f"{ZOO}:inception3a")
    assert res.exit_code == 1 and "model: 'branch4.0', maxpool 3" in res.output, res.output
