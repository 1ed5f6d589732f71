"""The checks that need a GPU, as one script for a lent machine (bench/notes.md has the
results): every zoo spec through 'cnncalc check --device cuda', and training memory
measured on CUDA against cnncalc's estimate (kept activations by saved-tensor hooks, one
count per storage; the training step's peak by torch.cuda.max_memory_allocated).

    python3 tools/device_checks.py OUT_DIR      (writes check.txt and memory.json there)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def checks(out: Path):
    lines = []
    for spec in sorted((ROOT / "specs").glob("*.cnn")):
        t = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "cnncalc", "check", str(spec), "--device",
                                   "cuda", "--batch", "2", "-q"], capture_output=True, text=True,
                                  timeout=120, cwd=ROOT)
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
            rc = done.returncode
        except subprocess.TimeoutExpired:
            tail, rc = ["timed out after 120 s"], "timeout"
        lines.append(f"{spec.name}: exit {rc} in {time.perf_counter() - t:.1f} s: "
                     f"{tail[0] if tail else ''}")
        print(lines[-1], flush=True)
    (out / "check.txt").write_text("\n".join(lines) + "\n")


def step_peak(net, x, optimizer: str, dtype) -> int:
    """Peak bytes allocated over two training steps (the optimizer's state is made in the
    first), above what is allocated before it (the parameters)."""
    import torch
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=1e-3),
           "adam": lambda p: torch.optim.Adam(p, lr=1e-3)}[optimizer](net.parameters())
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for _ in range(2):
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not torch.float32):
            y = net(x)
            loss = (y[0] if isinstance(y, tuple) else y).float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del y, loss
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del opt
    return peak


def memory(out: Path):
    import torch

    import cnncalc
    from cnncalc.analysis.memory import estimate
    from cnncalc.backends.data import picture_shape
    from cnncalc.backends.measure import saved_bytes
    results = []
    dev = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run of the kept bytes
    for spec in sorted((ROOT / "specs").glob("*.cnn")):
        try:
            summary = cnncalc.summarize(spec)
        except cnncalc.CnnCalcError as e:
            print(spec.name, "skipped:", e, flush=True)
            continue
        row = {"spec": spec.stem, "params": summary.totals.params}
        try:
            for batch in (2, 8):
                net = cnncalc.to_torch(summary).to(dev).train()
                x = torch.randn(batch, *picture_shape(summary.network.input.shape), device=dev)
                row[f"kept_{batch}"] = saved_bytes(net, x)[0]
                est = estimate(summary, batch, "float32", "adam")
                row[f"estimate_kept_{batch}"] = est.kept_bytes
                if dev == "cpu":
                    break
                for opt in ("sgd", "adam"):
                    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
                        net = cnncalc.to_torch(summary).cuda().train()
                        row[f"peak_{opt}_{name}_{batch}"] = step_peak(net, x, opt, dtype)
                        # bfloat16 here is autocast (mixed precision), foreach CUDA's default;
                        # the parameters and the batch were allocated before the step
                        e = estimate(summary, batch, name, opt, foreach=True,
                                     amp=name == "bfloat16")
                        row[f"estimate_{opt}_{name}_{batch}"] = \
                            e.training_bytes - e.param_bytes - e.step["input"]
                net = cnncalc.to_torch(summary, inplace=False).cuda().eval()
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                with torch.no_grad():
                    net(x)
                torch.cuda.synchronize()
                row[f"inference_{batch}"] = torch.cuda.max_memory_allocated() - base
                row[f"estimate_inference_{batch}"] = est.peak_activation_bytes
                del net, x
                torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001 - recorded, the others go on
            row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        results.append(row)
        mib = 1 << 20
        print(spec.stem, {k: (round(v / mib, 1) if isinstance(v, int) and k != "params" else v)
                          for k, v in row.items() if k.endswith("_8") or k == "error"},
              flush=True)
    (out / "memory.json").write_text(json.dumps(results, indent=1))


def speed(out: Path):
    sys.path.insert(0, str(ROOT / "bench"))
    import bench
    bench.backend(["cuda"])
    (out / "speed.txt").write_text("\n".join(" | ".join(r) for r in bench.ROWS) + "\n")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    target.mkdir(parents=True, exist_ok=True)
    which = sys.argv[2:] or ["check", "memory", "speed"]
    for name in which:
        t = time.perf_counter()
        {"check": checks, "memory": memory, "speed": speed}[name](target)
        print(f"== {name}: {time.perf_counter() - t:.0f} s", flush=True)
