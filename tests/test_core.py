"""Exact results of the core language. Each row cites where its numbers come from."""

import pytest

from conftest import summarize

# (spec, output shapes of each layer, (weights, biases, params) of the first layer or None)
CASES = [
    pytest.param("input 443x592x3 | conv 5x5x6 valid", [(439, 588, 6)], (450, 6, 456),
                 id="seed-photo-conv-5x5x6"),
    pytest.param("input 443x592x3 | conv 5x5x6 valid stride 1 | maxpool 2",
                 [(439, 588, 6), (219, 294, 6)], (450, 6, 456), id="seed-photo-with-pool"),
    pytest.param("input 2000x2000x3 | conv 5x5x16 same", [(2000, 2000, 16)], (1200, 16, 1216),
                 id="seed-2000-same"),
    pytest.param("input 2000x2000x3 | conv 5x5x16 valid", [(1996, 1996, 16)], (1200, 16, 1216),
                 id="seed-2000-valid"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 2", [(7, 7, 1)], None, id="seed-stride-2"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 3", [(5, 5, 1)], None, id="seed-stride-3"),
    pytest.param("input 16x16x1 | conv 3x3x1 valid stride 4", [(4, 4, 1)], None, id="seed-stride-4"),
    pytest.param("input 32x32x3 | conv 5x5x16 same | maxpool 2", [(32, 32, 16), (16, 16, 16)],
                 (1200, 16, 1216), id="seed-conv-then-pool"),
    pytest.param("input 10x8x128 | deconv 3x3x32 stride 2", [(21, 17, 32)], None,
                 id="seed-keras-conv2dtranspose"),
    pytest.param("input 10x8x128 | deconv 3x3x32 stride 2 same", [(20, 16, 32)], None,
                 id="keras-conv2dtranspose-same"),
    pytest.param("input 7x7x1 | conv 3x3x1 same stride 2", [(4, 4, 1)], None,
                 id="keras-same-with-stride"),
    pytest.param("input 32x32x32 | conv 3x3x64 same groups 4", [(32, 32, 64)], (4608, 64, 4672),
                 id="keras-groups"),
    pytest.param("input 32x32x3 | conv 3x3x8 dilation 2", [(28, 28, 8)], (216, 8, 224),
                 id="keras-dilation"),
    # Keras Conv2DTranspose with a kernel smaller than the stride: (in - 1) x s + max(k, s)
    pytest.param("input 5x5x4 | deconv 1x1x2 stride 3", [(15, 15, 2)], (8, 2, 10),
                 id="keras-deconv-kernel-below-stride"),
    # PyTorch MaxPool2d(3, 2, ceil_mode=True) on 6: ceil(3/2)+1 = 3 windows
    pytest.param("input 6x6x1 | maxpool 3 stride 2 ceil", [(3, 3, 1)], None, id="torch-ceil-mode"),
    # PyTorch: 5 + 2*1 - 2 = 5, ceil(5/2) + 1 = 4, but the 4th window would start at 6 >= 5 + 1
    pytest.param("input 5x5x1 | maxpool 2 stride 2 pad 1 ceil", [(3, 3, 1)], None,
                 id="torch-ceil-last-window-rule"),
    pytest.param("input 100x16 | conv 5x32 same | maxpool 2", [(100, 32), (50, 32)],
                 (2560, 32, 2592), id="keras-conv1d"),
    pytest.param("input 16x64x64x1 | conv 3x3x3x8 same", [(16, 64, 64, 8)], (216, 8, 224),
                 id="keras-conv3d"),
    pytest.param("input 8x8x3 | zeropad 1x2 | upsample 2", [(10, 12, 3), (20, 24, 3)], None,
                 id="keras-zeropad-upsample"),
    pytest.param("input 7x7x512 | flatten | dense 4096 relu", [(25088,), (4096,)], None,
                 id="vgg16-fc1"),
]


@pytest.mark.parametrize("text,shapes,counts", CASES)
def test_exact_results(text, shapes, counts):
    s = summarize(text)
    assert [r.output for r in s.rows] == shapes
    if counts:
        first = s.rows[0]
        assert (first.weights, first.biases, first.params) == counts


def test_seed_64_million_units():
    s = summarize("input 2000x2000x3 | conv 5x5x16 same")
    assert s.rows[0].units == 64_000_000


def test_batchnorm_counts_like_keras():
    # Keras BatchNormalization(C): 2C trainable (gamma, beta), 2C non-trainable (moving stats)
    r = summarize("input 8x8x32 | batchnorm").rows[0]
    assert (r.trainable, r.non_trainable, r.params) == (64, 64, 128)


def test_huge_sizes_are_exact():
    r = summarize("input 100000000000x100000000000x3 | conv 3x3x16 same").rows[0]
    assert r.output == (100000000000, 100000000000, 16)
    assert r.units == 100000000000 * 100000000000 * 16


def test_explain_reasons_like_the_notes():
    from cnncalc import analyse, parse as load
    r = analyse(load("input 443x592x3 | conv 5x5x6 valid"), explain=True).rows[0]
    assert "height: floor((592 + 0 - 5) / 1) + 1 = 588" in r.explain
    assert "weights: 5 x 5 x 3 x 6 = 450" in r.explain
    r = analyse(load("input 7x7x1 | conv 3x3x1 same stride 2"), explain=True).rows[0]
    assert "height: same padding, stride 2: ceil(7 / 2) = 4, pad 1 top, 1 bottom" in r.explain


def test_totals_are_sums_of_rows():
    from conftest import spec_text
    s = summarize(spec_text("resnet50_keras.cnn"))
    for attr in ("weights", "biases", "params", "trainable", "non_trainable", "units"):
        assert s.total(attr) == sum(getattr(r, attr) for r in s.rows)
    assert s.total("params") == s.total("trainable") + s.total("non_trainable")
