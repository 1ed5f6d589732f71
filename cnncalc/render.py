"""Renderers at the edge: table, JSON, Markdown and CSV from the calculator's rows."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .calc import fmt_shape


@dataclass
class Options:
    """What the user asked to see: columns, and the batch, dtype and optimizer that
    scale compute and memory."""
    columns: tuple = ()
    batch: int = 1
    dtype: str = "float32"
    optimizer: str = "adam"


def describe(layer) -> str:
    """The layer as a person would write it: ``conv 3x3x64 same relu``."""
    k = layer.kind
    words = [k]
    if k in ("conv", "deconv"):
        words.append(fmt_shape((*layer.kernel, layer.filters)))
    elif k in ("maxpool", "avgpool"):
        words.append(_axes(layer.pool))
    elif k == "dense":
        words.append(str(layer.units))
    elif k == "dropout":
        words.append(f"{layer.rate:g}")
    elif k == "zeropad":
        words.append(_axes(layer.padding))
    elif k == "upsample":
        words.append(_axes(layer.factor))
    elif k == "activation":
        words = [layer.activation]
    elif k in ("add_ref", "concat_ref"):
        words = [k[:-4], layer.ref] + (["crop"] if getattr(layer, "crop", False) else [])
    elif k in ("add", "concat"):
        words.append(f"{{ {len(layer.branches)} branches }}")
    pad = getattr(layer, "padding", None)
    if k != "zeropad" and pad is not None:
        if isinstance(pad, str):
            words.append(pad) if pad != "valid" else None
        else:
            words.append(f"pad {_axes(pad)}")
    if k not in ("maxpool", "avgpool") or layer.stride != layer.pool:
        stride = getattr(layer, "stride", None)
        if stride and any(s != 1 for s in stride):
            words.append(f"stride {_axes(stride)}")
    dil = getattr(layer, "dilation", None)
    if dil and any(d != 1 for d in dil):
        words.append(f"dilation {_axes(dil)}")
    if getattr(layer, "groups", 1) != 1:
        words.append(f"groups {layer.groups}")
    if getattr(layer, "ceil", False):
        words.append("ceil")
    if getattr(layer, "bias", True) is False:
        words.append("nobias")
    if k != "activation" and getattr(layer, "activation", None):
        words.append(layer.activation)
    return " ".join(words)


def _axes(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else fmt_shape(values)


def _num(v) -> str:
    if getattr(v, "symbolic", False):
        return str(v)
    return f"{v:,}" if v else "--"


def _scaled(v, steps, digits: int, small: str) -> str:
    """A count in the largest unit it reaches; formulas as they are, zero as '--'."""
    if getattr(v, "symbolic", False):
        return str(v)
    for unit, size in steps:
        if v >= size:
            return f"{v / size:.{digits}f} {unit}"
    return small.format(v) if v else "--"


def si(v) -> str:
    """15470264320 → '15.47 G'."""
    return _scaled(v, (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)), 2, "{}")


def nbytes(v) -> str:
    """553430176 → '527.8 MiB'."""
    return _scaled(v, (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)), 1, "{} B")


def exact(v):
    """A Fraction as JSON: an int when whole (formulas and unknowns as they are)."""
    if v is None or getattr(v, "symbolic", False):
        return v
    return int(v) if v == int(v) else float(v)


def rf_text(rf, which=0) -> str:
    if rf is None:
        return "all"
    return _axes([str(exact(a[which])) for a in rf])


# name: (header, cell, total or None); cells get (row, options)
COLUMNS = {
    "#": ("#", lambda r, o: str(r.index), None),
    "name": ("name", lambda r, o: ("✗ " if r.error else "") + "  " * r.depth + r.name, None),
    "layer": ("layer", lambda r, o: describe(r.layer), None),
    "block": ("from", lambda r, o: r.layer.block or "", None),
    "output": ("output", lambda r, o: "??" if r.error else fmt_shape(r.output), None),
    "weights": ("weights", lambda r, o: _num(r.weights), lambda s, o: f"{s.total('weights'):,}"),
    "biases": ("biases", lambda r, o: _num(r.biases), lambda s, o: f"{s.total('biases'):,}"),
    "params": ("params", lambda r, o: _num(r.params), lambda s, o: f"{s.total('params'):,}"),
    "units": ("units", lambda r, o: "--" if r.error else _num(r.units),
              lambda s, o: f"{s.total('units'):,}"),
    "macs": ("MACs", lambda r, o: si(r.macs * o.batch), lambda s, o: si(s.total("macs") * o.batch)),
    "flops": ("FLOPs", lambda r, o: si(r.flops * o.batch),
              lambda s, o: si(s.total("flops") * o.batch)),
    "rf": ("receptive field", lambda r, o: rf_text(r.rf), None),
    "jump": ("jump", lambda r, o: rf_text(r.rf, 1) if r.rf else "--", None),
    "memory": ("activations", lambda r, o: nbytes(r.units * o.batch * _itemsize(o)),
               lambda s, o: nbytes(s.total("units") * o.batch * _itemsize(o))),
}
DEFAULT = ("#", "name", "layer", "output", "weights", "biases", "params", "units")
ALL = ("#", "name", "layer", "output", "params", "units", "macs", "flops", "rf", "jump", "memory")
_LEFT = {"name", "layer", "block", "output", "rf", "jump"}


def _default(rows) -> tuple:
    """The default columns, with 'from' when layers were expanded from repeat or def."""
    if any(r.layer.block for r in rows):
        return DEFAULT[:3] + ("block",) + DEFAULT[3:]
    return DEFAULT


def _itemsize(o) -> int:
    from .memory import DTYPES
    return DTYPES[o.dtype]


def columns(spec: str | None) -> tuple:
    """'--columns' text → column names: 'default', 'all', or a comma list."""
    from .errors import CnnCalcError
    if not spec or spec == "default":
        return ()  # the renderer's default for the rows at hand
    if spec == "all":
        return ALL
    names = tuple(c.strip() for c in spec.split(",") if c.strip())
    bad = [c for c in names if c not in COLUMNS]
    if bad:
        raise CnnCalcError(f"--columns: unknown column {bad[0]!r}; expected default, all, or "
                           f"a comma list of {', '.join(COLUMNS)}")
    return names


def table(summary, rows=None, error=None, options: Options | None = None) -> str:
    o = options or Options()
    rows = summary.rows if rows is None else rows
    cols = o.columns or _default(rows)
    net = summary.network
    inp = summary.input
    units = prod(inp)
    first = {"#": "0", "name": "input", "layer": "input", "block": "", "output": fmt_shape(inp),
             "units": _num(units), "rf": "1", "memory": nbytes(units * o.batch * _itemsize(o))}
    body = [[first.get(c, "--") for c in cols]]
    body += [[COLUMNS[c][1](r, o) for c in cols] for r in rows]
    if error is None:
        total = [COLUMNS[c][2](summary, o) if COLUMNS[c][2] else "" for c in cols]
        if "name" in cols:
            total[cols.index("name")] = "total"
        if "output" in cols:
            total[cols.index("output")] = fmt_shape(summary.output)
        body.append(total)
    heads = [COLUMNS[c][0] for c in cols]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(heads)]

    def line(cells):
        return "  ".join(c.ljust(w) if cols[i] in _LEFT else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(heads))
    out = [f"{net.name}: input {fmt_shape(inp)}", line(heads), rule]
    out += [line(r) for r in (body[:-1] if error is None else body)]
    if error is None:
        out += [rule, line(body[-1])]
        out.append(footer(summary, o))
    notes = [f"note: {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(out + notes) + "\n"


def _per(v) -> str:
    """'15.47 G' to put before a unit such as MACs; '576 ' and '0 ' below a thousand."""
    text = si(v) if v else "0"
    return text if text[-1].isalpha() else text + " "


def footer(summary, o: Options) -> str:
    from .memory import estimate
    batch = f" at batch {o.batch}" if o.batch > 1 else ""
    if any(getattr(v, "symbolic", False) for v in summary.input):
        return (f"params: {summary.total('params'):,} (trainable {summary.total('trainable'):,}, "
                f"non-trainable {summary.total('non_trainable'):,}); output "
                f"{fmt_shape(summary.output)}\nopen input sizes: sizes are formulas; "
                "'cnncalc sizes' lists the valid ones")
    mem = estimate(summary, o.batch, o.dtype, o.optimizer)
    return (f"params: {summary.total('params'):,} (trainable {summary.total('trainable'):,}, "
            f"non-trainable {summary.total('non_trainable'):,}); output "
            f"{fmt_shape(summary.output)}\n"
            f"compute{batch}: {_per(summary.total('macs') * o.batch)}MACs, "
            f"{_per(summary.total('flops') * o.batch)}FLOPs; memory ({o.dtype}{batch}): params "
            f"{nbytes(mem.param_bytes)}, inference peak {nbytes(mem.peak_activation_bytes)}, "
            f"training with {o.optimizer} {nbytes(mem.training_bytes)}")


def json_text(summary, options: Options | None = None) -> str:
    from .result import to_result
    o = options or Options()
    return to_result(summary, o.batch, o.dtype, o.optimizer).model_dump_json(indent=2) + "\n"


def markdown(summary, options: Options | None = None) -> str:
    o = options or Options()
    cols = o.columns or _default(summary.rows)
    head = [COLUMNS[c][0] for c in cols]
    lines = [f"**{summary.network.name}**: input `{fmt_shape(summary.network.input.shape)}`, "
             f"output `{fmt_shape(summary.output)}`", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---" if c in _LEFT else "---:" for c in cols) + "|"]
    for r in summary.rows:
        cells = [COLUMNS[c][1](r, o) for c in cols]
        if "name" in cols:
            cells[cols.index("name")] = "&nbsp;" * 2 * r.depth + r.name
        if "layer" in cols:
            cells[cols.index("layer")] = f"`{cells[cols.index('layer')]}`"
        lines.append("| " + " | ".join(cells) + " |")
    total = [COLUMNS[c][2](summary, o) if COLUMNS[c][2] else "" for c in cols]
    if "name" in cols:
        total[cols.index("name")] = "**total**"
    lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines) + "\n"


def csv_text(summary, options: Options | None = None) -> str:
    import csv  # only the csv format needs them
    import io

    o = options or Options()
    buf = io.StringIO()
    fields = ["index", "path", "depth", "name", "kind", "layer", "output", "weights", "biases",
              "params", "trainable", "non_trainable", "units", "macs", "flops", "receptive_field",
              "jump"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in summary.rows:
        w.writerow([r.index, r.path, r.depth, r.name, r.kind, describe(r.layer),
                    fmt_shape(r.output), r.weights, r.biases, r.params, r.trainable,
                    r.non_trainable, r.units, r.macs * o.batch, r.flops * o.batch,
                    rf_text(r.rf), rf_text(r.rf, 1) if r.rf else ""])
    return buf.getvalue()


def html(summary, options: Options | None = None) -> str:
    """The table as HTML, for Jupyter (``Summary._repr_html_``)."""
    from html import escape
    o = options or Options()
    cols = o.columns or _default(summary.rows)
    head = "".join(f"<th>{escape(COLUMNS[c][0])}</th>" for c in cols)
    body = []
    for r in summary.rows:
        cells = [COLUMNS[c][1](r, o) for c in cols]
        body.append("<tr>" + "".join(
            f'<td style="text-align:{"left" if c in _LEFT else "right"}">'
            f'{"&nbsp;" * 2 * r.depth if c == "name" else ""}{escape(v.strip())}</td>'
            for c, v in zip(cols, cells)) + "</tr>")
    total = [COLUMNS[c][2](summary, o) if COLUMNS[c][2] else "" for c in cols]
    foot = "".join(f'<td style="text-align:right"><b>{escape(v)}</b></td>' for v in total)
    return (f"<p><b>{escape(summary.network.name)}</b>: input "
            f"{fmt_shape(summary.network.input.shape)}, output {fmt_shape(summary.output)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            f"<tfoot><tr>{foot}</tr></tfoot></table><p>{escape(footer(summary, o))}</p>")


FORMATS = {"table": table, "json": json_text, "markdown": markdown, "csv": csv_text}
