"""``cnncalc run``: the spec as a model on real data."""

from __future__ import annotations

from .calc import fmt_shape
from .errors import CnnCalcError


def run_on(summary, data: str, weights: str | None = None, maps: str | None = None,
           resize: bool = False, device: str = "cpu"):
    """Output array for the data file, and the feature-map PNGs written (if ``maps``)."""
    try:
        import torch
    except ImportError:
        raise CnnCalcError("'cnncalc run' needs PyTorch: pip install 'cnncalc[torch]'") from None
    from .backends.torch import Net
    from .data import read_input
    from .weights import apply, load_file
    from .check import guard_memory
    guard_memory(summary, 1, torch.device(device))
    x = read_input(data, summary.network.input.shape, resize)
    net = Net(summary).eval()
    if weights:
        apply(net, load_file(weights))
    net.to(device)
    seen = []
    hooks = []
    if maps:
        for row in summary.rows:
            mod = net.layers[row.name]
            hooks.append(mod.register_forward_hook(
                lambda m, a, o, row=row: seen.append((row.index, row.name, _channels_last(o)))))
    with torch.no_grad():
        y = net(torch.as_tensor(x, device=device)[None])[0].cpu().numpy()
    for h in hooks:
        h.remove()
    paths = []
    if maps:
        from .pictures import save_maps
        paths = save_maps([(0, "input", x)] + seen, maps)
    return y, paths


def _channels_last(t):
    a = t[0].detach().cpu().numpy()
    return a if a.ndim == 1 else a.transpose(*range(1, a.ndim), 0)


def format_output(y, summary) -> str:
    """Small outputs in full (a grid per channel); large ones as shape and statistics."""
    import numpy as np
    shape = fmt_shape(y.shape)
    if y.size <= 100:
        if y.ndim == 3:
            blocks = []
            for c in range(y.shape[-1]):
                rows = [" ".join(f"{v:g}" for v in row) for row in y[:, :, c]]
                blocks.append((f"channel {c}:\n" if y.shape[-1] > 1 else "") + "\n".join(rows))
            return f"output {shape}:\n" + "\n".join(blocks)
        return f"output {shape}: " + " ".join(f"{v:.6g}" for v in y.ravel())
    text = (f"output {shape}: min {y.min():.6g}, max {y.max():.6g}, mean {y.mean():.6g}")
    if y.ndim == 1:
        top = np.argsort(y)[::-1][:5]
        text += "\ntop 5: " + ", ".join(f"{i} ({y[i]:.4g})" for i in top)
    return text
