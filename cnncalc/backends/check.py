"""``cnncalc check``: build the spec in PyTorch, run it, and compare every layer's
output shape and parameter counts with the calculator."""

from __future__ import annotations

from math import prod

import time
from dataclasses import dataclass, field

from .. import fmt
from ..analysis.summary import Summary
from ..errors import CnnCalcError
from ..layers.activations import SOFTMAX


@dataclass
class LayerCheck:
    row: object
    torch_shape: tuple | None
    torch_params: int
    torch_buffers: int
    torch_macs: int

    @property
    def ok(self) -> bool:
        r = self.row
        return (self.torch_shape == tuple(r.output) and self.torch_params == r.trainable
                and self.torch_buffers == r.non_trainable and self.torch_macs == r.macs)


@dataclass
class CheckResult:
    summary: Summary
    device: str
    batch: int
    layers: list = field(default_factory=list)
    seconds: float = 0.0
    estimate: int = 0
    rf: tuple | None = None  # (layer name, calculated extents, measured extents)
    rf_from: tuple | None = None  # (calculated, measured) first input pixel of that field
    peak: int | None = None  # measured peak bytes on CUDA

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.layers) and (self.rf is None or self.rf[1] == self.rf[2]) \
            and (self.rf_from is None or self.rf_from[0] == self.rf_from[1])

    def __str__(self):
        return render_check(self)


def _free_bytes(torch, device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None  # meta allocates nothing


def device_of(device: str):
    """``--device`` as a torch device, or a clear error: 'gpu' is answered with 'cuda'."""
    import torch
    try:
        dev = torch.device(device)
    except RuntimeError:
        hint = "; did you mean cuda?" if device.lower() in ("gpu", "nvidia", "gpu:0", "cuda0") \
            else ""
        raise CnnCalcError(f"--device {device}: expected cpu, cuda, cuda:N, mps or meta{hint}") \
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CnnCalcError(f"--device {device}: no CUDA device is available here")
    return dev


def guard_memory(summary: Summary, batch: int, dev, max_memory=None) -> int:
    """Refuse, before anything is allocated, a run that would not fit; the bytes it needs."""
    import torch
    from ..analysis.memory import estimate
    mem = estimate(summary, batch)  # float32: parameters, and every layer's output, which
    # check keeps to compare them all, and the input
    need = mem.param_bytes + sum(mem.activation_bytes) + prod(summary.input) * 4 * batch
    free = _free_bytes(torch, dev)
    limit = fmt.parse_bytes(max_memory, "--max-memory") if max_memory else None
    for what, cap in (("--max-memory", limit), (f"free memory on {dev}", free)):
        if cap is not None and need > cap:
            raise CnnCalcError(f"this run needs about {fmt.nbytes(need)} (parameters and "
                               f"activations at batch {batch}), more than the {what} "
                               f"({fmt.nbytes(cap)}); try --device meta, a smaller --batch or "
                               "--input")
    return need


def check(summary: Summary, device: str = "cpu", batch: int = 1, max_memory=None,
          progress=None, weights: str | None = None) -> CheckResult:
    """Run the spec in PyTorch and compare every layer; ``progress(1)`` ticks per layer."""
    try:
        import torch
    except ImportError:
        raise CnnCalcError("'cnncalc check' needs PyTorch: pip install 'cnncalc[torch]'") from None
    from .torch import Net

    if batch < 1:
        raise CnnCalcError(f"--batch must be at least 1, received {batch}")
    dev = device_of(device)
    need = guard_memory(summary, batch, dev, max_memory)
    start = time.perf_counter()
    with torch.device(dev):  # no in-place work: the receptive field is measured by gradient
        net = Net(summary, inplace=False)
    if weights:
        from .weights import apply, load_file
        apply(net, {k: v.to(dev) for k, v in load_file(weights).items()})
    net.eval()
    seen = {}
    hooks = [mod.register_forward_hook(_recorder(seen, name, progress))
             for name, mod in net.layers.items()]
    from .data import picture_shape
    x = torch.randn((batch, *picture_shape(summary.network.input.shape)), device=dev)
    from torch.utils.flop_counter import FlopCounterMode
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    for h in hooks:
        h.remove()
    result = CheckResult(summary, str(dev), batch, estimate=need)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        result.peak = torch.cuda.max_memory_allocated(dev) - base
    result.seconds = time.perf_counter() - start
    _compare(result, summary, net, seen, counter, batch)
    # a graph's field is the largest of its paths' when their centres agree: measurable
    if dev.type != "meta" and not any(r.misaligned for r in summary.rows):
        measured = measure_rf(summary, net, dev)
        if measured:
            result.rf, result.rf_from = measured[:3], measured[3:]
    return result


def _compare(result, summary, net, seen, counter, batch):
    """Each row against its module: the output seen, parameters and persistent buffers (a
    tensor two layers share counted once, at the first, as in parameters()), MACs."""
    flops = {fqn.split(".", 1)[-1]: sum(c.values()) for fqn, c in counter.get_flop_counts().items()}
    where = {id(mod): fqn for fqn, mod in net.named_modules()}
    counted = set()
    for row in summary.rows:
        mod = net.layers[row.name]
        if row.branches is not None:  # a block's parameters are its layers' rows
            result.layers.append(LayerCheck(row, seen.get(row.name), 0, 0, 0))
            continue
        params = sum(p.numel() for p in mod.parameters() if _first(p, counted))
        kept = set(mod.state_dict()) - {n for n, _ in mod.named_parameters()}  # persistent buffers
        buffers = sum(b.numel() for n, b in mod.named_buffers() if n in kept
                      and not n.endswith("num_batches_tracked") and _first(b, counted))
        macs = flops.get(where[id(mod)], 0) // (2 * batch)
        result.layers.append(LayerCheck(row, seen.get(row.name), params, buffers, macs))


def measure_rf(summary, net, dev):
    """The receptive field measured: with every weight positive and max pooling read as
    average pooling over the same windows, the gradient of the central output unit (all its
    channels) of the last spatial layer is non-zero exactly on its receptive field. Measured when that field
    lies inside the input; returns (layer name, calculated, measured extents, calculated,
    measured first pixels) or None: the field's place is checked as well as its size."""
    import torch
    rows = [r for r in summary.rows if len(r.output) > 1 and r.rf]
    if not rows:
        return None
    row = rows[-1]
    # Araujo et al.'s setting is convolution and pooling: an upsampling layer can leave
    # output units that see no input at all, and a softmax of the equal channels that equal
    # weights make is 1 / C whatever comes in: no gradient
    if any(r.up or getattr(r.layer, "activation", None) == SOFTMAX
           for r in summary.rows[:row.index]):
        return None
    shape = summary.network.input.shape
    centre = [n // 2 for n in row.output[:-1]]
    inside = _inside_field(shape, centre, row.rf)
    if inside is None:
        return None  # cut by the border: padding, floors and holes decide what is seen
    expected, first = inside
    from .modules import Pool
    pools = [m for m in net.modules() if isinstance(m, Pool) and m.is_max]
    saved_state = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        for m in pools:
            m.is_max, m.fn = False, m.avg_fn
        net.double()
        _positive_weights(net)
        out = {}
        hook = net.layers[row.name].register_forward_hook(lambda m, a, o: out.setdefault("y", o))
        from .data import picture_shape
        x = (torch.rand((1, *picture_shape(shape)), device=dev, dtype=torch.float64) + 0.5
             ).requires_grad_(True)
        net(x)
        hook.remove()
        # every channel of the centre unit: after a channel split, channels of one path see
        # less than another's; the calculator reports the largest, their union. Weighted
        # unequally: the plain sum of a layernorm's channels is constant, without gradient
        unit = out["y"][(0, slice(None), *centre)]
        (unit * torch.linspace(1, 2, len(unit), device=dev, dtype=unit.dtype)).sum().backward()
        grad = x.grad[0]
        grad = grad.transpose(-3, -2) if grad.dim() >= 3 else grad  # back to the spec's order
        support = grad.abs().sum(-1).nonzero()
        if not len(support):
            return None  # nothing reaches the unit (a constant output): nothing to measure
        measured = [int(support[:, i].max() - support[:, i].min()) + 1
                    for i in range(len(centre))]
        seen_first = [int(support[:, i].min()) for i in range(len(centre))]
    finally:
        for m in pools:
            m.is_max, m.fn = True, m.max_fn
        net.float()
        net.load_state_dict(saved_state)
    return row.name, tuple(expected), tuple(measured), tuple(first), tuple(seen_first)


def _inside_field(shape, centre, rf):
    """The central unit's field per axis (its size, its first pixel), or None where the
    border cuts it."""
    expected, first = [], []
    for n, c, (size, jump, start) in zip(shape[:-1], centre, rf):
        mid = start + c * jump
        if mid - (size - 1) / 2 < 0 or mid + (size - 1) / 2 > n - 1:
            return None
        expected.append(int(size))
        first.append(mid - (size - 1) / 2)
    return expected, first


def _positive_weights(net):
    """Weights about an average's (positive: no activation saturates, no paths cancel),
    unequal: equal ones give equal channels, which a layernorm turns to constants."""
    import torch
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() > 1:
                p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.5)
                        / p[0].numel())
            else:
                p.fill_(float(not name.endswith("bias")))


def _recorder(seen, name, progress=None):
    def hook(module, args, output):
        if progress:
            progress(1)
        shape = tuple(output.shape[1:])
        seen[name] = shape if len(shape) == 1 else (*shape[1:], shape[0])
    return hook


def render_check(result: CheckResult) -> str:
    """The comparison as a table, through the same table core as 'summary'."""
    from ..render.table import Matrix, text
    keys = ["#", "name", "calc output", "torch output", "calc params", "torch params",
            "calc MACs", "torch MACs", "match"]
    body = []
    for c in result.layers:
        r = c.row
        tp = f"{c.torch_params:,}" + (f" + {c.torch_buffers:,}" if c.torch_buffers else "")
        cp = f"{r.trainable:,}" + (f" + {r.non_trainable:,}" if r.non_trainable else "")
        texts = [str(r.index), r.name, fmt.shape(r.output),
                 fmt.shape(c.torch_shape) if c.torch_shape else "(not run)", cp, tp,
                 f"{r.macs:,}", f"{c.torch_macs:,}", "ok" if c.ok else "MISMATCH"]
        body.append((r.depth, texts, texts))
    bad = sum(not c.ok for c in result.layers)
    footer = [f"{len(result.layers) - bad} of {len(result.layers)} layers match in shape, "
              "params (trainable + non-trainable buffers) and MACs (torch.utils.flop_counter)"
              + (f"; {bad} MISMATCH" if bad else "") + f"; {result.seconds:.2f} s"]
    if result.rf:
        name, calc, seen = result.rf
        verdict = "ok" if calc == seen else "MISMATCH"
        where = ""
        if result.rf_from and result.rf_from[0] != result.rf_from[1]:
            verdict, where = "MISMATCH", (
                f"; it starts at input pixel {_at(result.rf_from[0])} by the calculation, "
                f"{_at(result.rf_from[1])} by the gradient")
        footer.append(f"receptive field of the centre unit of {name}: calculated "
                      f"{fmt.shape(calc)}, measured by gradient {fmt.shape(seen)}{where} "
                      f"({verdict})")
    if result.peak is not None:
        footer.append(f"peak memory: measured {fmt.nbytes(result.peak)} "
                      f"(torch.cuda.max_memory_allocated), estimated at most "
                      f"{fmt.nbytes(result.estimate)}")
    title = (f"{result.summary.network.name}: PyTorch forward pass on {result.device}, batch "
             f"{result.batch}, input {fmt.shape(result.summary.network.input.shape)}")
    m = Matrix(title, keys, keys, [k in ("name", "calc output", "torch output", "match")
                                   for k in keys], body, footer=footer)
    return text(m)


def _at(first):
    return "(" + ", ".join(f"{v:g}" for v in first) + ")"


def _first(tensor, counted: set) -> bool:
    """Whether this is the tensor's first count (then it is counted)."""
    if id(tensor) in counted:
        return False
    counted.add(id(tensor))
    return True
