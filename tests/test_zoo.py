"""The model zoo against published counts, and each spec against a real PyTorch run."""

import pytest

from cnncalc.backends.torch import to_torch  # noqa: F401  (torch is part of the test set-up)
from cnncalc import with_input
from cnncalc.backends.check import check
from conftest import spec_text, summarize

# spec, output, total params, trainable, non-trainable; source of the figure
ZOO = [
    pytest.param("vgg16.cnn", (1000,), 138_357_544, 138_357_544, 0, id="vgg16-keras"),
    pytest.param("vgg16_blocks.cnn", (1000,), 138_357_544, 138_357_544, 0, id="vgg16-def-keras"),
    pytest.param("vgg19.cnn", (1000,), 143_667_240, 143_667_240, 0, id="vgg19-keras"),
    pytest.param("lenet5.cnn", (10,), 61_706, 61_706, 0, id="lenet5-keras-rebuild"),
    pytest.param("alexnet.cnn", (1000,), 61_100_840, 61_100_840, 0, id="alexnet-torchvision"),
    pytest.param("resnet18.cnn", (1000,), 11_699_112, 11_689_512, 9_600, id="resnet18-torchvision"),
    pytest.param("resnet50.cnn", (1000,), 25_610_152, 25_557_032, 53_120, id="resnet50-torchvision"),
    pytest.param("resnet50_keras.cnn", (1000,), 25_636_712, 25_583_592, 53_120, id="resnet50-keras"),
    pytest.param("densenet121.cnn", (1000,), 8_062_504, 7_978_856, 83_648, id="densenet121-keras"),
    pytest.param("mobilenet.cnn", (1000,), 4_253_864, 4_231_976, 21_888, id="mobilenet-v1-keras"),
    pytest.param("inception3a.cnn", (28, 28, 256), 163_696, 163_696, 0, id="inception3a-paper"),
    pytest.param("unet.cnn", (388, 388, 2), 31_030_658, 31_030_658, 0, id="unet-paper"),
]


@pytest.mark.parametrize("name,output,params,trainable,frozen", ZOO)
def test_zoo_counts(name, output, params, trainable, frozen):
    s = summarize(spec_text(name))
    assert s.output == output
    assert (s.total("params"), s.total("trainable"), s.total("non_trainable")) == \
        (params, trainable, frozen)


def test_vgg16_def_gives_identical_rows():
    a, b = summarize(spec_text("vgg16.cnn")), summarize(spec_text("vgg16_blocks.cnn"))
    key = lambda r: (r.kind, r.output, r.weights, r.biases, r.units)  # noqa: E731
    assert [key(r) for r in a.rows] == [key(r) for r in b.rows]


def test_vgg16_keras_layer_names():
    names = [r.name for r in summarize(spec_text("vgg16.cnn")).rows]
    assert names[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert names[-3:] == ["fc1", "fc2", "predictions"]


# Each spec runs in PyTorch; big inputs are reduced to keep CPU time small.
SMALLER = {"vgg16.cnn": "64x64x3", "vgg16_blocks.cnn": "64x64x3", "vgg19.cnn": "64x64x3",
           "alexnet.cnn": "127x127x3", "resnet18.cnn": "64x64x3", "resnet50.cnn": "64x64x3",
           "resnet50_keras.cnn": "64x64x3", "densenet121.cnn": "64x64x3",
           "mobilenet.cnn": "64x64x3", "unet.cnn": "188x188x1", "conv3d.cnn": "8x32x32x3"}
ALL_SPECS = sorted(p.name for p in (__import__("conftest").SPECS).glob("*.cnn"))


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_spec_matches_pytorch(name):
    from cnncalc import analyse, parse as load
    net = load(spec_text(name))
    if name in SMALLER:
        net = with_input(net, SMALLER[name])
    result = check(analyse(net), device="cpu")
    bad = [(c.row.name, c.row.output, c.torch_shape) for c in result.layers if not c.ok]
    assert result.ok, bad
    assert len(result.layers) == len(analyse(net).rows)
