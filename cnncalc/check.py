"""``cnncalc check``: build the spec in PyTorch, run it, and compare every layer's
output shape and parameter counts with the calculator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .calc import Summary, fmt_shape
from .errors import CnnCalcError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "tb": 10**12}


def parse_bytes(text: str) -> int:
    """'16GiB' → 17179869184."""
    import re
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise CnnCalcError(f"cannot read {text!r} as a size; expected e.g. 512MiB, 16GiB, 2e9")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human_bytes(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@dataclass
class LayerCheck:
    row: object
    torch_shape: tuple | None
    torch_params: int
    torch_buffers: int

    @property
    def ok(self) -> bool:
        r = self.row
        return (self.torch_shape == tuple(r.output) and self.torch_params == r.trainable
                and self.torch_buffers == r.non_trainable)


@dataclass
class CheckResult:
    summary: Summary
    device: str
    batch: int
    layers: list = field(default_factory=list)
    seconds: float = 0.0
    estimate: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.layers)


def estimate_bytes(summary: Summary, batch: int, itemsize: int = 4) -> int:
    """Parameters plus every activation of one forward pass: an upper bound for inference."""
    acts = sum(r.units for r in summary.rows) + _units(summary.network.input.shape)
    return (summary.total("params") + acts * batch) * itemsize


def _units(shape):
    n = 1
    for v in shape:
        n *= v
    return n


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


def check(summary: Summary, device: str = "cpu", batch: int = 1, max_memory=None) -> CheckResult:
    try:
        import torch
    except ImportError:
        raise CnnCalcError("'cnncalc check' needs PyTorch: pip install 'cnncalc[torch]'") from None
    from .backends.torch import Net

    if batch < 1:
        raise CnnCalcError(f"--batch must be at least 1, received {batch}")
    try:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise CnnCalcError("--device cuda: no CUDA device is available here")
    except RuntimeError as e:
        raise CnnCalcError(f"--device {device}: {e}") from None
    need = estimate_bytes(summary, batch)
    free = _free_bytes(torch, dev)
    limit = parse_bytes(max_memory) if max_memory else None
    for what, cap in (("--max-memory", limit), (f"free memory on {device}", free)):
        if cap is not None and need > cap:
            raise CnnCalcError(f"this run needs about {human_bytes(need)} (parameters and "
                               f"activations at batch {batch}), more than the {what} "
                               f"({human_bytes(cap)}); try --device meta, a smaller --batch or "
                               "--input")
    start = time.perf_counter()
    with torch.device(dev):
        net = Net(summary)
    net.eval()
    seen = {}
    hooks = [mod.register_forward_hook(_recorder(seen, name)) for name, mod in net.layers.items()]
    x = torch.randn((batch, *summary.network.input.shape), device=dev)
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    result = CheckResult(summary, str(dev), batch, seconds=time.perf_counter() - start,
                         estimate=need)
    for row in summary.rows:
        mod = net.layers[row.name]
        own = not hasattr(mod, "branches")  # a block's parameters are its layers' rows
        params = sum(p.numel() for p in mod.parameters()) if own else 0
        buffers = sum(b.numel() for n, b in mod.named_buffers() if not n.endswith("num_batches_tracked")) \
            if own else 0
        result.layers.append(LayerCheck(row, seen.get(row.name), params, buffers))
    return result


def _recorder(seen, name):
    def hook(module, args, output):
        shape = tuple(output.shape[1:])
        seen[name] = shape if len(shape) == 1 else (*shape[1:], shape[0])
    return hook


def render_check(result: CheckResult) -> str:
    head = ("#", "name", "calc output", "torch output", "calc params", "torch params", "match")
    body = []
    for c in result.layers:
        r = c.row
        tp = f"{c.torch_params:,}" + (f" + {c.torch_buffers:,}" if c.torch_buffers else "")
        cp = f"{r.trainable:,}" + (f" + {r.non_trainable:,}" if r.non_trainable else "")
        body.append((str(r.index), "  " * r.depth + r.name, fmt_shape(r.output),
                     fmt_shape(c.torch_shape) if c.torch_shape else "(not run)", cp, tp,
                     "ok" if c.ok else "MISMATCH"))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i in (1, 2, 3, 6) else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [f"{result.summary.network.name}: PyTorch forward pass on {result.device}, batch "
             f"{result.batch}, input {fmt_shape(result.summary.network.input.shape)}",
             fmt(head), "-" * len(fmt(head))] + [fmt(b) for b in body]
    bad = sum(not c.ok for c in result.layers)
    lines.append("-" * len(fmt(head)))
    lines.append(f"{len(result.layers) - bad} of {len(result.layers)} layers match"
                 + (f"; {bad} MISMATCH" if bad else "") + f" ({result.seconds:.2f} s; params "
                 "shown as trainable + non-trainable buffers)")
    return "\n".join(lines) + "\n"
