"""Keras models as specs (issue 13): Keras' own applications (built with weights=None, no
download) import with the counts Keras reports, every layer's output shape as Keras has it,
from a .keras file and from model.to_json(); tf.keras 2's JSON form too; what has no
counterpart is named."""

import json
import os
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")  # as test_keras_values.py: one backend a process

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from keras import layers  # noqa: E402

import cnncalc  # noqa: E402
from cnncalc.cli import main  # noqa: E402
from cnncalc.layers.base import picture  # noqa: E402

# Keras warns of NumPy 2's copy keyword at every weight it creates
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _trainable(model):
    return sum(int(w.numpy().size) for w in model.trainable_weights)


def _spec_shape(keras_shape):
    """Keras' (None, H, W, C) as cnncalc writes it, width first."""
    *spatial, c = keras_shape[1:]
    return (*picture(spatial), c)


def _same_rows(imported, model):
    rows = {r.name: r for r in imported.summary.rows}
    compared = 0
    for layer in model.layers:
        if layer.name in rows:
            assert rows[layer.name].output == _spec_shape(layer.output.shape), layer.name
            assert rows[layer.name].params == layer.count_params(), layer.name
            compared += 1
    return compared


@pytest.mark.parametrize("factory,published,size", [
    ("MobileNetV2", 3_538_984, None), ("ResNet50", 25_636_712, None),
    ("DenseNet121", 8_062_504, None), ("VGG16", 138_357_544, None),
    # Rescaling and an adapted Normalization (3 + 3 + 1 non-trainable), SE blocks' Reshape
    ("EfficientNetB0", 5_330_571, None),
    # GlobalAveragePooling2D(keepdims=True)
    ("MobileNet", 4_253_864, None),
    # BatchNormalization(scale=False)
    ("InceptionV3", 23_851_784, None),
    # Normalization by constants, nested Sequential stem and downsampling, LayerScale
    ("ConvNeXtTiny", 28_589_128, None),
    # an open input size, x + 3 and x * (1 / 6): the hard sigmoid as rescales
    ("MobileNetV3Small", 2_554_968, "224x224x3"),
    # cells whose tensors are read by parts that do not meet in one block: 'from ID'
    ("NASNetMobile", 5_326_716, None),
])
def test_keras_applications_import_with_keras_counts(tmp_path, factory, published, size):
    model = getattr(keras.applications, factory)(weights=None)
    path = tmp_path / f"{factory}.keras"
    model.save(path)
    imported = cnncalc.from_keras(path, size)
    s = imported.summary
    assert s.totals.params == model.count_params() == published
    assert s.totals.trainable == _trainable(model)
    if size:  # the file leaves the sizes open: rows are held against one built at them
        *spatial, c = map(int, size.split("x"))
        model = getattr(keras.applications, factory)(weights=None,
                                                     input_shape=(*picture(spatial), c))
        (tmp_path / "fixed.json").write_text(model.to_json())
        fixed = cnncalc.from_keras(tmp_path / "fixed.json")
        assert fixed.summary.totals.params == s.totals.params
        imported = fixed  # its layer names are this model's (Keras numbers them per build)
    assert s.output == _spec_shape(model.output_shape)
    nested = sum(len(layer.layers) - 1 for layer in model.layers if hasattr(layer, "layers"))
    assert _same_rows(imported, model) >= (len(model.layers) - nested) * 0.8
    (tmp_path / "model.json").write_text(model.to_json())
    assert cnncalc.from_keras(tmp_path / "model.json", size).text == imported.text


def test_a_functional_model_with_every_common_layer(tmp_path):
    inp = keras.Input((37, 29, 3))
    x = layers.ZeroPadding2D(((1, 2), (0, 3)))(inp)
    x = layers.Conv2D(16, (3, 5), strides=2, padding="same", activation="relu")(x)
    skip = layers.SeparableConv2D(16, 3, padding="same", use_bias=False)(x)
    skip = layers.BatchNormalization(epsilon=1e-5)(skip)  # PyTorch's: kept, not Keras' 1e-3
    skip = layers.LeakyReLU(negative_slope=0.1)(skip)
    y = layers.MaxPooling2D(2)(skip)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(y)
    y = layers.Conv2DTranspose(16, 3, strides=2, padding="same")(y)
    y = layers.Cropping2D(((0, 0), (0, 1)))(y)
    up = layers.UpSampling2D(interpolation="bilinear")(y)
    merged = layers.Concatenate()([layers.Cropping2D(((0, 0), (1, 0)))(skip), y])
    side = layers.Conv2D(4, 1, name="side")(up)
    out = layers.Add()([layers.Conv2D(32, 1)(merged), layers.Conv2D(32, 1)(merged)])
    out = layers.GlobalAveragePooling2D()(out)
    out = layers.Dropout(0.3)(out)
    out = layers.Dense(5, activation="softmax", name="classes")(out)
    model = keras.Model(inp, [side, out])
    path = tmp_path / "net.keras"
    model.save(path)
    imported = cnncalc.from_keras(path)
    assert imported.summary.totals.params == model.count_params()
    assert _same_rows(imported, model) == len(model.layers) - 1  # all but the input
    assert [r.layer.describe() for r in imported.summary.rows if r.kind == "batchnorm"] == \
        ["batchnorm eps 1e-05"]
    assert [s for _, s in imported.summary.outputs] == [_spec_shape(model.outputs[0].shape),
                                                        (5,)]


def test_layers_frozen_for_fine_tuning_import_with_keras_trainable_counts(tmp_path):
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, padding="same", trainable=False)(inp)
    x = layers.BatchNormalization(trainable=False)(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, layers.Dense(4)(x))
    path = tmp_path / "frozen.keras"
    model.save(path)
    s = cnncalc.from_keras(path).summary
    values = lambda ws: sum(int(np.prod(w.shape)) for w in ws)  # noqa: E731
    assert (s.totals.trainable, s.totals.non_trainable) == \
        (values(model.trainable_weights), values(model.non_trainable_weights)) == (36, 256)
    assert [r.layer.frozen for r in s.rows] == [True, True, False, False]


def test_subtract_keeps_its_order_and_computes_what_keras_computes(tmp_path):
    """Keras' Subtract: the first input minus the second, imported as 'subtract' and built
    back by cnncalc's Keras export, which gives the same values for the same weights."""
    from cnncalc.interop.to_keras import load_model, to_keras_code
    inp = keras.Input((6, 5, 3))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inp)
    b = layers.Conv2D(4, 1, name="b")(inp)
    model = keras.Model(inp, layers.Subtract(name="diff")([b, a]))
    path = tmp_path / "sub.keras"
    model.save(path)
    imported = cnncalc.from_keras(path)
    assert "subtract" in imported.text and imported.summary.totals.params == model.count_params()
    rebuilt = load_model(to_keras_code(imported.summary))
    for layer in ("a", "b"):
        rebuilt.get_layer(layer).set_weights(model.get_layer(layer).get_weights())
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype("float32")
    assert np.allclose(rebuilt(x), model(x), atol=1e-5)


# tf.keras 2's to_json(): inbound nodes as [[name, node, tensor, kwargs]]; a 28x28x1 input
TF_KERAS = {"class_name": "Functional", "config": {"name": "mnist", "layers": [
    {"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
     "config": {"batch_input_shape": [None, 28, 28, 1], "name": "in"}},
    {"class_name": "Conv2D", "name": "c1", "inbound_nodes": [[["in", 0, 0, {}]]],
     "config": {"name": "c1", "filters": 8, "kernel_size": [3, 3], "strides": [1, 1],
                "padding": "valid", "activation": "relu", "use_bias": True}},
    {"class_name": "Flatten", "name": "f", "inbound_nodes": [[["c1", 0, 0, {}]]],
     "config": {"name": "f"}},
    {"class_name": "Dense", "name": "out", "inbound_nodes": [[["f", 0, 0, {}]]],
     "config": {"name": "out", "units": 10, "activation": "softmax", "use_bias": True}}],
    "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}}


def test_tf_keras_2_json(tmp_path):
    path = tmp_path / "mnist.json"
    path.write_text(json.dumps(TF_KERAS))
    res = CliRunner().invoke(main, ["import", "keras", str(path)])
    assert res.exit_code == 0, res.output
    s = cnncalc.summarize(res.output)
    # conv: 3*3*1*8 + 8 = 80; dense: 26*26*8*10 + 10 = 54,090
    assert s.totals.params == 80 + 54_090 and s.output == (10,)


def test_what_has_no_counterpart_is_named(tmp_path):
    inp = keras.Input((75, 75, 3))
    x = layers.Conv2D(8, 3, strides=2, name="stem")(inp)
    x = layers.UnitNormalization(name="unit")(x)  # no cnncalc counterpart
    x = layers.Conv2D(8, 3, name="after")(x)
    out = layers.GlobalAveragePooling2D(name="pool")(layers.Conv2D(4, 3, name="later")(x))
    path = tmp_path / "net.keras"
    keras.Model(inp, out).save(path)
    res = CliRunner().invoke(main, ["import", "keras", str(path)])
    assert res.exit_code == 2
    assert "unit: layer class UnitNormalization" in res.output
    assert res.output.count("\n  ") == 1  # the layers after it are not listed again
    res = CliRunner().invoke(main, ["import", "keras", str(path), "--partial"])
    assert res.exit_code == 0 and "# import stopped at layer unit" in res.output
    assert cnncalc.summarize(res.output).output == (37, 37, 8)  # Keras' first conv, 3x3/2


@pytest.mark.parametrize("content,message", [
    (b"not json", "not a Keras model file"),
    (None, "not a Keras model file"),  # a zip without config.json
])
def test_files_of_the_wrong_kind(tmp_path, content, message):
    path = tmp_path / "model.keras"
    if content is None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("other.txt", "x")
    else:
        path = tmp_path / "model.json"
        path.write_bytes(content)
    res = CliRunner().invoke(main, ["import", "keras", str(path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


# every activation name Keras 3 has for one cnncalc computes (its keras.activations,
# 'swish' and 'hard_silu' its own synonyms), on a convolution and as a layer of its own;
# the values of cnncalc's module against Keras' on the same weights
@pytest.mark.parametrize("name, word", [
    ("relu", "relu"), ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("softmax", "softmax"),
    ("gelu", "gelu"), ("silu", "silu"), ("swish", "silu"), ("relu6", "relu6"),
    ("hard_swish", "hardswish"), ("hard_silu", "hardswish"), ("hard_sigmoid", "hardsigmoid"),
    ("elu", "elu"), ("selu", "selu"), ("mish", "mish"), ("leaky_relu", "leakyrelu")])
def test_every_keras_activation_imports(tmp_path, name, word):
    import numpy as np
    import torch
    model = keras.Sequential([keras.Input((4, 5, 3)), layers.Conv2D(2, 3, activation=name),
                              layers.Activation(name)])
    (tmp_path / "m.json").write_text(model.to_json())
    imported = cnncalc.from_keras(tmp_path / "m.json")
    assert [r.layer.describe() for r in imported.summary.rows] == \
        [f"conv 3x3x2 {word}", word]
    net = cnncalc.to_torch(imported.summary).eval()
    kernel, bias = model.layers[0].get_weights()
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(kernel).permute(3, 2, 1, 0))  # (F, C, width, height)
        conv.bias.copy_(torch.tensor(bias))
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype("float32") * 3
    got = net(torch.tensor(x)).detach().numpy()  # the module takes Keras' arrays
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_a_resizing_layer_imports_where_it_computes_cnncalcs_resize(tmp_path, interpolation):
    """Keras' bilinear Resizing samples at half-pixel centres, as cnncalc's bilinear resize
    (test_keras_values.py compares the values); its nearest rounds where PyTorch's floors,
    so it is refused by name rather than read as something else."""
    inp = keras.Input((20, 30, 3))
    x = layers.Resizing(45, 60, interpolation=interpolation, name="up")(inp)
    model = keras.Model(inp, layers.Conv2D(4, 3, name="conv")(x))
    path = tmp_path / "net.keras"
    model.save(path)
    if interpolation == "bilinear":
        imported = cnncalc.from_keras(str(path))
        assert "resize 60x45 bilinear name=up" in imported.text
        assert _same_rows(imported, model) == 2
    else:
        res = CliRunner().invoke(main, ["import", "keras", str(path)])
        assert res.exit_code == 2 and "up: Resizing by 'nearest'" in res.output


def test_mobilenet_v3s_spelt_out_activations_import_as_themselves(tmp_path):
    """keras.applications' MobileNetV3 writes hard_sigmoid(x) = ReLU(6)(x + 3) * (1 / 6) and
    hard_swish(x) = Multiply()([x, hard_sigmoid(x)]) (applications/mobilenet_v3.py): the
    rewrite every reader runs reads them as hardsigmoid and hardswish, which compute what
    Keras computes on the same input."""
    inp = keras.Input((5, 4, 3))
    gate = layers.ReLU(6.0)(inp + 3.0) * (1.0 / 6.0)
    model = keras.Model(inp, layers.Multiply()([inp, gate]))
    path = tmp_path / "hs.keras"
    model.save(path)
    imported = cnncalc.from_keras(str(path))
    assert [r.layer.describe() for r in imported.summary.rows] == ["hardswish"]
    x = np.random.default_rng(0).normal(scale=4, size=(2, 5, 4, 3)).astype(np.float32)
    import torch
    ours = cnncalc.to_torch(imported.summary).eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
