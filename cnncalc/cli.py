"""The ``cnncalc`` command. Each command imports what it needs when it runs: a shape
query never imports torch, numpy or pydantic."""

from __future__ import annotations

import functools
import sys

import click

from .errors import CnnCalcError, SpecDesignError


def _choice(*names):
    """Choices read whatever their case: --format JSON is --format json."""
    return click.Choice(names, case_sensitive=False)


def _knobs(ctx, param, values):
    """'--set width=48' (several allowed): kept for load_spec, which every command calls."""
    knobs = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not name.strip().isidentifier() or not value.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE, e.g. --set width=48")
        knobs[name.strip()] = value.strip()
    ctx.meta["knobs"] = knobs


def _spec_args(f):
    f = click.option("--set", "knobs", multiple=True, metavar="NAME=VALUE", expose_value=False,
                     callback=_knobs, help="Set a 'param' the spec declares, e.g. "
                     "--set width=48 (repeat for several).")(f)
    f = click.option("--max-bytes", type=click.IntRange(min=1), default=1 << 20,
                     show_default=True, help="Largest spec file accepted.")(f)
    f = click.option("--max-layers", type=click.IntRange(min=1), default=100_000,
                     show_default=True, help="Most layers a spec may expand to.")(f)
    # at most 200: deeper nesting would run into Python's recursion limit
    f = click.option("--max-depth", type=click.IntRange(min=1, max=200), default=64,
                     show_default=True, help="Deepest nesting of blocks.")(f)
    f = click.option("--input", "input_shape", metavar="SHAPE",
                     help="Replace the spec's input size, e.g. 512x512x3 (or ?x?x3).")(f)
    f = click.option("-e", "--expr", metavar="TEXT", help="An inline spec instead of a file.")(f)
    f = click.argument("spec", required=False, type=click.Path(allow_dash=True, dir_okay=False))(f)
    return f


def _errors(f):
    """Bad input ends in a message and exit code 2, never a traceback."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except CnnCalcError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except RecursionError:
            click.echo("error: the network nests too deeply for this command; lower the "
                       "nesting of its blocks", err=True)
            sys.exit(2)
        except MemoryError:
            click.echo("error: out of memory; try a smaller --input or --batch", err=True)
            sys.exit(2)
    return wrapper


def _read(spec, expr, max_bytes: int) -> tuple[str | bytes, str]:
    """The spec's text and its name; never more than one byte past the size limit, so that a
    huge file is refused without being read."""
    if expr is not None and spec is not None:
        raise click.UsageError("give a SPEC file or -e TEXT, not both")
    if expr is not None:
        return expr, "<expr>"
    if spec is None:
        raise click.UsageError("give a SPEC file, '-' for standard input, or -e TEXT")
    if spec == "-":
        return sys.stdin.buffer.read(max_bytes + 1), "<stdin>"
    try:
        with open(spec, "rb") as fh:
            return fh.read(max_bytes + 1), spec
    except OSError as e:
        inline = "|" in spec or spec.lstrip().startswith("input ")
        raise CnnCalcError(f"cannot read the spec: {e.strerror}", file=spec,
                           hint=f"an inline spec goes after -e: -e '{spec}'" if inline
                           else None) from None


class Spec:
    """A loaded spec with its text and file name, to point at the line of a design error."""

    def __init__(self, network, text, file):
        self.network, self.text, self.file = network, text, file


def load_spec(spec, expr, input_shape=None, max_bytes=1 << 20, max_layers=100_000,
              max_depth=64) -> Spec:
    from .api import with_input
    from .language.expand import Limits, load
    text, file = _read(spec, expr, max_bytes)
    ctx = click.get_current_context(silent=True)
    network = load(text, file, Limits(max_layers=max_layers, max_depth=max_depth,
                                      max_bytes=max_bytes),
                   ctx.meta.get("knobs") if ctx is not None else None)
    if input_shape:
        network = with_input(network, input_shape)
    for w in network.warnings:
        click.echo(f"warning: {w}", err=True)
    return Spec(network, text.decode("utf-8", "replace") if isinstance(text, bytes) else text, file)


def analyse_or_show(spec: Spec, fmt="table", explain=False, open_sizes=False):
    """Analyse; on a design error, show the rows up to the failing layer, then fail."""
    from .analysis.walk import Summary, analyse
    network = spec.network
    try:
        return analyse(network, explain, open_sizes)
    except SpecDesignError as e:
        if fmt == "table" and e.rows:
            from .render.table import matrix, text
            s = Summary(network, e.rows, input=e.rows[0].input)
            click.echo(text(matrix(s, rows=e.rows, failed=True)))
            sys.stdout.flush()
        raise


def write_file(path: str, data, what: str = "-o"):
    """Write text or bytes whole or not at all (cnncalc.files): a missing folder, a
    read-only place or a full disk is a clean error, and what was there stays."""
    from .files import write
    write(path, data, what)


def writable(path: str, what: str = "-o"):
    """Fail early, before a long computation, if ``path`` cannot be written."""
    import os
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CnnCalcError(f"{what} {path}: is a folder; give a file name")
    if not os.path.isdir(folder):
        raise CnnCalcError(f"{what} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CnnCalcError(f"{what} {path}: the folder {folder} is not writable")


class _Command(click.Group):
    """The conventions of a command-line tool: Ctrl-C exits 130 with one line; a standard
    output that cannot be written (a full disk) is exit 2 with the reason; a reader that
    goes away ('| head') ends the command quietly, as click does."""

    def main(self, *args, **kwargs):
        kwargs.setdefault("standalone_mode", True)
        try:
            try:
                rc = super().main(*args, **{**kwargs, "standalone_mode": False})
            except click.exceptions.Exit as e:
                rc = e.exit_code
            except SystemExit as e:  # click ends a closed pipe with 1: quietly, as ours, 0
                rc = 0 if type(sys.stdout).__name__ == "_PacifyFlushWrapper" else e.code
            except click.ClickException as e:
                e.show()
                rc = e.exit_code
            except (KeyboardInterrupt, click.Abort):
                sys.stderr.write("\ninterrupted\n")
                rc = 130
            sys.stdout.flush()
        except OSError as e:
            _stdout_failed(e)
        sys.exit(rc or 0)


def _stdout_failed(e: OSError):
    import errno
    import os
    try:  # nothing more can reach the closed stream: stop Python's own flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError:
        pass
    if e.errno == errno.EPIPE:
        sys.exit(0)
    where = e.filename or "standard output"
    sys.stderr.write(f"error: {where}: cannot write it ({e.strerror or e})\n")
    sys.exit(2)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnncalc")
def main():
    """Shapes, parameter counts and more of convolutional networks, from a text spec.

    \b
    A spec is a list of layers separated by new lines or '|':
      input 443x592x3 | conv 5x5x6 valid stride 1 | maxpool 2
    'cnncalc layers' lists every layer kind; the README has the whole language.
    """


def _names(ctx, param, value):
    return tuple(n.strip() for n in value.split(",") if n.strip()) if value else ()


def _training_args(f):
    from .analysis.options import DTYPES, OPTIMIZERS
    f = click.option("--checkpoint", metavar="NAMES", callback=_names,
                     help="Blocks run again in the backward pass instead of keeping their "
                          "activations: 'all', or block names, name prefixes or macro names "
                          "(layer1,basic).")(f)
    f = click.option("--amp", is_flag=True, help="Mixed precision: the forward pass under "
                     "autocast to --dtype; parameters, gradients and the optimizer's state "
                     "float32.")(f)
    f = click.option("--foreach/--no-foreach", default=True, show_default=True,
                     help="The optimizer steps every parameter at once (PyTorch's default on "
                          "CUDA; on CPU it steps one at a time).")(f)
    f = click.option("--optimizer", type=_choice(*OPTIMIZERS), default="adam",
                     show_default=True, help="For the training step's memory.")(f)
    return click.option("--dtype", type=_choice(*DTYPES), default="float32",
                        show_default=True)(f)


def _scale_args(f):
    f = _training_args(f)
    f = click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Examples per batch: scales compute and memory.")(f)
    return f


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
    from .render.table import Options, parse_columns, render
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
    from .fmt import shape, where
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
    from .render.draw import layout, png, svg
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
    from .backends.runner import format_output, run_on
    if maps:
        from .files import folder
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
    row = next((r for r in s.rows if r.name == layer_name), None)
    if row is None:
        raise CnnCalcError(f"--layer {layer_name}: no such layer")
    if which == "all":
        filters = list(range(row.output[-1]))
    elif which.isdigit() and int(which) < row.output[-1]:
        filters = [int(which)]
    else:
        raise CnnCalcError(f"--filter {which}: expected all or 0 to {row.output[-1] - 1}")
    import torch
    from .backends.torch import Net
    from .backends.visualize import maximise, tiles
    from .backends.weights import apply, load_file
    from .render.pictures import map_grid, write_png
    torch.manual_seed(seed)
    _random_weights_notice(weights, seed)
    net = Net(s, inplace=False)
    if weights:
        apply(net, load_file(weights))
    images = []
    with _progress(len(filters) * steps, quiet, f"visualising {layer_name}") as bar:
        for k in filters:
            img, before, after = maximise(net, layer_name, k, s.network.input.shape, steps,
                                          seed=seed, progress=bar.update)
            images.append(img)
            if after == before == 0:
                click.echo(f"filter {k}: silent for every start tried (a dead ReLU); nothing "
                           "to maximise", err=True)
            elif len(filters) == 1 or not quiet:
                click.echo(f"filter {k}: mean activation {before:.4g} -> {after:.4g}", err=True)
    write_png(map_grid(images[0]) if len(images) == 1 else tiles(images), out)
    click.echo(f"wrote {out}")


class _NoBar:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total, quiet, label):
    """A progress bar on a terminal; silent when piped or with --quiet."""
    if quiet or not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr)


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
    from .analysis.sizes import describe_set, sweep
    from .limits import MAX_SIZE, MAX_SIZES
    lo, _, hi = span.partition(":")
    if not (lo.isdigit() and hi.isdigit() and len(lo) < 20 and len(hi) < 20
            and 1 <= int(lo) <= int(hi) <= MAX_SIZE):
        raise CnnCalcError(f"--range {span}: expected LO:HI with 1 <= LO <= HI <= 10^18, "
                           "e.g. 1:4096")
    if int(hi) - int(lo) >= MAX_SIZES:  # the answer itself is arrays of this length
        raise CnnCalcError(f"--range {span}: at most {MAX_SIZES:,} sizes at once")
    loaded = load_spec(spec, expr, input_shape, max_bytes, max_layers, max_depth)
    network = loaded.network
    if open_all:
        from .api import with_input
        network = with_input(network, "x".join(["?"] * network.input.rank
                                               + [str(network.input.shape[-1])]))
    for axis in sweep(network, int(lo), int(hi)):
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
    from .analysis.memory import fit as fit_batch
    from .fmt import nbytes, parse_bytes
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
    from .analysis.sweep import parse_vary, sweep as run_sweep
    from .render.sweep import plot as draw_plot, render
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
        records = run_sweep(text, grid, where, pareto, sort, batch, dtype, optimizer, file,
                            progress=bar.update, scheduler=scheduler, foreach=foreach,
                            amp=amp, checkpoint=checkpoint)
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
    from .analysis.solve import windows

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
    from .render.result import schema as _schema
    click.echo(json.dumps(_schema(), indent=2))


@main.command()
@click.argument("kind", required=False)
@click.option("--format", "fmt", type=_choice("table", "markdown"), default="table",
              show_default=True)
@_errors
def layers(kind, fmt):
    """Every layer kind: its options and an example (or one KIND in full)."""
    from .layers.catalogue import catalogue, one
    click.echo(one(kind) if kind else catalogue(fmt), nl=False)


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
    if backend == "keras":
        from .interop.to_keras import keras_check
        result = keras_check(summary_)
        click.echo(str(result), nl=False)
        sys.exit(0 if result.ok else 1)
    if against:
        from .api import check as api_check
        result = api_check(summary_, against=against)
        click.echo(str(result), nl=False)
        sys.exit(0 if result.ok else 1)
    from .backends.check import check as run_check, render_check
    with _progress(len(summary_.rows), quiet, "forward pass") as bar:
        result = run_check(summary_, device=device, batch=batch, max_memory=max_memory,
                           progress=bar.update, weights=weights)
    click.echo(render_check(result), nl=False)
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
    from .interop.to_pytorch import to_pytorch_code
    if target == "onnx" and not out:
        raise click.UsageError("--to onnx needs -o FILE.onnx")
    if out:
        writable(out)
    if target == "keras":
        from .interop.to_keras import to_keras_code
        code = to_keras_code(summary_, loaded.file)
        if out:
            write_file(out, code)
            click.echo(f"wrote {out}: build() returns the Keras model, "
                       f"{summary_.totals.params:,} parameters")
        else:
            click.echo(code, nl=False)
        return
    if target == "onnx":
        from .interop.to_onnx import to_onnx
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
        from .interop.to_pytorch import class_name
        click.echo(f"wrote {out}: class {class_name(code)}, {t.trainable:,} trainable "
                   "parameters; run it with python to see its output shape")
    else:
        click.echo(code, nl=False)


def _input_nchw(summary):
    from .layers.base import AXIS_NAMES, picture
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
        from .web.app import app
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


@main.command(name="fmt")
@click.argument("files", nargs=-1, required=True, metavar="SPEC...")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file would change.")
@_errors
def fmt_(files, check):
    """Lay specs out canonically, in place ('-' formats standard input to standard output).

    \b
    Blocks indent two spaces a level, ' | ' separates chained layers, runs of spaces become
    one (aligned argument columns stay); comments stay. The network never changes."""
    from .language.fmt import check_same, format_spec
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
    from .interop.from_torch import from_torch, load_factory
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
    from .interop.from_darknet import from_darknet
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
    from .interop.from_keras import from_keras
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
    from .interop.from_onnx import from_onnx
    if weights_out:
        writable(weights_out, "--weights-out")
    _write_spec(from_onnx(path, input_shape, network, partial, weights_out), out)
    if weights_out:
        click.echo(f"wrote {weights_out}", err=True)
