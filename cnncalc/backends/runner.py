"""``cnncalc run``: the spec as a model on real data."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..fmt import shape as fmt_shape


def run_on(summary, data: str, weights: str | None = None, maps: str | None = None,
           resize: bool = False, device: str = "cpu"):
    """The output (rows first, as the data), the feature-map PNGs written (if ``maps``), and
    the class names the weights file carries (or None)."""
    try:
        import torch
    except ImportError:
        raise CnnCalcError("'cnncalc run' needs PyTorch: pip install 'cnncalc[torch]'") from None
    from .torch import Net
    from .data import read_input
    from .weights import apply, load_file
    from .check import device_of, guard_memory
    guard_memory(summary, 1, device_of(device))
    x = read_input(data, summary.network.input.shape, resize)
    torch.manual_seed(0)  # random weights, when none are given, are the same every run
    net = Net(summary, inplace=not maps).eval()  # feature maps need every output intact
    labels = None
    if weights:
        from .weights import load_labels
        apply(net, load_file(weights))
        labels = load_labels(weights)
    net.to(device)
    seen = []
    hooks = []
    if maps:
        for row in summary.rows:
            mod = net.layers[row.name]
            hooks.append(mod.register_forward_hook(
                lambda m, a, o, row=row: seen.append((row.index, row.name, _channels_last(o)))))
    with torch.no_grad():
        y = net(torch.as_tensor(x, device=device)[None])
    y = (y[-1] if isinstance(y, tuple) else y)[0].cpu().numpy()  # side outputs: the last one
    for h in hooks:
        h.remove()
    paths = []
    if maps:
        from ..render.pictures import save_maps
        spec_order = x.swapaxes(-3, -2) if x.ndim >= 3 else x  # the maps are drawn from it
        paths = save_maps([(0, "input", spec_order)] + seen, maps)
    return y, paths, labels


def _channels_last(t):
    a = t[0].detach().cpu().numpy()
    return a if a.ndim == 1 else a.transpose(*range(1, a.ndim), 0)


def format_output(y, summary, labels=None) -> str:
    """Small outputs in full (a grid per channel, rows as the picture's rows); large ones as
    statistics; a vector's top classes with their index (and name, if the weights have
    them)."""
    import numpy as np
    shape = fmt_shape(summary.output)
    if y.size <= 100 and y.ndim == 3:
        blocks = []
        for c in range(y.shape[-1]):
            rows = [" ".join(f"{v:g}" for v in row) for row in y[:, :, c]]
            blocks.append((f"channel {c}:\n" if y.shape[-1] > 1 else "") + "\n".join(rows))
        return f"output {shape}:\n" + "\n".join(blocks)
    if y.size <= 100:
        text = f"output {shape}: " + " ".join(f"{v:.6g}" for v in y.ravel())
    else:
        text = f"output {shape}: min {y.min():.6g}, max {y.max():.6g}, mean {y.mean():.6g}"
    if y.ndim == 1 and y.size > 1:
        top = np.argsort(y)[::-1][:5]
        names = labels if labels and len(labels) == y.size else None
        text += f"\ntop {len(top)}: " + ", ".join(
            f"{i}{' ' + names[i] if names else ''} ({y[i]:.4g})" for i in top)
    return text
