"""The commands that build the spec as a model: run, visualize, check, export, and
the playground (serve)."""

from __future__ import annotations

import sys

import click

from ..errors import CnnCalcError
from .base import (
    _choice,
    _errors,
    _progress,
    _spec_args,
    analyse_or_show,
    load_spec,
    main,
    writable,
    write_file,
)


def _random_weights_notice(weights, seed=0):
    if not weights:
        click.echo(f"random weights (seed {seed}): the numbers mean nothing until you give "
                   "--weights FILE", err=True)


@main.command()
@_spec_args
@click.option("--data", required=True, metavar="FILE",
              help="An image (PNG, JPEG, ...), a .npy array, or a text grid of numbers.")
@click.option("--weights", metavar="FILE", help="safetensors, or a PyTorch state dict "
              "(loaded with weights_only=True: a file that would run code is refused).")
@click.option("--maps", metavar="DIR", help="Write every layer's feature maps as PNG grids here.")
@click.option("--resize", is_flag=True, help="Resize an image to the spec's input size.")
@click.option("--device", default="cpu", show_default=True)
@_errors
def run(spec, expr, input_shape, max_depth, max_layers, max_bytes, data, weights, maps, resize,
        device):
    """Run the spec on real data and print the output (small outputs in full)."""
    from ..backends.runner import format_output, run_on
    if maps:
        from ..files import folder
        folder(maps, "--maps")
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    s = analyse_or_show(loaded)
    _random_weights_notice(weights)
    result, paths, labels = run_on(s, data, weights, maps, resize, device)
    click.echo(format_output(result, s, labels))
    for p in paths:
        click.echo(f"wrote {p}")


@main.command()
@_spec_args
@click.option("--weights", metavar="FILE", help="Trained weights (safetensors or a state dict).")
@click.option("--layer", "layer_name", required=True, metavar="NAME")
@click.option("--filter", "which", default="all", show_default=True, help="A filter number, or all.")
@click.option("-o", "--output", "out", required=True, metavar="FILE.png")
@click.option("--steps", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_errors
def visualize(spec, expr, input_shape, max_depth, max_layers, max_bytes, weights, layer_name,
              which, out, steps, seed, quiet):
    """Find inputs that maximise a filter's mean activation (gradient ascent)."""
    if not out.lower().endswith(".png"):
        raise CnnCalcError(f"-o {out}: expected a .png file name")
    writable(out)
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    s = analyse_or_show(loaded)
    from ..api import visualize as api_visualize
    from ..backends.visualize import tiles
    from ..render.pictures import map_grid, write_png
    _random_weights_notice(weights, seed)
    row = next((r for r in s.rows if r.name == layer_name), None)  # the bar's length
    filters = row.output[-1] if which == "all" and row is not None else 1
    with _progress(filters * steps, quiet, f"visualising {layer_name}") as bar:
        found = api_visualize(s, layer_name, which, steps, seed, weights, bar.update)
    images = []
    for k, img, before, after in found:
        images.append(img)
        if after == before == 0:
            click.echo(f"filter {k}: silent for every start tried (a dead ReLU); nothing "
                       "to maximise", err=True)
        elif len(found) == 1 or not quiet:
            click.echo(f"filter {k}: mean activation {before:.4g} -> {after:.4g}", err=True)
    write_png(map_grid(images[0]) if len(images) == 1 else tiles(images), out)
    click.echo(f"wrote {out}")


@main.command()
@_spec_args
@click.option("--device", default="cpu", show_default=True,
              help="cpu, cuda, cuda:1, or meta (shapes and counts without allocating).")
@click.option("--batch", type=int, default=1, show_default=True)
@click.option("--max-memory", metavar="BYTES", help="Refuse runs estimated above this, e.g. 4GiB.")
@click.option("--weights", metavar="FILE", help="Run with these weights (safetensors or a state dict).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--backend", type=_choice("torch", "keras"), default="torch",
              show_default=True, help="keras: build the spec in Keras 3 and compare each "
              "layer's shape and count_params() instead.")
@click.option("--against", metavar="MODEL",
              help="Compare layer for layer with a model you have instead: FILE.py:FACTORY "
                   "(PyTorch; runs your file), MODEL.onnx, MODEL.cfg (Darknet) or MODEL.keras.")
@_errors
def check(spec, expr, input_shape, max_depth, max_layers, max_bytes, device, batch, max_memory,
          weights, quiet, backend, against):
    """Build the spec in PyTorch, run it, and compare every layer with the calculator.

    \b
    Compares each layer's output shape, trainable parameters, buffers (batchnorm's
    moving statistics) and MACs (torch.utils.flop_counter), and for chains measures
    the receptive field by gradient. Exits 1 on any mismatch."""
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    summary_ = analyse_or_show(loaded)
    from ..api import check as api_check
    ticks = len(summary_.rows) if backend == "torch" and not against else 0
    with _progress(ticks, quiet or not ticks, "forward pass") as bar:
        result = api_check(summary_, device, batch, weights, against, max_memory, backend,
                           bar.update)
    click.echo(str(result), nl=False)
    sys.exit(0 if result.ok else 1)


@main.command()
@_spec_args
@click.option("--to", "target", type=_choice("pytorch", "keras", "onnx"), required=True,
              help="pytorch or keras: a standalone .py file; onnx: an .onnx file (needs torch "
                   "and onnx).")
@click.option("-o", "--output", "out", metavar="FILE",
              help="Write here (a .py file is printed when -o is left out).")
@click.option("--class-name", metavar="NAME", help="The nn.Module's class name.")
@_errors
def export(spec, expr, input_shape, max_depth, max_layers, max_bytes, target, out, class_name):
    """Write the spec for a framework: a PyTorch file you would have written, or ONNX.

    \b
    The PyTorch file imports only torch, takes (N, C, H, W), and has the spec's shapes
    and parameter counts; the ONNX file is that module exported with a dynamic batch."""
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    # ONNX takes open sizes (a dynamic height and width); a Python file needs numbers
    summary_ = analyse_or_show(loaded, "none", open_sizes=target == "onnx")
    from ..interop.to_pytorch import to_pytorch_code
    if target == "onnx" and not out:
        raise click.UsageError("--to onnx needs -o FILE.onnx")
    if out:
        writable(out)
    if target == "keras":
        from ..interop.to_keras import to_keras_code
        code = to_keras_code(summary_, loaded.file)
        if out:
            write_file(out, code)
            click.echo(f"wrote {out}: build() returns the Keras model, "
                       f"{summary_.totals.params:,} parameters")
        else:
            click.echo(code, nl=False)
        return
    if target == "onnx":
        from ..interop.to_onnx import to_onnx
        to_onnx(summary_, out, None if _open(summary_) else
                to_pytorch_code(summary_, class_name, loaded.file))
        click.echo(f"wrote {out}: input (batch, {', '.join(map(str, _input_nchw(summary_)))})"
                   + ("; right at the exact sizes 'cnncalc sizes' lists" if _open(summary_)
                      else ""))
        return
    code = to_pytorch_code(summary_, class_name, loaded.file)
    if out:
        write_file(out, code)
        t = summary_.totals
        from ..interop.to_pytorch import class_name
        click.echo(f"wrote {out}: class {class_name(code)}, {t.trainable:,} trainable "
                   "parameters; run it with python to see its output shape")
    else:
        click.echo(code, nl=False)


def _input_nchw(summary):
    from ..layers.base import AXIS_NAMES, picture
    shape = summary.network.input.shape
    names = AXIS_NAMES.get(len(shape) - 1, ())
    return (shape[-1], *picture(tuple(names[i] if isinstance(v, str) else v
                                      for i, v in enumerate(shape[:-1]))))


def _open(summary) -> bool:
    return any(isinstance(v, str) for v in summary.network.input.shape)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where to listen (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@_errors
def serve(host, port):
    """The playground in your browser: type a spec, see its table, diagram and formulas."""
    try:
        import uvicorn

        from ..web.app import app
    except ImportError:
        raise CnnCalcError("the playground needs Starlette and uvicorn: "
                           "pip install 'cnncalc[serve]'") from None
    import socket
    try:  # the port is ours before the address is printed: a busy port is one clear line
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections queue from the moment the address is printed
    except OSError as e:
        raise CnnCalcError(f"--host {host} --port {port}: cannot listen there "
                           f"({e.strerror or e}); try another --port") from None
    click.echo(f"cnncalc playground on http://{host}:{sock.getsockname()[1]}/ (Ctrl+C stops it)")
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
