"""cnncalc import: a model you already have (PyTorch, ONNX, Darknet, Keras) as a spec."""

from __future__ import annotations

import click

from ..errors import CnnCalcError
from .base import _choice, _errors, main, writable, write_file


@main.group(name="import")
def import_():
    """Write the spec of a model you already have (PyTorch, ONNX, Darknet, Keras)."""


def _write_spec(imported, out):
    if out:
        writable(out)
        write_file(out, imported.text)
        s = imported.summary
        click.echo(f"wrote {out}: {len(s.rows)} layers, {s.totals.params:,} params, output "
                   f"{'x'.join(map(str, s.output))}")
        for line in imported.text.splitlines():  # the importer's notes: what it left out
            if line.startswith("# "):
                click.echo(f"note: {line[2:]}")
    else:
        click.echo(imported.text, nl=False)


def _import_options(f):
    f = click.option("--partial", is_flag=True,
                     help="Write the spec up to the first node without a counterpart.")(f)
    f = click.option("--network", metavar="NAME", help="The network's name in the spec.")(f)
    f = click.option("-o", "--output", "out", metavar="FILE.cnn", help="Write the spec here.")(f)
    return f


@import_.command(name="torch")
@click.argument("factory", metavar="FILE.py:FACTORY")
@click.option("--input", "input_shape", required=True, metavar="SHAPE",
              help="The input as the spec writes it, width first: 224x224x3.")
@click.option("--layout", type=_choice("nchw", "nhwc"), default="nchw", show_default=True,
              help="How the module takes its input.")
@click.option("--meta", is_flag=True, help="Build the model on PyTorch's meta device: shapes "
              "without memory for its weights (a model larger than this machine imports).")
@_import_options
@_errors
def import_torch(factory, input_shape, layout, meta, out, network, partial):
    """A PyTorch nn.Module from a factory in your Python file (it runs that file).

    \b
    The model runs once on meta tensors: nothing is computed, no weights are read.
    examples/models.py builds torchvision's, timm's and segmentation_models_pytorch's:
      cnncalc import torch examples/models.py:densenet121 --input 224x224x3 --meta
      cnncalc import torch examples/models.py:efficientnet_b0 --input 224x224x3 --meta
      cnncalc import torch examples/models.py:unet --input 256x256x3 --meta
      cnncalc import torch examples/models.py:yolov8n --input 640x640x3 --partial
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CnnCalcError("importing a PyTorch module needs PyTorch: pip install 'cnncalc[torch]'") from None
    from ..interop.from_torch import from_torch, load_factory
    module = load_factory(factory, meta)
    _write_spec(from_torch(module, input_shape, layout, network, partial), out)


@import_.command(name="darknet")
@click.argument("path", metavar="MODEL.cfg", type=click.Path(dir_okay=False))
@click.option("--input", "input_shape", metavar="SHAPE",
              help="Replace the [net] section's size, width first: 608x608x3.")
@_import_options
@_errors
def import_darknet(path, input_shape, out, network, partial):
    """A Darknet cfg file (YOLO's format; the text is read, the weights are not needed).

    \b
    examples/yolov3.cfg is Darknet's own:
      cnncalc import darknet examples/yolov3.cfg
    """
    from ..interop.from_darknet import from_darknet
    _write_spec(from_darknet(path, input_shape, network, partial), out)


@import_.command(name="keras")
@click.argument("path", metavar="MODEL.keras|MODEL.json", type=click.Path(dir_okay=False))
@click.option("--input", "input_shape", metavar="SHAPE",
              help="The input, width first (224x224x3), when the model leaves sizes open.")
@_import_options
@_errors
def import_keras(path, input_shape, out, network, partial):
    """A Keras model: a .keras file, or the JSON of model.to_json() (read as data; Keras
    is not needed).

    \b
    examples/mobilenet_v2.json is keras.applications.MobileNetV2's:
      cnncalc import keras examples/mobilenet_v2.json
    """
    from ..interop.from_keras import from_keras
    _write_spec(from_keras(path, input_shape, network, partial), out)


@import_.command(name="onnx")
@click.argument("path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("--input", "input_shape", metavar="SHAPE",
              help="The input, width first (224x224x3), when the file leaves sizes open.")
@click.option("--weights-out", metavar="FILE.safetensors",
              help="Save the file's weights for 'cnncalc run --weights'.")
@_import_options
@_errors
def import_onnx(path, input_shape, weights_out, out, network, partial):
    """An ONNX file (its weights stay out of the spec; --weights-out keeps them).

    \b
    A torchvision model, exported by PyTorch, then read:
      python -c "import torch, torchvision; torch.onnx.export(
        torchvision.models.resnet18(), (torch.randn(1, 3, 224, 224),),
        'resnet18.onnx', dynamo=False)"
      cnncalc import onnx resnet18.onnx --weights-out resnet18.safetensors
    """
    from ..interop.from_onnx import from_onnx
    if weights_out:
        writable(weights_out, "--weights-out")
    _write_spec(from_onnx(path, input_shape, network, partial, weights_out), out)
    if weights_out:
        click.echo(f"wrote {weights_out}", err=True)
