"""What every command shares: reading a spec (a file, standard input or -e), its options,
errors as a message and exit code 2, writing files whole, and the command group."""

from __future__ import annotations

import functools
import sys

import click

from ..errors import CnnCalcError, SpecDesignError


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
    from ..specs import read_bytes
    try:
        return read_bytes(spec, max_bytes), spec
    except CnnCalcError as e:
        if e.hint:  # spec text given as the file
            e.hint = f"an inline spec goes after -e: -e '{spec}'"
        raise


class Spec:
    """A loaded spec with its text and file name, to point at the line of a design error."""

    def __init__(self, network, text, file):
        self.network, self.text, self.file = network, text, file


def load_spec(spec, expr, input_shape=None, max_bytes=1 << 20, max_layers=100_000,
              max_depth=64) -> Spec:
    from ..language.expand import Limits
    from ..specs import parse, with_input
    text, file = _read(spec, expr, max_bytes)
    ctx = click.get_current_context(silent=True)
    network = parse(text, file, Limits(max_layers=max_layers, max_depth=max_depth,
                                       max_bytes=max_bytes),
                    ctx.meta.get("knobs") if ctx is not None else None)
    if input_shape:
        network = with_input(network, input_shape)
    for w in network.warnings:
        click.echo(f"warning: {w}", err=True)
    return Spec(network, text.decode("utf-8", "replace") if isinstance(text, bytes) else text, file)


def analyse_or_show(spec: Spec, fmt="table", explain=False, open_sizes=False):
    """Analyse; on a design error, show the rows up to the failing layer, then fail."""
    from ..analysis.walk import analyse
    from ..analysis.summary import Summary
    network = spec.network
    try:
        return analyse(network, explain, open_sizes)
    except SpecDesignError as e:
        if fmt == "table" and e.rows:
            from ..render.table import matrix, text
            s = Summary(network, e.rows, input=e.rows[0].input)
            click.echo(text(matrix(s, rows=e.rows, failed=True)))
            sys.stdout.flush()
        raise


def write_file(path: str, data, what: str = "-o"):
    """Write text or bytes whole or not at all (cnncalc.files): a missing folder, a
    read-only place or a full disk is a clean error, and what was there stays."""
    from ..files import write
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
    from ..analysis.options import DTYPES, OPTIMIZERS
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
