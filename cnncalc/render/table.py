"""One table core: every text format (table, Markdown, HTML, CSV) and check's table render
from one cell matrix, so they show the same rows, columns, totals, footer and notes."""

from __future__ import annotations

from math import prod

from .. import fmt
from ..errors import CnnCalcError


class Options:
    """What the user asked to see: columns; the batch, dtype and optimizer that scale compute
    and memory; and what 'params' counts (Keras' count_params() or PyTorch's parameters())."""

    def __init__(self, columns=(), batch=1, dtype="float32", optimizer="adam", counts="keras",
                 foreach=True, amp=False, checkpoint=()):
        if counts not in ("keras", "torch"):  # the command's --counts is a choice already
            from ..errors import CnnCalcError
            raise CnnCalcError(f"counts {counts!r}: expected 'keras' or 'torch'")
        self.columns, self.batch, self.dtype = columns, batch, dtype
        self.optimizer, self.counts, self.foreach, self.amp = optimizer, counts, foreach, amp
        self.checkpoint = tuple(checkpoint)


class Matrix:
    """Rows of cells, each cell as text and as its exact value (for CSV): ``body`` holds
    (depth, texts, values); ``left`` the left-aligned columns."""

    def __init__(self, title, keys, headers, left, body, total=None, total_values=None,
                 footer=None, notes=None):
        self.title, self.keys, self.headers, self.left, self.body = title, keys, headers, left, body
        self.total, self.total_values = total, total_values
        self.footer, self.notes = footer or [], notes or []
        self.listed = False  # columns the user listed: CSV adds no depth or note to them
        self.lines = []  # each body row's line in the spec (the playground links them)


def _itemsize(o) -> int:
    from ..analysis.memory import DTYPES
    return DTYPES[o.dtype]


def _params(r, o) -> int:
    """Keras counts batchnorm's moving statistics as non-trainable parameters; PyTorch keeps
    them as buffers, outside ``parameters()``."""
    return r.trainable if o.counts == "torch" else r.params


def _rf(r, which):
    f = r.field
    if f is None:
        return "all" if which == 0 else "--"
    return fmt.axes([fmt.ratio(a[which]) for a in f])


class Column:
    """A column: its header, alignment, value(row, options), text(value), and total(summary,
    options) or None."""
    __slots__ = ("header", "left", "value", "text", "total")

    def __init__(self, header, left, value, text=fmt.count, total=None):
        self.header, self.left, self.value, self.text, self.total = header, left, value, text, total


COLUMNS = {
    "#": Column("#", False, lambda r, o: r.index, str),
    "name": Column("name", True, lambda r, o: r.name, str),
    "layer": Column("layer", True, lambda r, o: r.layer.describe(), str),
    "block": Column("block", True, lambda r, o: r.layer.origin or "", str),
    "output": Column("output", True, lambda r, o: "??" if r.error else fmt.shape(r.output), str),
    "weights": Column("weights", False, lambda r, o: r.weights, total=lambda s, o: s.total("weights")),
    "biases": Column("biases", False, lambda r, o: r.biases, total=lambda s, o: s.total("biases")),
    "params": Column("params", False, lambda r, o: _params(r, o),
                     total=lambda s, o: sum(_params(r, o) for r in s.rows)),
    "trainable": Column("trainable", False, lambda r, o: r.trainable,
                        total=lambda s, o: s.total("trainable")),
    "non_trainable": Column("non-trainable", False, lambda r, o: r.non_trainable,
                            total=lambda s, o: s.total("non_trainable")),
    "units": Column("units", False, lambda r, o: None if r.error else r.units,
                    lambda v: "--" if v is None else fmt.count(v),
                    total=lambda s, o: s.total("units")),
    "macs": Column("MACs", False, lambda r, o: r.macs * o.batch, fmt.si,
                   lambda s, o: s.total("macs") * o.batch),
    "flops": Column("FLOPs", False, lambda r, o: r.flops * o.batch, fmt.si,
                    lambda s, o: s.total("flops") * o.batch),
    "rf": Column("receptive field", True, lambda r, o: _rf(r, 0), str),
    "jump": Column("jump", True, lambda r, o: _rf(r, 1), str),
    "memory": Column("activations", False, lambda r, o: r.units * o.batch * _itemsize(o),
                     fmt.nbytes, lambda s, o: s.total("units") * o.batch * _itemsize(o)),
}
DEFAULT = ("#", "name", "layer", "output", "weights", "biases", "params", "units")
ALL = ("#", "name", "layer", "block", "output", "weights", "biases", "params", "trainable",
       "non_trainable", "units", "macs", "flops", "rf", "jump", "memory")


def parse_columns(spec) -> tuple:
    """'--columns' text → column keys: 'default', 'all', or a comma list."""
    if not spec or spec == "default":
        return ()  # the renderer's default for the rows at hand
    if not isinstance(spec, str):
        names = tuple(spec)
    elif spec == "all":
        return ALL
    else:
        names = tuple(c.strip() for c in spec.split(",") if c.strip())
    bad = [c for c in names if c not in COLUMNS]
    if bad:
        raise CnnCalcError(f"--columns: unknown column {bad[0]!r}; expected default, all, or "
                           f"a comma list of {', '.join(COLUMNS)}")
    return names


def _default(rows) -> tuple:
    """The default columns, with 'block' when layers were expanded from repeat or def."""
    if any(r.layer.origin for r in rows):
        return DEFAULT[:3] + ("block",) + DEFAULT[3:]
    return DEFAULT


def matrix(summary, options: Options | None = None, rows=None, failed=False) -> Matrix:
    """The summary as a matrix of cells; with ``failed``, the rows up to a design error."""
    o = options or Options()
    rows = summary.rows if rows is None else rows
    keys = list(o.columns or _default(rows))
    cols = [COLUMNS[k] for k in keys]
    inp = summary.input
    body = _body(inp, rows, keys, cols, o)
    m = Matrix(f"{summary.network.name}: input {fmt.shape(inp)}", keys,
               [c.header for c in cols], [c.left for c in cols], body)
    m.listed = bool(o.columns) and o.columns != ALL
    m.lines = [summary.network.input.line] + [r.layer.line for r in rows]
    if not failed:
        m.total, m.total_values = _total(summary, keys, cols, o)
        m.footer = footer(summary, o).split("\n")
    m.notes = [f"{r.name}: {r.note}" for r in rows if r.note]
    m.notes += list(summary.network.warnings)
    return m


def _body(inp, rows, keys, cols, o) -> list:
    """(depth, texts, values) of the input's row and each layer's (a failed one marked)."""
    units = prod(inp)
    first = {"#": 0, "name": "input", "layer": "input", "block": "", "output": fmt.shape(inp),
             "units": units, "rf": "1", "jump": "1", "memory": units * o.batch * _itemsize(o)}
    body = [(0, *_cells([first.get(k, 0) for k in keys], cols))]
    for r in rows:
        values = [c.value(r, o) for c in cols]
        texts = [c.text(v) for c, v in zip(cols, values)]
        if r.error and "name" in keys:
            texts[keys.index("name")] = "✗ " + texts[keys.index("name")]
        body.append((r.depth, texts, values))
    return body


def _total(summary, keys, cols, o) -> tuple:
    """The total row: texts and values."""
    values = [c.total(summary, o) if c.total else "" for c in cols]
    texts = [c.text(v) if c.total else "" for c, v in zip(cols, values)]
    for key, label in (("name", "total"), ("output", fmt.shape(summary.output))):
        if key in keys:
            texts[keys.index(key)] = values[keys.index(key)] = label
    return texts, values


def _cells(values, cols):
    return [c.text(v) if v != "" else "" for c, v in zip(cols, values)], values


def footer(summary, o: Options) -> str:
    from ..analysis.memory import estimate
    t = summary.totals
    if o.counts == "torch":
        counts = (f"params: {t.trainable:,} (PyTorch's parameters(); buffers "
                  f"{t.non_trainable:,}); output {fmt.shape(summary.output)}")
    else:
        counts = (f"params: {t.params:,} (trainable {t.trainable:,}, non-trainable "
                  f"{t.non_trainable:,}); output {fmt.shape(summary.output)}")
    outputs = summary.outputs
    if len(outputs) > 1:
        counts += "; outputs " + ", ".join(f"{n} {fmt.shape(s)}" for n, s in outputs)
    if any(fmt.symbolic(v) for v in summary.input):
        return counts + "\nopen input sizes: sizes are formulas; 'cnncalc sizes' lists the valid ones"
    from ..analysis.training import training_macs
    batch = f" at batch {o.batch}" if o.batch > 1 else ""
    mem = estimate(summary, o.batch, o.dtype, o.optimizer, o.foreach, o.amp, o.checkpoint)
    forward, backward = (n * o.batch for n in training_macs(summary))
    return (f"{counts}\ncompute{batch}: {fmt.per(t.macs * o.batch)}MACs, "
            f"{fmt.per(t.flops * o.batch)}FLOPs; memory ({o.dtype}{' autocast' if o.amp else ''}"
            f"{batch}): params "
            f"{fmt.nbytes(mem.param_bytes)}, inference peak {fmt.nbytes(mem.peak_activation_bytes)}, "
            f"training with {o.optimizer} {fmt.nbytes(mem.training_bytes)}\n"
            f"training step{batch}: {fmt.per(forward + backward)}MACs (forward "
            f"{fmt.per(forward)}MACs, backward {fmt.per(backward)}MACs)")


# --- the formats ------------------------------------------------------------------------------

def text(m: Matrix) -> str:
    rows = [[("  " * d + t) if k == "name" else t for k, t in zip(m.keys, texts)]
            for d, texts, _ in m.body]
    total = [m.total] if m.total else []
    widths = [max([len(h), *(len(r[i]) for r in rows + total)]) for i, h in enumerate(m.headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if left else c.rjust(w)
                         for c, w, left in zip(cells, widths, m.left)).rstrip()

    rule = "-" * len(line(m.headers))
    out = [m.title, line(m.headers), rule] + [line(r) for r in rows]
    if m.total:
        out += [rule, line(m.total)]
    elif m.footer:
        out.append(rule)
    out += m.footer
    out += [f"note: {n}" for n in m.notes]
    return "\n".join(out) + "\n"


def markdown(m: Matrix) -> str:
    def row(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    lines = [f"**{m.title}**", "", row(m.headers),
             "|" + "|".join("---" if left else "---:" for left in m.left) + "|"]
    for d, texts, _ in m.body:
        cells = [("&nbsp;" * 2 * d + t) if k == "name" else f"`{t}`" if k == "layer" else t
                 for k, t in zip(m.keys, texts)]
        lines.append(row(cells))
    if m.total:
        lines.append(row([f"**{t}**" if t else "" for t in m.total]))
    lines += [""] + [f"{line}  " for line in m.footer] if m.footer else []
    lines += [f"- note: {n}" for n in m.notes]
    return "\n".join(lines) + "\n"


def html(m: Matrix) -> str:
    from html import escape

    def cells(tag, texts, depth=0):
        return "".join(
            f'<{tag} style="text-align:{"left" if left else "right"}">'
            f'{"&nbsp;" * 2 * depth if k == "name" else ""}{escape(t)}</{tag}>'
            for k, t, left in zip(m.keys, texts, m.left))
    body = "".join(f'<tr data-line="{line or ""}">{cells("td", texts, d)}</tr>'
                   for (d, texts, _), line in zip(m.body, m.lines or [None] * len(m.body)))
    foot = f"<tfoot><tr>{cells('th', m.total)}</tr></tfoot>" if m.total else ""
    notes = "".join(f"<br>note: {escape(n)}" for n in m.notes)
    return (f"<p><b>{escape(m.title)}</b></p><table><thead><tr>{cells('th', m.headers)}</tr>"
            f"</thead><tbody>{body}</tbody>{foot}</table>"
            f"<p>{'<br>'.join(escape(f) for f in m.footer)}{notes}</p>")


def csv(m: Matrix) -> str:
    """Exact values, one row per layer and the total; the footer's figures are in JSON."""
    import csv as _csv  # only the csv format needs them
    import io
    buf = io.StringIO()
    w = _csv.writer(buf, lineterminator="\n")
    extra = not m.listed  # the tree's depth and each row's note, unless columns were listed
    w.writerow(m.keys + ["depth", "note"] * extra)
    notes = {n.split(": ", 1)[0]: n.split(": ", 1)[1] for n in m.notes if ": " in n}
    for d, texts, values in m.body:
        name = values[m.keys.index("name")] if "name" in m.keys else None
        w.writerow([v if isinstance(v, int) else t for t, v in zip(texts, values)]
                   + [d, notes.get(name, "")] * extra)
    if m.total:
        w.writerow([v if isinstance(v, int) else t for t, v in zip(m.total, m.total_values)]
                   + ["", ""] * extra)
    return buf.getvalue()


def json_text(summary, o: Options) -> str:
    from . import result
    return result.json_text(summary, batch=o.batch, dtype=o.dtype, optimizer=o.optimizer,
                            foreach=o.foreach, amp=o.amp, checkpoint=o.checkpoint) + "\n"


FORMATS = {"table": text, "markdown": markdown, "csv": csv, "html": html}


def render(summary, format: str = "table", options: Options | None = None) -> str:
    o = options or Options()
    if format == "json":
        return json_text(summary, o)
    if format not in FORMATS:
        raise CnnCalcError(f"format {format!r}: expected one of json, {', '.join(FORMATS)}")
    return FORMATS[format](matrix(summary, o))
