"""Renderers at the edge: table, JSON, Markdown and CSV from the calculator's rows."""

from __future__ import annotations

import csv
import io

from .calc import fmt_shape

COLUMNS = ("#", "name", "layer", "output", "weights", "biases", "params", "units")
_NUMERIC = {"#", "weights", "biases", "params", "units"}


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
    return f"{v:,}" if v else "--"


def _cells(row) -> list[str]:
    name = "  " * row.depth + row.name
    mark = "✗ " if row.error else ""
    return [str(row.index), mark + name, describe(row.layer),
            "??" if row.error else fmt_shape(row.output),
            _num(row.weights), _num(row.biases), _num(row.params),
            "--" if row.error else _num(row.units)]


def table(summary, rows=None, error=None) -> str:
    rows = summary.rows if rows is None else rows
    net = summary.network
    inp = net.input.shape
    body = [["0", "input", "input", fmt_shape(inp), "--", "--", "--", _num(_prod(inp))]]
    body += [_cells(r) for r in rows]
    if error is None:
        body.append(["", "total", "", fmt_shape(summary.output or rows[-1].output),
                     f"{sum(r.weights for r in rows):,}", f"{sum(r.biases for r in rows):,}",
                     f"{sum(r.params for r in rows):,}", f"{sum(r.units for r in rows):,}"])
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]

    def line(cells):
        return "  ".join(c.rjust(w) if COLUMNS[i] in _NUMERIC else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(COLUMNS))
    out = [f"{net.name}: input {fmt_shape(inp)}", line(COLUMNS), rule]
    out += [line(r) for r in body[:-1]] if error is None else [line(r) for r in body]
    if error is None:
        out += [rule, line(body[-1])]
        trainable = sum(r.trainable for r in rows)
        frozen = sum(r.non_trainable for r in rows)
        out.append(f"params: {trainable + frozen:,} (trainable {trainable:,}, non-trainable "
                   f"{frozen:,}); output {fmt_shape(summary.output)}")
    return "\n".join(out) + "\n"


def _prod(shape):
    n = 1
    for v in shape:
        n *= v
    return n


def json_text(summary) -> str:
    from .result import to_result
    return to_result(summary).model_dump_json(indent=2) + "\n"


def markdown(summary) -> str:
    head = ["#", "name", "layer", "output", "weights", "biases", "params", "units"]
    lines = [f"**{summary.network.name}**: input `{fmt_shape(summary.network.input.shape)}`, "
             f"output `{fmt_shape(summary.output)}`", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if h in _NUMERIC else "---" for h in head) + "|"]
    for r in summary.rows:
        c = _cells(r)
        c[1] = "&nbsp;" * 2 * r.depth + r.name
        c[2] = f"`{c[2]}`"
        lines.append("| " + " | ".join(c) + " |")
    tot = [f"{summary.total(k):,}" for k in ("weights", "biases", "params", "units")]
    lines.append("| | **total** | | `" + fmt_shape(summary.output) + "` | " + " | ".join(tot) + " |")
    return "\n".join(lines) + "\n"


def csv_text(summary) -> str:
    buf = io.StringIO()
    fields = ["index", "path", "depth", "name", "kind", "layer", "output", "weights", "biases",
              "params", "trainable", "non_trainable", "units"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in summary.rows:
        w.writerow([r.index, r.path, r.depth, r.name, r.kind, describe(r.layer),
                    fmt_shape(r.output), r.weights, r.biases, r.params, r.trainable,
                    r.non_trainable, r.units])
    return buf.getvalue()


FORMATS = {"table": table, "json": json_text, "markdown": markdown, "csv": csv_text}
