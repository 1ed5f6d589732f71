"""`make bench`: cnncalc against its peers, side by side in one run; medians and ratios.

Writes the table to BENCHMARKS.md with the machine it ran on. No timed assertions
live in the test suite: this is where speed is measured."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
VGG = ROOT / "specs" / "vgg16.cnn"
R50 = ROOT / "specs" / "resnet50.cnn"
ROWS = []
CURVE = {}  # form -> {layers: seconds}, the scaling curve written under the table


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# Peak RSS is read in a small wrapper process: a child forked from this one would
# count the pages it inherits (torch, once imported here).
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
         "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def processes(commands: dict, runs=11) -> dict:
    """Median wall time (s) and peak RSS (MiB) of whole processes, run round-robin so that
    drift in the machine's speed hits them all alike."""
    times = {k: [] for k in commands}
    env = dict(os.environ, KERAS_BACKEND="torch")
    for _ in range(runs):
        for key, args in commands.items():
            t = time.perf_counter()
            done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            times[key].append(time.perf_counter() - t)
            if done.returncode:
                raise SystemExit(f"{args} failed: {done.stderr.decode()[-2000:]}")
    out = {}
    for key, args in commands.items():
        peak = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True,
                              text=True, env=env, check=True)
        out[key] = (statistics.median(times[key]), int(peak.stdout.split()[-1]) / 1024)
    return out


def row(figure, ours, peer, unit, target, holds, ratio=None):
    if ratio is None and peer:
        ratio = peer / ours
    ROWS.append((figure, f"{ours:.4g} {unit}", f"{peer:.4g} {unit}" if peer else "--",
                 (f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x") if ratio else "--", target,
                 "--" if holds is None else "yes" if holds else "NO"))
    print(" | ".join(ROWS[-1]), flush=True)


def whole_process():
    py = sys.executable
    # Byte-compile first, as pip does when it installs a wheel: a run that compiles cnncalc
    # from source each time (an editable install under PYTHONDONTWRITEBYTECODE) measures the
    # compiler, not cnncalc, and took twice as long.
    import compileall
    for folder in ("cnncalc", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    commands = {
        "pass": [py, "-c", "pass"],
        # the floor of the stack the core issue asks for: Python, click, Lark and one
        # validated pydantic model with a constraint, as each layer is
        "floor": [py, "-c", "import click, lark\nfrom typing import Annotated\n"
                  "from pydantic import BaseModel, Field\n"
                  "class M(BaseModel):\n    n: Annotated[int, Field(ge=1)]\nM(n=1)"],
        "ours": [py, "-m", "cnncalc", "summary", str(VGG)],
        "torchinfo": [py, "-c", "import sys; sys.path.insert(0, 'bench'); import torchinfo, "
                      "reference; torchinfo.summary(reference.vgg16(), (1, 3, 224, 224))"],
    }
    import importlib.util
    if importlib.util.find_spec("keras"):  # installed by the bench extra; run on torch
        commands["keras"] = [py, "-c", "import keras; keras.applications.VGG16(weights=None)"
                             ".summary()"]
    else:
        print("keras not installed: not measured")
    m = processes(commands, runs=11)
    (t_pass, _), (t_ours, m_ours), (t_ti, m_ti) = m["pass"], m["ours"], m["torchinfo"]
    t_floor = m["floor"][0]
    row("summary VGG16, whole process (vs torchinfo: import torch, build, summary)", t_ours,
        t_ti, "s", ">= 20x faster", t_ti / t_ours >= 20)
    row("summary VGG16, whole process (vs python -c pass)", t_ours, t_pass, "s",
        "<= 10x python start", t_ours / t_pass <= 10, ratio=t_ours / t_pass)
    row("floor: import click and Lark, validate one pydantic model (vs torchinfo)",
        t_floor, t_ti, "s", "(reference)", None)
    row("floor: the same imports (vs python -c pass)", t_floor, t_pass, "s", "(reference)", None,
        ratio=t_floor / t_pass)
    row("summary VGG16, peak memory (vs torchinfo)", m_ours, m_ti, "MiB", "< 60 MiB", m_ours < 60)
    if "keras" in m:
        row("summary VGG16, whole process (vs Keras 3 on torch: import, build, summary)",
            t_ours, m["keras"][0], "s", "faster", m["keras"][0] > t_ours)


def in_process():
    import torch
    import torchinfo
    import reference
    from cnncalc import analyse, load
    torch.set_num_threads(2)
    for name, path, model, target in (("VGG16", VGG, reference.vgg16, 0.002),
                                      ("ResNet-50", R50, reference.resnet50, 0.010)):
        text = path.read_text()
        net = model()
        torchinfo.summary(net, (1, 3, 224, 224), verbose=0)  # warm-up
        ours_runs, peer_runs = [], []
        for _ in range(7):  # interleaved: drift hits both alike
            ours_runs.append(median_time(lambda: analyse(load(text)), 31))
            peer_runs.append(median_time(lambda: torchinfo.summary(net, (1, 3, 224, 224),
                                                                   verbose=0), 1))
        ours, peer = statistics.median(ours_runs), statistics.median(peer_runs)
        row(f"parse + analyse {name} in process (vs torchinfo.summary on the built model)",
            ours, peer, "s", f"< {target * 1000:g} ms and >= 100x", ours < target and peer / ours >= 100)


def scaling():
    from cnncalc import analyse, load
    from cnncalc.build import Limits
    lim = Limits(max_layers=10**6, max_bytes=1 << 27)
    sizes = (1000, 10_000, 100_000)
    for form, make in (("lines", lambda n: "input 64x64x8\n" + "conv 3x3x8 same relu\n" * n),
                       ("repeat", lambda n: f"input 64x64x8\nrepeat {n} {{ conv 3x3x8 same relu }}")):
        texts = {n: make(n) for n in sizes}
        runs = {n: [] for n in sizes}
        for _ in range(5):  # round-robin over the sizes: drift hits them all alike
            for n in sizes:
                runs[n].append(median_time(lambda: analyse(load(texts[n], limits=lim)), 1))
        times = {n: statistics.median(runs[n]) for n in sizes}
        CURVE[form] = times
        for n in sizes:
            print(f"  {form:6s} {n:>7,} layers: {times[n]:.3f} s "
                  f"({times[n] / n * 1e6:.0f} us a layer)", flush=True)
        row(f"10,000-layer spec, {form} (parse + analyse)", times[10_000], 0, "s", "< 1 s",
            times[10_000] < 1)
        for a, b in ((1000, 10_000), (10_000, 100_000), (1000, 100_000)):
            growth = times[b] / times[a]
            bound = 12 if b // a == 10 else 144
            row(f"scaling {form}, {a:,} -> {b:,} layers: time grows", growth, 0, "x",
                f"<= {bound}x for {b // a}x layers", growth <= bound, ratio=growth)


def sweep():
    from cnncalc import load
    from cnncalc.sizes import sweep as run_sweep
    net = load(VGG.read_text().replace("input 224x224x3", "input HxWx3"))
    t = median_time(lambda: run_sweep(net, 1, 1_000_000), 5)
    row("sizes over 1,000,000 input sizes (VGG16, both axes)", t, 0, "s", "< 1 s", t < 1)


def backend():
    import torch
    import reference
    from cnncalc import analyse, load
    from cnncalc.backends.torch import Net
    torch.set_num_threads(2)
    # CUDA rows too when torch sees a GPU; each call then waits for the GPU to finish
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        done = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for name, path, model, runs in (("VGG16", VGG, reference.vgg16, 11),
                                        ("ResNet-50", R50, reference.resnet50, 15)):
            ours = Net(analyse(load(path.read_text()))).eval().to(device)
            hand = model().eval().to(device)
            x_nhwc = torch.randn(1, 224, 224, 3, device=device)
            x_nchw = x_nhwc.permute(0, 3, 1, 2).contiguous()
            with torch.no_grad():
                for _ in range(3):  # warm-up: the first calls set up kernels and memory
                    ours(x_nhwc), hand(x_nchw), done()
                t_ours, t_hand = [], []
                pair = [(t_ours, lambda: (ours(x_nhwc), done())),
                        (t_hand, lambda: (hand(x_nchw), done()))]
                for i in range(runs):  # interleaved, one then the other first (ABBA), so
                    for times, fn in pair[::1 if i % 2 else -1]:  # drift and order hit both
                        times.append(median_time(fn, 1))
            a, b = statistics.median(t_ours), statistics.median(t_hand)
            row(f"forward pass {name}, {device.upper()}, batch 1 (vs hand-written nn.Module)",
                a, b, "s", "within 5%", a <= 1.05 * b, ratio=a / b)


def curve_table() -> str:
    """Parse + analyse time by spec size: the curve behind the scaling rows."""
    sizes = sorted({n for times in CURVE.values() for n in times})
    lines = ["\n## Scaling curve (parse + analyse)\n",
             "| spec | " + " | ".join(f"{n:,} layers" for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for form, times in CURVE.items():
        cells = [f"{times[n]:.3g} s ({times[n] / n * 1e6:.0f} µs a layer)" for n in sizes]
        lines.append(f"| {form} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    import torch
    print("figure | cnncalc | peer | ratio | target | holds", flush=True)
    whole_process()
    in_process()
    scaling()
    sweep()
    backend()
    head = "| figure | cnncalc | peer | ratio | target | holds |\n|---|---:|---:|---:|---|---|\n"
    table = head + "\n".join("| " + " | ".join(r) + " |" for r in ROWS)
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"torch {torch.__version__}, {platform.platform()}")
    text = (f"# Benchmarks\n\nThe latest `make bench`, run on {time.strftime('%Y-%m-%d')}: "
            f"{machine}. Times are medians of repeated runs, measured side by side in one run; "
            "the ratio is the peer's figure over ours (or ours over the reference where the "
            "target is a bound). This machine's speed varies by up to 2x between runs minutes "
            "apart (CPU time rises with wall time: it runs slower rather than waiting), so "
            "single figures near a target can flip; ratios taken side by side are steadier, "
            "and the notes below give the ranges seen over many runs.\n\n" + table + "\n"
            + curve_table())
    notes = ROOT / "bench" / "notes.md"  # kept by hand: the analysis behind the figures
    if notes.exists():
        text += "\n" + notes.read_text()
    (ROOT / "BENCHMARKS.md").write_text(text)
    print("\n" + table)


if __name__ == "__main__":
    main()
