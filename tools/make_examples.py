"""Write examples/shapes.onnx: the trained shapes model (examples/shapes.cnn with
examples/shapes.safetensors) exported by PyTorch's ONNX exporter, the example file for
'cnncalc import onnx'; and examples/residual.keras, a small Keras model with a residual
add and a concat (no weights), the example for 'cnncalc import keras' and the seed of its
fuzz test. Run: python tools/make_examples.py"""

from pathlib import Path

import torch

import cnncalc
from cnncalc.backends.weights import apply, load_file

ROOT = Path(__file__).resolve().parent.parent


class Pictures(torch.nn.Module):
    """ONNX files take channels first (N, C, H, W), as PyTorch models do."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.permute(0, 2, 3, 1))


def main():
    net = cnncalc.to_torch(cnncalc.summarize(ROOT / "examples" / "shapes.cnn")).eval()
    apply(net, load_file(str(ROOT / "examples" / "shapes.safetensors")))
    torch.onnx.export(Pictures(net), (torch.zeros(1, 1, 16, 16),), str(ROOT / "examples" / "shapes.onnx"),
                      dynamo=False, do_constant_folding=False, input_names=["picture"],
                      output_names=["classes"], dynamic_axes={"picture": {0: "batch"}})
    print("wrote examples/shapes.onnx")
    keras_example()


def keras_example():
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers
    inp = keras.Input((32, 32, 3), name="picture")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    y = layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    x = layers.Add(name="add")([x, y])
    z = layers.MaxPooling2D(2, name="pool")(x)
    w = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.Concatenate(name="cat")([z, w])
    x = layers.Dropout(0.25, name="drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(10, activation="softmax", name="classes")(x)
    keras.Model(inp, out, name="residual").save(ROOT / "examples" / "residual.keras")
    print("wrote examples/residual.keras")


if __name__ == "__main__":
    main()
