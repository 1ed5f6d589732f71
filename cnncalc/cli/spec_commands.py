"""The commands that answer from the calculator alone: summary, explain, draw, sizes,
fit, sweep, solve, schema, layers and fmt."""

from __future__ import annotations

import sys

import click

from ..errors import CnnCalcError
from .base import (
    _choice,
    _errors,
    _progress,
    _read,
    _scale_args,
    _spec_args,
    _training_args,
    analyse_or_show,
    load_spec,
    main,
    writable,
    write_file,
)


@main.command()
@_spec_args
@_scale_args
@click.option("--format", "fmt", type=_choice("table", "json", "markdown", "csv", "html"),
              default="table", show_default=True)
@click.option("--columns", metavar="LIST", help="default, all, or a comma list of: #, name, "
              "layer, block, output, weights, biases, params, trainable, non_trainable, units, "
              "macs, flops, rf, jump, memory.")
@click.option("--counts", type=_choice("keras", "torch"), default="keras",
              show_default=True, help="What 'params' counts: Keras' count_params() (batchnorm's "
              "moving statistics included) or PyTorch's parameters() (they are buffers).")
@_errors
def summary(spec, expr, input_shape, max_depth, max_layers, max_bytes, batch, dtype, optimizer,
            foreach, amp, checkpoint, fmt, columns, counts):
    """Every layer's output shape, weights, biases, params and units, with totals.

    \b
    --columns all adds MACs, FLOPs (2 x MACs + element-wise operations), the receptive
    field and its jump, and activation memory."""
    from ..render.table import Options, parse_columns, render
    options = Options(parse_columns(columns), batch, dtype, optimizer, counts, foreach, amp,
                      checkpoint)
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    s = analyse_or_show(loaded, fmt, open_sizes=fmt != "json")
    click.echo(render(s, fmt, options), nl=False)


@main.command()
@_spec_args
@click.option("--layer", "layer_name", metavar="NAME", help="Only this layer.")
@_errors
def explain(spec, expr, input_shape, max_depth, max_layers, max_bytes, layer_name):
    """Each layer's formulas with the numbers put into them."""
    from ..fmt import shape, where
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    summary_ = analyse_or_show(loaded, "none", explain=True, open_sizes=True)
    rows = [r for r in summary_.rows if layer_name in (None, r.name)]
    if not rows and layer_name is None:  # a spec of only its input
        click.echo(f"input {shape(summary_.input)}: no layers to explain")
        return
    if not rows:
        import difflib
        names = [r.name for r in summary_.rows]
        close = difflib.get_close_matches(layer_name, names, n=3)
        raise CnnCalcError(f"--layer {layer_name}: no such layer; "
                           + (f"did you mean {', '.join(close)}?" if close else
                              "layers are " + ", ".join(names[:20])
                              + (", ..." if len(names) > 20 else "")))
    for r in rows:
        click.echo(f"{r.index} {r.name}: {r.layer.describe()} ({where(r.layer)})")
        click.echo(f"    input {shape(r.input)} -> output {shape(r.output)}")
        for step in r.explain:
            click.echo(f"    {step}")
        if r.params:
            click.echo(f"    params: {r.trainable:,} trainable + {r.non_trainable:,} "
                       f"non-trainable = {r.params:,}")


@main.command()
@_spec_args
@click.option("-o", "--output", "out", required=True, metavar="FILE",
              help="net.svg (self-contained) or net.png (needs matplotlib).")
@_errors
def draw(spec, expr, input_shape, max_depth, max_layers, max_bytes, out):
    """Draw the network as the classic convnet figure."""
    from ..render.draw import layout, png, svg
    if not out.lower().endswith((".svg", ".png")):
        raise CnnCalcError(f"-o {out}: expected a .svg or .png file name")
    writable(out)
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    d = layout(analyse_or_show(loaded))
    if out.lower().endswith(".png"):
        try:
            width, height = png(d, out)
        except ImportError:
            raise CnnCalcError("PNG output needs matplotlib: pip install 'cnncalc[pictures]'") from None
        click.echo(f"wrote {out} ({width} x {height} pixels)")
    else:
        write_file(out, svg(d))
        click.echo(f"wrote {out} ({d.width:.0f} x {d.height:.0f})")


@main.command()
@_spec_args
@click.option("--range", "span", default="1:4096", show_default=True, metavar="LO:HI",
              help="Input sizes to try for each open size.")
@click.option("--show", type=int, default=10, show_default=True,
              help="How many exact sizes to list with their output size.")
@click.option("--open", "open_all", is_flag=True,
              help="Open every spatial size of the spec's input (input 224x224x3 → ?x?x3).")
@_errors
def sizes(spec, expr, input_shape, max_depth, max_layers, max_bytes, span, show, open_all):
    """Which input sizes the design accepts, for open sizes (input ?x?x3, or --open).

    \b
    valid: every layer's output is at least 1 and merged branches agree;
    exact: valid, and no floor leaves input rows unused."""
    from ..analysis.sizes import check_range, describe_set
    from ..api import sizes as open_sizes
    lo, _, hi = span.partition(":")
    digits = lo.isdigit() and hi.isdigit() and len(lo) < 20 and len(hi) < 20
    check_range(int(lo) if digits else 0, int(hi) if digits else 0, f"--range {span}")
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    for axis in open_sizes(loaded.network, int(lo), int(hi), open_all):
        valid, exact = axis.values[axis.valid], axis.values[axis.exact]
        click.echo(f"{axis.name}, {lo} to {hi}:")
        click.echo(f"  valid: {describe_set(valid)}")
        click.echo(f"  exact: {describe_set(exact)}")
        if axis.output is None:
            click.echo(f"  smallest valid input: {valid[0] if len(valid) else 'none'} (the "
                       "output is a vector, whatever the size)")
            continue
        if len(valid):
            click.echo(f"  smallest valid input: {valid[0]} (output {axis.output[axis.valid][0]})")
        if len(exact):
            click.echo("  exact inputs and their output sizes:")
        for v, o in list(zip(exact[:show], axis.output[axis.exact][:show])):
            click.echo(f"    {v} -> {o}")
        if len(exact) > show:
            click.echo(f"    ... {len(exact) - show:,} more (--show N lists more)")


@main.command()
@_spec_args
@click.option("--memory", "memory", required=True, metavar="SIZE", help="e.g. 16GiB, 80GB.")
@_training_args
@_errors
def fit(spec, expr, input_shape, max_depth, max_layers, max_bytes, memory, dtype, optimizer,
        foreach, amp, checkpoint):
    """The largest batch that fits in MEMORY, for training and for inference."""
    from ..api import fit as fit_batch
    from ..fmt import nbytes, parse_bytes
    size = parse_bytes(memory)
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    s = analyse_or_show(loaded, "none")
    res = fit_batch(s, size, dtype, optimizer, foreach, amp, checkpoint)

    def batch(n):
        return f"batch {n:,}" if n else "does not fit, even at batch 1:"
    click.echo(f"{loaded.network.name} in {memory} ({dtype}{' autocast' if amp else ''}):")
    click.echo(f"  training ({optimizer}): {batch(res['training'])}  (the step's peak "
               f"{nbytes(res['training_bytes'])}: parameters and optimizer state "
               f"{nbytes(res['fixed_training_bytes'])}, then the batch, the activations kept "
               "for the backward pass and the gradients)")
    click.echo(f"  inference:        {batch(res['inference'])}  (parameters "
               f"{nbytes(res['param_bytes'])}; peak activations "
               f"{nbytes(res['per_example_inference_bytes'])} per example)")


@main.command()
@_spec_args
@click.option("--vary", multiple=True, required=True, metavar="NAME=LO:HI[:STEP]",
              help="A knob (a 'param' of the spec) or 'input' over a range or a list "
                   "(width=16:128:16, mult=1.0,1.1,1.2); repeat for several: every "
                   "combination is tried.")
@click.option("--where", metavar="CONDITION",
              help="Keep the variants where it holds: 'params < 5M and macs < 1G and rf >= 200'.")
@click.option("--pareto", metavar="M1,M2", help="Mark the front of these metrics, minimised "
              "('-rf': larger is better).")
@click.option("--sort", metavar="METRIC", help="Order by this metric ('-macs': descending).")
@click.option("--format", "fmt", type=_choice("table", "json", "markdown", "csv", "html"),
              default="table", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Rows shown in a table (json and csv hold every variant).")
@click.option("--plot", metavar="FILE.svg", help="Plot the --pareto metrics (else params "
              "against MACs) with the front highlighted.")
@click.option("--scheduler", metavar="ADDRESS", help="Run the chunks on a Dask cluster "
              "(tcp://host:8786; needs 'cnncalc[dask]'), for grids of 10^9 variants and up.")
@_scale_args
@_errors
def sweep(spec, expr, input_shape, max_depth, max_layers, max_bytes, vary, where, pareto,
          sort, fmt, limit, plot, scheduler, batch, dtype, optimizer, foreach, amp,
          checkpoint):
    """Every combination of the spec's knobs: metrics, a condition, the Pareto front.

    \b
    A spec declares its knobs at the top: 'param width = 64', used as $width.
    Metrics: params, trainable, macs, flops, rf (receptive field), memory (inference) and
    training (bytes at --batch). E.g.
      cnncalc sweep specs/efficientnet.cnn --vary width=1.0,1.1,1.2 --vary depth=1.0:1.4:0.1
          --where 'macs < 1G' --pareto params,macs"""
    from ..analysis.sweep import parse_vary
    from ..api import sweep as run_sweep
    from ..render.sweep import plot as draw_plot
    from ..render.sweep import render
    if plot:
        if not plot.lower().endswith(".svg"):
            raise CnnCalcError(f"--plot {plot}: expected an .svg file name")
        writable(plot, "--plot")
    text, file = _read(spec, expr, max_bytes)
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    grid = parse_vary(vary)
    total = 1
    for v in grid.values():
        total *= len(v)
    with _progress(total, False, "sweeping") as bar:
        records = run_sweep(text, grid, where, pareto, sort, batch, dtype, optimizer,
                            scheduler=scheduler, foreach=foreach, amp=amp,
                            checkpoint=checkpoint, file=file, progress=bar.update)
    click.echo(render(records, list(grid), fmt.lower(), limit if fmt.lower() == "table" else None),
               nl=False)
    if plot:
        metrics = [m.strip() for m in pareto.split(",")] if pareto else ["params", "macs"]
        if len(metrics) != 2:
            raise CnnCalcError("--plot draws two metrics: give --pareto M1,M2")
        write_file(plot, draw_plot(records, list(grid), *metrics), "--plot")
        click.echo(f"wrote {plot}", err=True)


@main.command()
@click.argument("sizes", metavar="IN:OUT")
@click.option("--kernels", default="1:7", show_default=True, metavar="LO:HI")
@click.option("--strides", default="1:4", show_default=True, metavar="LO:HI")
@click.option("--dilations", default="1:3", show_default=True, metavar="LO:HI")
@click.option("--all", "show_all", is_flag=True, help="Inexact windows too (a floor leaves "
              "input rows unused).")
@_errors
def solve(sizes, kernels, strides, dilations, show_all):
    """Which windows (kernel, stride, padding, dilation) take a size IN to OUT.

    \b
    By the same rule as conv and pooling; exact ones (no input row unused) first. E.g.
      cnncalc solve 32:16      (then 'cnncalc sizes' for input sizes, 'cnncalc sweep'
                                for widths within a budget)"""
    from ..api import solve as windows

    def span(text, option):
        lo, _, hi = text.partition(":")
        if not (lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 64):
            raise CnnCalcError(f"{option} {text}: expected LO:HI between 1 and 64, e.g. 1:7")
        return range(int(lo), int(hi) + 1)
    a, _, b = sizes.partition(":")
    if not (a.isdigit() and b.isdigit() and len(a) < 10 and len(b) < 10):
        raise CnnCalcError(f"{sizes}: expected IN:OUT, two sizes such as 32:16")
    found = windows(int(a), int(b), span(kernels, "--kernels"), span(strides, "--strides"),
                    span(dilations, "--dilations"))
    shown = [w for w in found if show_all or w["exact"]]
    if not shown:
        click.echo(f"no window takes {a} to {b}" + ("" if show_all or not found else
                   f" exactly ({len(found)} inexact: --all lists them)"))
        return
    click.echo(f"{len(shown)} window(s) take {a} to {b}" + ("" if show_all else " exactly")
               + ":")
    for w in shown:
        words = [f"kernel {w['kernel']}", f"stride {w['stride']}", w["padding"]]
        if w["dilation"] > 1:
            words.append(f"dilation {w['dilation']}")
        pads = "pads %d+%d" % w["pads"]
        cost = f"{w['kernel'] ** 2} MACs"  # a square window's, per output value and channel pair
        click.echo(f"  {', '.join(words):40} {pads:10} {cost:9} "
                   f"{'exact' if w['exact'] else 'inexact'}")


@main.command()
def schema():
    """The JSON Schema of 'summary --format json'."""
    import json

    from ..render.result import schema as _schema
    click.echo(json.dumps(_schema(), indent=2))


@main.command()
@click.argument("kind", required=False)
@click.option("--format", "fmt", type=_choice("table", "markdown"), default="table",
              show_default=True)
@_errors
def layers(kind, fmt):
    """Every layer kind: its options and an example (or one KIND in full)."""
    from ..layers.catalogue import catalogue, one
    click.echo(one(kind) if kind else catalogue(fmt), nl=False)


@main.command(name="fmt")
@click.argument("files", nargs=-1, required=True, metavar="SPEC...")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file would change.")
@_errors
def fmt_(files, check):
    """Lay specs out canonically, in place ('-' formats standard input to standard output).

    \b
    Blocks indent two spaces a level, ' | ' separates chained layers, runs of spaces become
    one (aligned argument columns stay); comments stay. The network never changes."""
    from ..language.fmt import check_same, format_spec
    changed = []
    for name in files:
        if name == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(name, encoding="utf-8-sig") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as e:
                raise CnnCalcError(f"cannot read the spec: {getattr(e, 'strerror', None) or e}",
                                   file=name) from None
        out = format_spec(text)
        check_same(text, out, name if name != "-" else "<stdin>")
        if name == "-":
            if not check:
                click.echo(out, nl=False)
            elif out != text:
                changed.append("<stdin>")
            continue
        if out != text:
            changed.append(name)
            if not check:
                write_file(name, out, "fmt")
    for name in changed:
        click.echo(f"{'would reformat' if check else 'reformatted'} {name}", err=True)
    if check and changed:
        sys.exit(1)
