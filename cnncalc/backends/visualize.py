"""Filter visualisation, as the lecture notes describe it: find an input that
maximises the mean activation of one filter, by gradient ascent on the input.

1. the loss is the mean of the filter's output; 2. backpropagation gives its gradient
with respect to the input; 3. the input takes a normalised step up that gradient."""

from __future__ import annotations

from ..errors import CnnCalcError


def maximise(net, layer: str, k: int, shape: tuple, steps: int = 100, lr: float = 0.1,
             seed: int = 0, progress=None):
    """The optimised input (spatial..., C, in the spec's order) and the mean activation
    before and after."""
    import torch
    from .data import picture_shape
    module = net.layers[layer]
    out = {}
    hook = module.register_forward_hook(lambda m, a, o: out.__setitem__("y", o))
    gen = torch.Generator().manual_seed(seed)
    net.eval()
    try:
        for attempt in range(10):  # a silent filter (ReLU) has no gradient: redraw, louder
            x = (torch.randn((1, *picture_shape(shape)), generator=gen) * 0.05 * 2 ** attempt).requires_grad_(True)
            net(x)
            if out["y"].dim() >= 2 and k < out["y"].shape[1] and out["y"][:, k].max() > 0:
                break
        start = None
        for step in range(steps + 1):
            net(x)
            y = out["y"]
            if y.dim() < 2 or k >= y.shape[1]:
                raise CnnCalcError(f"--filter {k}: layer {layer!r} has {y.shape[1]} filters")
            loss = y[:, k].mean()
            if start is None:
                start = loss.item()
            if step == steps:
                break
            grad, = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x += lr * grad / (grad.norm() + 1e-8)
            if progress:
                progress(1)
        img = x.detach()[0].numpy()
        return (img.swapaxes(-3, -2) if img.ndim >= 3 else img), start, loss.item()
    finally:
        hook.remove()


def tiles(images: list):
    """Several (spatial..., C) inputs → one picture, a tile each."""
    import numpy as np
    from ..render.pictures import map_grid
    stack = np.stack([img.mean(-1) for img in images], -1)  # one grey tile per input
    return map_grid(stack)


def visualize(summary, layer: str, filters="all", steps: int = 100, seed: int = 0,
              weights: str | None = None, progress=None) -> list:
    """For each of the layer's filters ('all', or a number) asked for: (filter, the input
    that maximises its mean activation, the mean before, after). ``progress(1)`` ticks per
    step."""
    row = next((r for r in summary.rows if r.name == layer), None)
    if row is None:
        some = ", ".join(r.name for r in summary.rows[:5])
        raise CnnCalcError(f"--layer {layer}: no such layer (its layers: {some}, ...)")
    count = row.output[-1]
    if filters == "all":
        which = list(range(count))
    elif str(filters).isdigit() and int(filters) < count:
        which = [int(filters)]
    else:
        raise CnnCalcError(f"--filter {filters}: expected all or 0 to {count - 1}")
    try:
        import torch
    except ImportError:
        raise CnnCalcError("visualising needs PyTorch: pip install 'cnncalc[torch]'") from None
    from .torch import Net
    from .weights import apply, load_file
    torch.manual_seed(seed)
    net = Net(summary, inplace=False)
    if weights:
        apply(net, load_file(weights))
    return [(k, *maximise(net, layer, k, summary.network.input.shape, steps, seed=seed,
                          progress=progress)) for k in which]
