"""Values against Keras (issue 17): each kind and placement option built in Keras 3 on its
JAX backend (whose pooling and padding follow TensorFlow, the semantics cnncalc promises)
and in cnncalc's PyTorch module, with the same weights and the same input, must give the
same numbers. Shapes and counts cannot see a pixel put on the wrong side; this can."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # another test module imported Keras first
    pytest.skip("Keras runs on another backend in this process; run this file alone "
                "(the values are TensorFlow's only on JAX)", allow_module_level=True)
from keras import layers as L  # noqa: E402

import cnncalc  # noqa: E402
from cnncalc.layers.base import picture  # noqa: E402

# each case compiles in JAX (about a second): 'make mutate' runs only the cases that reach a
# mutated function; the random chains are left to 'make test' (slow)
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _keras_weight(kind, w, shape):
    """A cnncalc module's parameter (kernels in the spec's axis order, width first) in the
    layout Keras keeps it."""
    w = w.detach().numpy()
    if kind == "depthwise" and w.ndim >= 3:  # (C*m, 1, *k) -> (*k rows first, C, m)
        c_m, _, *k = w.shape
        m = shape[-1]
        w = w.reshape(c_m // m, m, *k)
        axes = (*range(2, 2 + len(k)), 0, 1)
        w = w.transpose(axes)
        return _picture_kernel(w, len(k))
    if w.ndim >= 3:  # conv (F, C, *k) and deconv (C, F, *k) -> (*k, C, F) and (*k, F, C)
        k = w.ndim - 2
        w = w.transpose(*range(2, 2 + k), 1, 0)
        return _picture_kernel(w, k)
    if w.ndim == 2:  # dense (out, in) -> (in, out)
        return w.T
    return w


def _picture_kernel(w, k):
    """Kernel axes (..., kW, kH, ...) in the spec's order -> Keras' rows first."""
    return np.swapaxes(w, k - 2, k - 1) if k >= 2 else w


def _same_weights(net, model):
    """Copy cnncalc's parameters and buffers into the Keras model, layer by layer."""
    from cnncalc.backends.modules import BatchNormPart
    ours = [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))]
    # an adapted Normalization's fresh state (mean 0, variance 1) is cnncalc's own: no copy
    theirs = [layer for layer in model.layers if layer.weights
              and not isinstance(layer, L.Normalization)]
    assert len(ours) == len(theirs), (ours, theirs)
    for m, layer in zip(ours, theirs):
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            values = [m.weight, m.bias, m.running_mean, m.running_var]
        elif isinstance(m, BatchNormPart):  # Keras: the learnt half, then the statistics
            values = [p for p in (m.weight, m.bias) if p is not None] + \
                [m.norm.running_mean, m.norm.running_var]
        else:
            values = [p for p in (getattr(m, "weight", None), getattr(m, "bias", None))
                      if p is not None] or list(m.parameters(recurse=False))
        kind = "depthwise" if isinstance(layer, L.DepthwiseConv2D) else "plain"
        target = layer.get_weights()
        layer.set_weights([_keras_weight(kind, v, t.shape).reshape(t.shape)
                           for v, t in zip(values, target)])


def _same_separable(net, model):
    """Keras holds depthwise kernel, pointwise kernel, bias; cnncalc two convolutions."""
    sep = next(m for m in net.modules() if hasattr(m, "depthwise") and hasattr(m, "pointwise"))
    layer = next(lay for lay in model.layers if isinstance(lay, L.SeparableConv2D))
    k = layer.get_weights()
    values = [_keras_weight("depthwise", sep.depthwise.op.weight, k[0].shape),
              _keras_weight("plain", sep.pointwise.weight, k[1].shape).reshape(k[1].shape)]
    if len(k) > 2:
        values.append(sep.pointwise.bias.detach().numpy())
    layer.set_weights(values)


def _randomise(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.normal_(0, 0.5)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.5)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)


def _compare(spec, keras_layers, picture_input):
    net = cnncalc.to_torch(spec).eval()
    _randomise(net)
    model = keras.Sequential([keras.Input(picture_input), *keras_layers])
    if any(isinstance(layer, L.SeparableConv2D) for layer in model.layers):
        _same_separable(net, model)
    else:
        _same_weights(net, model)
    x = np.random.default_rng(1).standard_normal((2, *picture_input)).astype(np.float32)
    want = np.asarray(model(x))
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


CASES = [
    # convolution: 'same' with every stride and kernel parity (TensorFlow puts the extra
    # pixel after), explicit pad, dilation, groups
    ("input 8x7x3 | conv 3x3x4 same stride 2", [L.Conv2D(4, 3, 2, "same")], (7, 8, 3)),
    ("input 8x8x3 | conv 4x4x4 same stride 2", [L.Conv2D(4, 4, 2, "same")], (8, 8, 3)),
    ("input 9x6x3 | conv 2x2x4 same", [L.Conv2D(4, 2, padding="same")], (6, 9, 3)),
    ("input 9x9x3 | conv 4x2x4 same stride 3", [L.Conv2D(4, (2, 4), 3, "same")], (9, 9, 3)),
    ("input 9x8x3 | conv 3x3x4 valid stride 3", [L.Conv2D(4, 3, 3)], (8, 9, 3)),
    ("input 9x9x3 | conv 3x3x4 same dilation 2", [L.Conv2D(4, 3, padding="same",
                                                           dilation_rate=2)], (9, 9, 3)),
    ("input 8x8x4 | conv 3x3x4 same groups 2 nobias",
     [L.Conv2D(4, 3, padding="same", groups=2, use_bias=False)], (8, 8, 4)),
    ("input 7x6x3 | conv 3x3x4 pad 1", [L.ZeroPadding2D(1), L.Conv2D(4, 3)], (6, 7, 3)),
    ("input 20x3 | conv 3x4 causal dilation 2",
     [L.Conv1D(4, 3, padding="causal", dilation_rate=2)], (20, 3)),
    # causal at a stride: 2 zeros before, then every other window: floor((9 - 1) / 2) + 1 = 5
    ("input 9x3 | conv 3x4 causal stride 2", [L.Conv1D(4, 3, 2, padding="causal")], (9, 3)),
    ("input 8x7x6x3 | conv 3x3x2x4 same stride 2", [L.Conv3D(4, (3, 2, 3), 2, "same")],
     (8, 6, 7, 3)),
    # depthwise and separable
    ("input 8x7x3 | dwconv 3x3 same stride 2 multiplier 2",
     [L.DepthwiseConv2D(3, 2, "same", depth_multiplier=2)], (7, 8, 3)),
    ("input 8x8x3 | sepconv 3x3x5 same", [L.SeparableConv2D(5, 3, padding="same")], (8, 8, 3)),
    # the activation after the pointwise step only; no bias means none in either step
    ("input 8x7x3 | sepconv 3x3x5 same relu", [L.SeparableConv2D(5, 3, padding="same",
                                                                 activation="relu")], (7, 8, 3)),
    ("input 8x7x3 | sepconv 3x3x5 nobias multiplier 2",
     [L.SeparableConv2D(5, 3, depth_multiplier=2, use_bias=False)], (7, 8, 3)),
    # transposed convolution: valid and same, odd and even kernels
    ("input 5x4x3 | deconv 3x3x4 stride 2", [L.Conv2DTranspose(4, 3, 2)], (4, 5, 3)),
    ("input 5x4x3 | deconv 3x3x4 stride 2 same tanh",
     [L.Conv2DTranspose(4, 3, 2, "same", activation="tanh")], (4, 5, 3)),
    ("input 5x4x3 | deconv 3x3x4 stride 2 same", [L.Conv2DTranspose(4, 3, 2, "same")],
     (4, 5, 3)),
    ("input 5x4x3 | deconv 4x4x4 stride 2 same", [L.Conv2DTranspose(4, 4, 2, "same")],
     (4, 5, 3)),
    # pooling at the borders: average over real pixels only
    ("input 6x6x2 | avgpool 3 stride 2 same", [L.AveragePooling2D(3, 2, "same")], (6, 6, 2)),
    ("input 7x5x2 | avgpool 2 same", [L.AveragePooling2D(2, padding="same")], (5, 7, 2)),
    ("input 7x7x2 | maxpool 3 stride 2 same", [L.MaxPooling2D(3, 2, "same")], (7, 7, 2)),
    ("input 7x6x2 | maxpool 2", [L.MaxPooling2D(2)], (6, 7, 2)),
    # padding the same on both sides: PyTorch pads inside its own kernel (count_include_pad off)
    ("input 6x5x2 | avgpool 3 stride 1 same", [L.AveragePooling2D(3, 1, "same")], (5, 6, 2)),
    ("input 6x5x2 | maxpool 3 stride 1 same", [L.MaxPooling2D(3, 1, "same")], (5, 6, 2)),
    ("input 4x4x2 | avgpool 5 stride 1 same", [L.AveragePooling2D(5, 1, "same")], (4, 4, 2)),
    # padded after only: a window of negative values next to the padding takes their maximum
    ("input 7x5x2 | maxpool 2 same", [L.MaxPooling2D(2, padding="same")], (5, 7, 2)),
    ("input 3x3x2 | maxpool 5 stride 1 same", [L.MaxPooling2D(5, 1, "same")], (3, 3, 2)),
    ("input 7x6x2 | avgpool 2x3 stride 1x2", [L.AveragePooling2D((3, 2), (2, 1))], (6, 7, 2)),
    ("input 7x6x2 | globalavgpool", [L.GlobalAveragePooling2D()], (6, 7, 2)),
    ("input 7x6x2 | globalmaxpool", [L.GlobalMaxPooling2D()], (6, 7, 2)),
    # reshaping
    ("input 5x4x2 | upsample 2", [L.UpSampling2D(2)], (4, 5, 2)),
    ("input 5x4x2 | upsample 3x2", [L.UpSampling2D((2, 3))], (4, 5, 2)),
    ("input 5x4x2 | upsample 2 bilinear", [L.UpSampling2D(2, interpolation="bilinear")],
     (4, 5, 2)),
    # Keras' bilinear Resizing (what 'import keras' reads as resize), up and down
    ("input 5x4x2 | resize 9x7 bilinear", [L.Resizing(7, 9, interpolation="bilinear")],
     (4, 5, 2)),
    ("input 9x7x2 | resize 5x4 bilinear", [L.Resizing(4, 5, interpolation="bilinear")],
     (7, 9, 2)),
    ("input 9x7x2 | zeropad 1x2x3x4", [L.ZeroPadding2D(((3, 4), (1, 2)))], (7, 9, 2)),
    ("input 9x7x2 | crop 1x2x0x3", [L.Cropping2D(((0, 3), (1, 2)))], (7, 9, 2)),
    ("input 4x3x2 | flatten", [L.Flatten()], (3, 4, 2)),
    ("input 24 | reshape 3x2x4", [L.Reshape((2, 3, 4))], (24,)),
    # Keras reshapes the values in the order rows, columns, channels
    ("input 4x3x2 | reshape 6x4", [L.Reshape((6, 4))], (3, 4, 2)),
    ("input 4x3x2 | reshape 2x3x4", [L.Reshape((3, 2, 4))], (3, 4, 2)),
    ("input 2x3x4x2 | reshape 4x3x4", [L.Reshape((3, 4, 4))], (2, 4, 3, 2)),
    ("input 6x4 | reshape 2x3x4", [L.Reshape((3, 2, 4))], (6, 4)),
    ("input 4x3x4 | reshape 2x3x2x4", [L.Reshape((2, 2, 3, 4))], (3, 4, 4)),
    # one size left open ('?'), as Keras' -1: 24 values as 6x4, 2x3x4 and 3x2x4
    ("input 4x3x2 | reshape ?x4", [L.Reshape((-1, 4))], (3, 4, 2)),
    ("input 4x3x2 | reshape 2x?x4", [L.Reshape((-1, 2, 4))], (3, 4, 2)),
    ("input 24 | reshape 3x?x4", [L.Reshape((-1, 3, 4))], (24,)),
    # dense, on a vector and on a map (per position)
    ("input 12 | dense 5 relu", [L.Dense(5, activation="relu")], (12,)),
    ("input 4x3x6 | dense 5", [L.Dense(5)], (3, 4, 6)),
    # normalisation with Keras' epsilon
    ("input 5x4x6 | batchnorm", [L.BatchNormalization()], (4, 5, 6)),
    ("input 5x4x6 | batchnorm eps 0.5", [L.BatchNormalization(epsilon=0.5)], (4, 5, 6)),
    ("input 5x4x6 | layernorm eps 1e-6", [L.LayerNormalization(epsilon=1e-6)], (4, 5, 6)),
    ("input 5x4x6 | layernorm eps 0.5", [L.LayerNormalization(epsilon=0.5)], (4, 5, 6)),
    ("input 6 | layernorm eps 0.5", [L.LayerNormalization(epsilon=0.5)], (6,)),
    ("input 5x4x8 | groupnorm 4", [L.GroupNormalization(4)], (4, 5, 8)),
    ("input 5x4x8 | prelu", [L.PReLU(shared_axes=[1, 2])], (4, 5, 8)),
    # batch normalisation without its scale or its offset (InceptionV3's scale=False)
    ("input 5x4x6 | batchnorm noscale", [L.BatchNormalization(scale=False)], (4, 5, 6)),
    ("input 5x4x6 | batchnorm nocenter", [L.BatchNormalization(center=False)], (4, 5, 6)),
    # a global pool that keeps its axes (MobileNet's head)
    ("input 7x6x2 | globalavgpool keepdims", [L.GlobalAveragePooling2D(keepdims=True)],
     (6, 7, 2)),
    ("input 7x6x2 | globalmaxpool keepdims", [L.GlobalMaxPooling2D(keepdims=True)], (6, 7, 2)),
    # Rescaling (MobileNetV3's 1 / 127.5 - 1) and an adapted Normalization's fresh state
    ("input 5x4x3 | rescale 0.0078431 minus 1", [L.Rescaling(0.0078431, offset=-1.0)],
     (4, 5, 3)),
    ("input 5x4x3 | rescale 2 plus 0.5", [L.Rescaling(2.0, offset=0.5)], (4, 5, 3)),
    ("input 5x4x3 | normalize stats", [L.Normalization(axis=-1)], (4, 5, 3)),
]
ACTS = ["relu", "relu6", "sigmoid", "tanh", "softmax", "gelu", "silu", "hardswish",
        "hardsigmoid", "elu", "selu", "mish", "leakyrelu", "linear"]
KERAS_ACT = {"hardswish": "hard_swish", "hardsigmoid": "hard_sigmoid", "leakyrelu": "leaky_relu"}


@pytest.mark.parametrize("spec,keras_layers,picture_input", CASES,
                         ids=[c[0].split("| ", 1)[1] for c in CASES])
def test_values_match_keras(spec, keras_layers, picture_input):
    _compare(spec, keras_layers, picture_input)


@pytest.mark.parametrize("act", ACTS)
def test_activations_match_keras(act):
    _compare(f"input 5x4x3 | conv 3x3x4 same {act}",
             [L.Conv2D(4, 3, padding="same", activation=KERAS_ACT.get(act, act))], (4, 5, 3))


def test_leakyrelu_slope_matches_keras():
    _compare("input 6 | leakyrelu slope 0.1", [L.LeakyReLU(negative_slope=0.1)], (6,))


@pytest.mark.parametrize("kernel, crop", [(3, 1), (4, ((1, 2), (1, 2)))])
def test_a_concat_crop_matches_keras(kernel, crop):
    # 'concat a crop' centre-crops the saved 9x9 map to the current one: 7x7 leaves one
    # pixel a side; 6x6 leaves 3, the odd one after, as Keras U-Nets write their Cropping2D
    net = cnncalc.to_torch(f"input 9x9x2 | conv 1x1x3 name=a | conv {kernel}x{kernel}x4 | "
                           "concat a crop")
    net.eval()
    _randomise(net)
    x_in = keras.Input((9, 9, 2))
    a = L.Conv2D(3, 1)(x_in)
    b = L.Conv2D(4, kernel)(a)
    model = keras.Model(x_in, L.Concatenate()([b, L.Cropping2D(crop)(a)]))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    for m, layer in zip(convs, [lay for lay in model.layers if lay.weights]):
        t = layer.get_weights()
        layer.set_weights([_keras_weight("plain", m.weight, t[0].shape),
                           m.bias.detach().numpy()])
    x = np.random.default_rng(2).standard_normal((1, 9, 9, 2)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-4, atol=1e-4)


# --- random specs from the property generators ------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402

from test_property import sequential  # noqa: E402

RANDOM = settings(max_examples=int(os.environ.get("CNNCALC_KERAS_EXAMPLES", "25")),
                  deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _copy_into_keras(net, model):
    """cnncalc's parameters, module by module, into the Keras layers that hold weights, in
    the walk's order (a separable convolution: two torch modules, one Keras layer)."""
    ours = [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))]
    for layer in [lay for lay in model.layers if lay.weights]:
        target = layer.get_weights()
        if isinstance(layer, L.SeparableConv2D) or isinstance(layer, L.SeparableConv1D):
            dw, pw = ours.pop(0), ours.pop(0)
            values = [_keras_weight("depthwise", dw.weight, target[0].shape),
                      _keras_weight("plain", pw.weight, target[1].shape).reshape(target[1].shape)]
            if len(target) > 2:
                values.append(pw.bias.detach().numpy())
        else:
            m = ours.pop(0)
            values = [m.weight, m.bias, m.running_mean, m.running_var] \
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) else \
                [p for p in (getattr(m, "weight", None), getattr(m, "bias", None)) if p is not None]
            kind = "depthwise" if "Depthwise" in type(layer).__name__ else "plain"
            values = [_keras_weight(kind, v, t.shape).reshape(t.shape)
                      for v, t in zip(values, target)]
        layer.set_weights(values)
    assert not ours


@pytest.mark.slow
@RANDOM
@given(sequential())
def test_random_chains_compute_what_keras_computes(text):
    from cnncalc.interop.to_keras import load_model, to_keras_code
    try:
        s = cnncalc.summarize(text)
        code = to_keras_code(s)
    except cnncalc.CnnCalcError:
        return  # refused: the property tests hold refusals to PyTorch's
    model = load_model(code)
    net = cnncalc.to_torch(s).eval()
    _randomise(net)
    _copy_into_keras(net, model)
    shape = s.network.input.shape
    x = np.random.default_rng(3).standard_normal(
        (2, *(*picture(shape[:-1]), shape[-1]))).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    want = np.asarray(model(x))
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
