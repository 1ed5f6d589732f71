"""Network diagrams in the classic convnet style: one box per feature map, its height
and depth scaled by the spatial sizes and its length by the channels (log scales),
dense layers as bars, branches stacked and joined where they add or concatenate.

The layout is made once, as primitives; ``svg`` writes them by hand (a self-contained
file any browser opens) and ``png`` draws them with matplotlib."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from ..fmt import shape as fmt_shape

GAP = 26  # between boxes
FONT = 9


@dataclass
class Drawing:
    shapes: list = field(default_factory=list)  # ("poly", points, fill) | ("line", pts, arrow, dash)
    texts: list = field(default_factory=list)   # (x, y, text, size, anchor)
    width: float = 0
    height: float = 0

    def _repr_svg_(self) -> str:  # Jupyter shows the diagram inline
        return svg(self)


def _side(n):  # spatial size → pixels
    return 10 + 13 * math.log2(n + 1)


def _thick(c):  # channels → pixels
    return 4 + 5 * math.log2(c + 1)


class _Item:
    """A box (one feature map) or a block (branches); measured, then placed."""

    def __init__(self, row=None, branches=None, merge=None):
        self.row, self.branches, self.merge = row, branches, merge
        self.folded = []

    def size(self):
        if self.branches is None:
            w, h, d = self.box()
            label = max(len(fmt_shape(self.row.output)), len(self.row.name)) * FONT * 0.6
            return max(w + d, label), h + d + 2 * FONT + 8
        sizes = [_chain_size(b) for b in self.branches]
        return (max((s[0] for s in sizes), default=0) + 2 * GAP + 16,
                sum(max(s[1], 20) for s in sizes) + GAP * (len(sizes) - 1))

    def box(self):
        out = self.row.output if self.row else ()
        if len(out) >= 3:
            return _thick(out[-1]), _side(out[0]), _side(out[1]) * 0.35
        if len(out) == 2:  # 1-D map: no depth
            return _thick(out[-1]), _side(out[0]), 4
        return 8, 12 + 8 * math.log2(out[0] + 1) if out else 12, 3  # a vector: a bar


def _chain_size(items):
    if not items:
        return 0, 20
    sizes = [i.size() for i in items]
    return sum(s[0] for s in sizes) + GAP * (len(items) - 1), max(s[1] for s in sizes)


def _items(rows, input_row=None):
    """The row tree as boxes; a layer that keeps the shape (an activation, batchnorm) folds
    into the box before it."""
    items = [input_row] if input_row else []
    for row in rows:
        if row.branches is not None:
            branches = [_items(b) for b in row.branches]
            items.append(_Item(row, branches, getattr(row.layer, "sign", row.kind[0])))
        elif row.layer.fold and items and row.source is None:
            items[-1].folded.append(row)
        else:
            items.append(_Item(row))
    return items


class _Input:
    """Stands in for a row: the network's input."""
    colour = "#cfd8dc"

    def __init__(self, shape):
        self.output, self.name, self.kind, self.index = shape, "input", "input", 0
        self.layer = self


MAX_WIDTH = 2400  # a longer network wraps into rows, as text does


def _rows(items):
    """The top-level boxes in rows no wider than MAX_WIDTH (a block is never split)."""
    rows, row, width = [], [], 0
    for item in items:
        w = item.size()[0]
        if row and width + GAP + w > MAX_WIDTH:
            rows.append(row)
            row, width = [], 0
        row.append(item)
        width += w + (GAP if len(row) > 1 else 0)
    return rows + [row] if row else rows


def layout(summary) -> Drawing:
    first = _Item(_Input(summary.network.input.shape))
    items = _items(summary.tree, first)
    levels = _u_levels(summary, items)
    if levels is not None:
        return _u_layout(summary, items, levels)
    d = Drawing()
    margin = 30
    refs = [r for r in summary.rows if r.source is not None]
    places = {}
    y, width, ends = margin + 10, 0, []
    for row in _rows(items):
        names = set()
        for item in row:
            _names(item, names)
        lanes = sum(1 for r in refs if r.name in names)
        top = y + 14 * lanes
        w, h = _chain_size(row)
        before = dict(places)
        ends.append((_place_chain(d, row, margin, top + h / 2, places), margin, top + h / 2))
        # skips inside this row: arcs over it, nested so that a longer skip runs higher
        inside = [(places[r.source.name], places[r.name]) for r in refs
                  if r.name in names and r.source.name in places and r.source.name not in before]
        for lane, ((x0, y0), (x1, y1)) in enumerate(sorted(inside, key=lambda s: s[1][0] - s[0][0])):
            lift = 10 + 14 * lane
            d.shapes.append(("line", [(x0, y0), (x0, top - lift), (x1, top - lift), (x1, y1)],
                             True, True))
        for r in refs:  # a skip from an earlier row: a dashed line straight to it
            if r.name in names and r.source.name in before:
                d.shapes.append(("line", [before[r.source.name], places[r.name]], True, True))
        y, width = top + h + 2 * GAP, max(width, w)
    for (out, _, _), (_, x, cy) in zip(ends, ends[1:]):  # the flow from one row to the next
        turn = (out[1] + cy) / 2
        d.shapes.append(("line", [out, (out[0] + GAP / 2, out[1]), (out[0] + GAP / 2, turn),
                                  (x - GAP / 2, turn), (x - GAP / 2, cy), (x, cy)], True, False))
    d.width = max(width, _title(d, summary, margin)) + 2 * margin + GAP
    d.height = y - 2 * GAP + margin
    return d


def _title(d, summary, margin):
    title = (f"{summary.network.name}: input {fmt_shape(summary.network.input.shape)}, output "
             f"{fmt_shape(summary.output)}, {summary.total('params'):,} params")
    d.texts.append((margin, 16, title, 11, "start"))
    return len(title) * 11 * 0.6


def _u_levels(summary, items):
    """Each top-level box's depth (how many halvings its map is below the input's) when the
    network is an encoder-decoder: it goes down, comes back up, and its skips join maps of
    one level (U-Net, FPN). None for any other network."""
    levels, level, size = [], 0, None
    for item in items:  # a level per halving (or doubling), whatever valid convs trim
        out = item.row.output
        if len(out) < 3 or not isinstance(out[0], int):
            return None
        if size is not None and not 0.6 < out[0] / size < 1.6:
            level += round(math.log2(size / out[0]))
        levels.append(level)
        size = out[0]
    if min(levels) < 0:
        return None
    deepest = levels.index(max(levels))
    at = {}
    for k, item in enumerate(items):
        names = {item.row.name}
        _names(item, names)
        for name in names:
            at[name] = k
    skips = [(at.get(r.source.name), at.get(r.name)) for r in summary.tree
             if r.source is not None]
    if len(skips) < 2 or any(a is None or b is None or not a < deepest < b
                             or levels[a] != levels[b] for a, b in skips):
        return None
    return levels


def _u_layout(summary, items, levels) -> Drawing:
    """The encoder-decoder as the U everyone knows: down to the bottleneck and back up, each
    skip a dashed arrow across one level."""
    d = Drawing()
    margin = 30
    step = max(i.size()[1] for i in items) + GAP
    top = margin + 24
    places, prev, x = {}, None, margin
    for item, level in zip(items, levels):
        w, _ = item.size()
        left, right = _place(d, item, x, top + step / 2 + level * step, places)
        if prev is not None:  # the flow: an elbow where the level changes
            turn = prev[0] + GAP / 2
            d.shapes.append(("line", [prev, (turn, prev[1]), (turn, left[1]), left], True, False))
        prev, x = right, x + w + GAP
    for r in summary.tree:
        if r.source is not None:
            (x0, y0), (x1, y1) = places[r.source.name], places[r.name]
            lift = min(y0, y1) - 12
            d.shapes.append(("line", [(x0, y0), (x0, lift), (x1, lift), (x1, y1)], True, True))
    d.width = max(x, _title(d, summary, margin)) + margin
    d.height = top + (max(levels) + 1) * step + margin
    return d


def _names(item, out):
    """Every row name an item draws."""
    if item.row is not None and not isinstance(item.row, _Input):
        out.add(item.row.name)
    out.update(f.name for f in item.folded)
    for branch in item.branches or ():
        for sub in branch:
            _names(sub, out)


def _place_chain(d, items, x, cy, places):
    prev = None
    for item in items:
        w, h = item.size()
        left, right = _place(d, item, x, cy, places)
        if prev is not None:
            d.shapes.append(("line", [prev, left], True, False))
        prev = right
        x += w + GAP
    return prev


def _place(d, item, x, cy, places):
    """Draw ``item`` with its left edge at x, centred on cy; its in and out points."""
    w, h = item.size()
    if item.branches is None:
        bw, bh, depth = item.box()
        x0 = x + (w - bw - depth) / 2
        y0 = cy - bh / 2 + depth / 2
        colour = item.row.layer.colour
        d.shapes.append(("poly", [(x0, y0), (x0 + bw, y0), (x0 + bw, y0 + bh), (x0, y0 + bh)], colour))
        if depth > 3:
            d.shapes.append(("poly", [(x0, y0), (x0 + depth, y0 - depth), (x0 + bw + depth, y0 - depth),
                                      (x0 + bw, y0)], _shade(colour, 1.15)))
            d.shapes.append(("poly", [(x0 + bw, y0), (x0 + bw + depth, y0 - depth),
                                      (x0 + bw + depth, y0 + bh - depth), (x0 + bw, y0 + bh)],
                             _shade(colour, 0.85)))
        name = item.row.name + ("+" if item.folded else "")
        d.texts.append((x + w / 2, y0 - depth - 4, name, FONT - 1, "middle"))
        d.texts.append((x + w / 2, y0 + bh + FONT + 2, fmt_shape(item.row.output), FONT, "middle"))
        places[item.row.name] = (x + w / 2, y0 - depth)
        for f in item.folded:
            places[f.name] = places[item.row.name]
        return (x0, cy + depth / 2), (x0 + bw + depth / 2, cy + depth / 2)
    # a block: branches stacked, each from a fork point to the merge circle
    fork, merge = (x + 4, cy), (x + w - 10, cy)
    sizes = [_chain_size(b) for b in item.branches]
    y = cy - (sum(max(s[1], 20) for s in sizes) + GAP * (len(sizes) - 1)) / 2
    for branch, (bw, bh) in zip(item.branches, sizes):
        bh = max(bh, 20)
        mid = y + bh / 2
        if branch:
            first = x + GAP
            _place_chain(d, branch, first, mid, places)
            d.shapes.append(("line", [fork, (fork[0], mid), (first, mid)], False, False))
            d.shapes.append(("line", [(first + bw, mid), (merge[0], mid), merge], False, False))
        else:  # identity: a plain shortcut
            d.shapes.append(("line", [fork, (fork[0], mid), (merge[0], mid), merge], False, False))
        y += bh + GAP
    d.shapes.append(("circle", merge, 7, "#fff59d"))
    d.texts.append((merge[0], merge[1] + 3, item.merge, FONT, "middle"))
    after = "".join(f" {f.kind}" for f in item.folded)
    d.texts.append((merge[0], merge[1] + 20, fmt_shape(item.row.output) + after, FONT - 1, "middle"))
    places[item.row.name] = (merge[0], merge[1] - 7)
    return fork, (merge[0] + 7, merge[1])


def _shade(colour, factor):
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(min(255, int(v * factor)) for v in (r, g, b))


def svg(d: Drawing) -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width:.0f}" height="{d.height:.0f}" '
           f'viewBox="0 0 {d.width:.0f} {d.height:.0f}" font-family="Helvetica, Arial, sans-serif">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>']
    for s in d.shapes:
        if s[0] == "poly":
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s[1])
            out.append(f'<polygon points="{pts}" fill="{s[2]}" stroke="#37474f" stroke-width="0.6"/>')
        elif s[0] == "circle":
            (x, y), r, fill = s[1], s[2], s[3]
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="#555"/>')
        else:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s[1])
            dash = ' stroke-dasharray="4 3"' if s[3] else ""
            arrow = ' marker-end="url(#a)"' if s[2] else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="#555" stroke-width="1"'
                       f'{dash}{arrow}/>')
    for x, y, text, size, anchor in d.texts:
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                   f'fill="#263238">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png(d: Drawing, path: str, dpi: int = 100) -> tuple[int, int]:
    """Write the drawing as a PNG; returns its size in pixels (1 point is dpi / 72 of them)."""
    from ..files import write
    write(path, png_bytes(d, dpi))
    return round(d.width * dpi / 72), round(d.height * dpi / 72)


def png_bytes(d: Drawing, dpi: int = 100) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Polygon
    fig = plt.figure(figsize=(d.width / 72, d.height / 72), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, d.width)
    ax.set_ylim(d.height, 0)
    ax.axis("off")
    for s in d.shapes:
        if s[0] == "poly":
            ax.add_patch(Polygon(s[1], closed=True, facecolor=s[2], edgecolor="#37474f", lw=0.5))
        elif s[0] == "circle":
            ax.add_patch(Circle(s[1], s[2], facecolor=s[3], edgecolor="#555"))
        else:
            xs, ys = zip(*s[1])
            ax.plot(xs, ys, color="#555", lw=0.8, ls="--" if s[3] else "-")
            if s[2]:
                ax.annotate("", xy=s[1][-1], xytext=s[1][-2],
                            arrowprops={"arrowstyle": "-|>", "color": "#555", "lw": 0.8})
    for x, y, text, size, anchor in d.texts:
        ax.text(x, y, text, fontsize=size * 0.75, ha={"start": "left"}.get(anchor, "center"),
                va="baseline", color="#263238")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return buffer.getvalue()
