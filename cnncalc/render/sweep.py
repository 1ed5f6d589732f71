"""A sweep's records as text (the one table core: render/table.py's matrix and formats) and
as a plot of two metrics with the Pareto front highlighted (matplotlib; in the SVG each
point says its knobs when hovered)."""

from __future__ import annotations

from .. import fmt
from .table import FORMATS, Matrix

_SHOWN = {"params": fmt.count, "trainable": fmt.count, "macs": fmt.count, "flops": fmt.count,
          "rf": str, "memory": fmt.nbytes, "training": fmt.nbytes}


def matrix(records: list, knobs: list, limit: int | None = None) -> Matrix:
    keys = [*knobs, "output", *_SHOWN] + (["pareto"] if records and "pareto" in records[0]
                                          else [])
    body = []
    for r in records[:limit]:
        texts = [_cell(k, r.get(k)) for k in keys]
        body.append((0, texts, [r.get(k) for k in keys]))
    m = Matrix(f"{len(records):,} variants", keys, keys, [k == "output" for k in keys], body)
    m.listed = True  # a CSV of these columns only
    if limit is not None and len(records) > limit:
        m.notes = [f"... {len(records) - limit:,} more (--limit N shows more)"]
    return m


def _cell(key, value) -> str:
    if value is None:
        return "--"
    if key == "pareto":
        return "*" if value else ""
    if key in _SHOWN:
        return _SHOWN[key](value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def render(records, knobs, format="table", limit=None) -> str:
    if format == "json":
        import json
        return json.dumps(records, indent=1) + "\n"
    return FORMATS[format](matrix(records, knobs, limit))


_UNITS = {"params": "parameters", "trainable": "trainable parameters", "macs": "MACs",
          "flops": "FLOPs", "rf": "receptive field (pixels)", "memory": "inference memory (bytes)",
          "training": "training memory (bytes)"}


def plot(records, knobs, x="params", y="macs", title="") -> bytes:
    """An SVG: every valid variant a grey point, the front's in red and joined; hovering a
    point shows its knobs and metrics. ``x`` and ``y`` are metrics ('-rf' as 'rf')."""
    x, y = x.lstrip("-"), y.lstrip("-")
    import io
    import re

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    valid = [r for r in records if r.get("valid") and r.get(x) is not None and r.get(y) is not None]
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=100)
    tips = []
    for i, r in enumerate(valid):
        on = r.get("pareto", False)
        dot = ax.scatter([r[x]], [r[y]], s=30 if on else 14, c="#d32f2f" if on else "#90a4ae",
                         zorder=3 if on else 2, edgecolors="none")
        dot.set_gid(f"variant{i}")
        tips.append(", ".join(f"{k} = {_cell(k, r[k])}" for k in knobs)
                    + f": {_cell(x, r[x])} {x}, {_cell(y, r[y])} {y}")
    front = sorted((r for r in valid if r.get("pareto")), key=lambda r: r[x])
    if front:
        ax.plot([r[x] for r in front], [r[y] for r in front], c="#d32f2f", lw=1, zorder=2,
                label="Pareto front")
        ax.legend(loc="best", frameon=False)
    ax.set_title(title or f"{len(valid):,} variants", fontsize=11)
    _axes(ax, x, y)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # the same file each run
    plt.close(fig)
    svg = buffer.getvalue()
    for i, tip in enumerate(tips):  # a <title> in each point's group: the browser shows it
        from html import escape
        svg = re.sub(rf'(<g id="variant{i}">)', rf"\1<title>{escape(tip)}</title>", svg, count=1)
    return svg.encode("utf-8")


def _axes(ax, x, y):
    """Labelled axes; counts and bytes span decades: log axes with 1k, 10M, 2GiB."""
    import matplotlib
    ax.set_xlabel(_UNITS.get(x, x))
    ax.set_ylabel(_UNITS.get(y, y))
    ax.grid(True, which="both", color="#eceff1")
    for axis, key, scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        if key != "rf":
            scale("log")
            axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        shown = fmt.nbytes if key in ("memory", "training") else fmt.si
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _, s=shown: s(int(v)) if v >= 1 else f"{v:g}"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
