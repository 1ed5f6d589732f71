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


def user_install() -> str:
    """A Python with cnncalc installed from a wheel in a venv of its own, as a user gets it
    (pip byte-compiles a wheel; an editable install would time the compiler and its path
    finder, not cnncalc)."""
    import tempfile
    home = Path(tempfile.mkdtemp(prefix="cnncalc-bench-"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(home),
                    str(ROOT)], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    py = str(home / "venv" / "bin" / "python")
    wheel = next(home.glob("cnncalc-*.whl"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True)
    return py


def whole_process():
    py = user_install()
    cli = str(Path(py).parent / "cnncalc")
    long = Path("/tmp/cnncalc_bench_10000.cnn")  # a long generated spec, written each run
    long.write_text("input 64x64x16\n" + "conv 3x3x16 same relu\n" * 10_000)
    commands = {
        "pass": [py, "-c", "pass"],
        "click": [py, "-c", "import click"],
        "ours": [str(Path(py).parent / "cnncalc"), "summary", str(VGG)],  # the script users run
        "json": [str(Path(py).parent / "cnncalc"), "summary", str(VGG), "--format", "json"],
        "torchinfo": [sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); import "
                      "torchinfo, reference; torchinfo.summary(reference.vgg16(), (1, 3, 224, 224))"],
    }
    for form in ("table", "json", "csv"):
        commands[f"long {form}"] = [cli, "summary", str(long), "--format", form]
    import importlib.util
    if importlib.util.find_spec("keras"):  # installed by the bench extra; run on torch
        commands["keras"] = [sys.executable, "-c", "import keras; keras.applications.VGG16("
                             "weights=None).summary()"]
    else:
        print("keras not installed: not measured")
    m = processes(commands, runs=11)
    (t_pass, _), (t_ours, m_ours), (t_ti, m_ti) = m["pass"], m["ours"], m["torchinfo"]
    row("summary VGG16, whole process (vs torchinfo: import torch, build, summary)", t_ours,
        t_ti, "s", ">= 30x faster", t_ti / t_ours >= 30)
    row("summary VGG16, whole process (vs python -c pass)", t_ours, t_pass, "s",
        "<= 7x python start", t_ours / t_pass <= 7, ratio=t_ours / t_pass)
    row("floor: import click (vs python -c pass)", m["click"][0], t_pass, "s", "(reference)",
        None, ratio=m["click"][0] / t_pass)
    row("summary VGG16 --format json, whole process (vs python -c pass)", m["json"][0], t_pass,
        "s", "(pays for pydantic)", None, ratio=m["json"][0] / t_pass)
    for form in ("table", "json", "csv"):
        t = m[f"long {form}"][0]
        row(f"summary of a 10,000-layer spec --format {form}, whole process", t, 0, "s",
            "< 1 s", t < 1)
    row("summary VGG16, peak memory (vs torchinfo)", m_ours, m_ti, "MiB", "< 60 MiB", m_ours < 60)
    if "keras" in m:
        row("summary VGG16, whole process (vs Keras 3 on torch: import, build, summary)",
            t_ours, m["keras"][0], "s", "faster", m["keras"][0] > t_ours)


def in_process():
    import torch
    import torchinfo
    import reference
    from cnncalc import analyse, parse as load
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
    # a design search: the same spec with other numbers, 1,000 variants in one process
    text = VGG.read_text()
    variants = [text.replace("x64 ", f"x{32 + i % 64} ").replace("dense 4096", f"dense {1024 + i}")
                for i in range(1000)]
    t = time.perf_counter()
    for v in variants:
        analyse(load(v))
    per = (time.perf_counter() - t) / len(variants)
    row("1,000 variants of VGG16 (other widths), parse + analyse, per variant", per, 0, "s",
        "(reference)", None)


def scaling():
    from cnncalc import analyse, parse as load
    from cnncalc.language.expand import Limits
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
    from cnncalc import parse as load
    from cnncalc.analysis.sizes import sweep as run_sweep
    net = load(VGG.read_text().replace("input 224x224x3", "input WxHx3"))
    t = median_time(lambda: run_sweep(net, 1, 1_000_000), 5)
    row("sizes over 1,000,000 input sizes (VGG16, both axes)", t, 0, "s", "< 1 s", t < 1)


def backend(devices=None):
    import torch
    import reference
    from cnncalc import analyse, parse as load
    from cnncalc.backends.torch import Net
    torch.set_num_threads(2)
    # CUDA rows too when torch sees a GPU; each call then waits for the GPU to finish
    devices = devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        done = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for name, path, model, runs in (("VGG16", VGG, reference.vgg16, 11),
                                        ("ResNet-50", R50, reference.resnet50, 15)):
            ours = Net(analyse(load(path.read_text()))).eval().to(device)
            hand = model().eval().to(device)
            for batch in (1, 8):
                x_nhwc = torch.randn(batch, 224, 224, 3, device=device)
                x_nchw = x_nhwc.permute(0, 3, 1, 2).contiguous()
                with torch.no_grad():
                    for _ in range(3):  # warm-up: the first calls set up kernels and memory
                        ours(x_nhwc), hand(x_nchw), done()
                    t_ours, t_hand, ratios = [], [], []
                    for i in range(2 * runs if batch == 1 else runs):
                        # pairs back to back, one then the other first (ABBA): the machine's
                        # drift hits both; the median of the pairs' ratios is the steady figure
                        first, second = ((ours, x_nhwc), (hand, x_nchw))[::1 if i % 2 else -1]
                        a = median_time(lambda: (first[0](first[1]), done()), 1)
                        b = median_time(lambda: (second[0](second[1]), done()), 1)
                        mine, theirs = (a, b) if first[0] is ours else (b, a)
                        t_ours.append(mine)
                        t_hand.append(theirs)
                        ratios.append(mine / theirs)
                a, b, r = statistics.median(t_ours), statistics.median(t_hand), statistics.median(ratios)
                row(f"forward pass {name}, {device.upper()}, batch {batch} (vs an expert's "
                    "nn.Module: in-place ReLU, out += identity; median of paired ratios)", a, b,
                    "s", "within 3%", r <= 1.03, ratio=r)


def training_speed(devices=None, size=128, batch=8, runs=9):
    """A training step (forward, backward, SGD's step) of the module cnncalc builds from
    specs/resnet50.cnn against the hand-written one, pairs back to back in both orders."""
    import torch
    import reference
    from cnncalc import analyse, parse as load
    from cnncalc.backends.torch import Net
    torch.set_num_threads(2)
    devices = devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        done = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        ours = Net(analyse(load(R50.read_text()))).train().to(device)
        hand = reference.resnet50().train().to(device)
        x_nhwc = torch.randn(batch, size, size, 3, device=device)
        x_nchw = x_nhwc.permute(0, 3, 1, 2).contiguous()

        def step(net, x, opt):
            net(x).sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done()
        pairs = [(ours, x_nhwc, torch.optim.SGD(ours.parameters(), lr=1e-3)),
                 (hand, x_nchw, torch.optim.SGD(hand.parameters(), lr=1e-3))]
        for _ in range(2):
            for net, x, opt in pairs:
                step(net, x, opt)
        t_ours, t_hand, ratios = [], [], []
        for i in range(runs):
            order = pairs if i % 2 else pairs[::-1]
            times = {id(net): median_time(lambda: step(net, x, opt), 1) for net, x, opt in order}
            t_ours.append(times[id(ours)])
            t_hand.append(times[id(hand)])
            ratios.append(times[id(ours)] / times[id(hand)])
        r = statistics.median(ratios)
        row(f"training step ResNet-50, {device.upper()}, batch {batch} at {size}x{size} (vs the "
            "expert's nn.Module; median of paired ratios)", statistics.median(t_ours),
            statistics.median(t_hand), "s", "within 3%", r <= 1.03, ratio=r)


def sweep_speed():
    """Time a variant of 'cnncalc sweep' takes (ResNet-50 over input sizes, the spec parsed
    once) against torchinfo building and summarising the model at each size."""
    import torch
    import torchinfo
    import reference
    from cnncalc.analysis import sweep as S
    text = R50.read_text()
    sizes = list(range(64, 64 + 4096))
    t = median_time(lambda: S.sweep(text, {"input": sizes}), 3) / len(sizes)
    some = sizes[:400:100]

    def peers():
        for n in some:
            torchinfo.summary(reference.resnet50(), (1, 3, n, n), verbose=0)
    with torch.no_grad():
        t_peer = median_time(peers, 3) / len(some)
    row("sweep ResNet-50 over 4,096 input sizes, per variant (vs torchinfo: build and "
        "summary per variant)", t, t_peer, "s", ">= 1000x faster", t_peer / t >= 1000)

    # VGG16's width and input size as knobs: 64 x 16,000 variants through the lanes, the
    # scalar path on a sample of them, torchinfo building and summarising each width
    vgg = (ROOT / "bench" / "vgg16_knobs.cnn").read_text()
    vary = {"width": list(range(8, 520, 8)), "input": list(range(32, 32 + 16_000))}
    n = 64 * 16_000
    t_lanes = median_time(lambda: S.sweep(vgg, vary, where="params < 50M and macs < 5G"), 5) / n
    few = {"width": vary["width"][:16], "input": vary["input"][:15]}  # 240: the scalar loop
    t_scalar = median_time(lambda: S.sweep(vgg, few, where="params < 50M and macs < 5G"), 3) / 240
    widths = vary["width"][:4]

    def vgg_peers():
        for w in widths:
            torchinfo.summary(reference.vgg16(w), (1, 3, 224, 224), verbose=0)
    with torch.no_grad():
        t_vgg_peer = median_time(vgg_peers, 3) / len(widths)
    row("sweep VGG16 width x input (1,024,000 variants), variants a second (vs the scalar "
        "path)", 1 / t_lanes, 1 / t_scalar, "/s", ">= 1,000,000 a second", 1 / t_lanes >= 1e6,
        ratio=t_scalar / t_lanes)
    row("sweep VGG16 width x input, per variant (vs torchinfo: build and summary per width)",
        t_lanes, t_vgg_peer, "s", "(reference)", None)


def onnx_import():
    """from_onnx on ResNet-50 (100 MB of weights, opset 17), in process: shape inference
    reads the graph without the weights' data, and the weights are read only when asked."""
    import tempfile
    import warnings

    import torch
    import reference
    from cnncalc.interop.from_onnx import from_onnx
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet50.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(reference.resnet50().eval(), (torch.zeros(1, 3, 224, 224),),
                              str(path), opset_version=17, dynamo=False)
        from_onnx(path)  # warm-up: onnx's own imports
        t = median_time(lambda: from_onnx(path), 9)
    row("from_onnx(ResNet-50), in process (read, infer shapes, write the spec, analyse)", t, 0,
        "s", "< 100 ms", t < 0.1)


def torch_import():
    """from_torch on ResNet-50, in process, against torchinfo.summary on the same module:
    the model runs once on meta tensors (no weights read, nothing computed) against
    torchinfo's real forward pass; and the same model built on the meta device."""
    import torch
    import torchinfo
    import reference
    from cnncalc.interop.from_torch import from_torch
    net = reference.resnet50().eval()
    from_torch(net, "224x224x3")  # warm-up: first calls import and compile what they use
    torchinfo.summary(net, (1, 3, 224, 224), verbose=0)
    ours = median_time(lambda: from_torch(net, "224x224x3"), 15)
    peer = median_time(lambda: torchinfo.summary(net, (1, 3, 224, 224), verbose=0), 15)
    row("from_torch(ResNet-50), in process (vs torchinfo.summary on the same module)", ours,
        peer, "s", ">= 3x faster", peer / ours >= 3)
    with torch.device("meta"):
        big = reference.resnet50()
    t = median_time(lambda: from_torch(big, "224x224x3"), 15)
    row("from_torch(ResNet-50 built on the meta device), in process", t, 0, "s", "imports",
        True)


def library_imports():
    """from_torch against torchinfo.summary on the same module, a model of each library
    people train (built without weights; examples/models.py's stand-in lets torchvision's
    models build where its compiled operators do not load)."""
    import warnings

    import torch
    import torchinfo
    sys.path.insert(0, str(ROOT / "examples"))
    import models  # noqa: F401 - registers the torchvision stand-in
    import segmentation_models_pytorch as smp
    import timm
    from cnncalc.interop.from_torch import from_torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = {"timm efficientnet_b0": (timm.create_model("efficientnet_b0"), 224),
                  "timm convnext_tiny": (timm.create_model("convnext_tiny"), 224),
                  "timm dla34": (timm.create_model("dla34"), 224),
                  "timm resnest14d": (timm.create_model("resnest14d"), 224),
                  "smp Unet(resnet34)": (smp.Unet("resnet34", encoder_weights=None), 256),
                  "smp DeepLabV3+(resnet34)": (smp.DeepLabV3Plus("resnet34",
                                                                 encoder_weights=None), 256)}
    for name, (net, size) in sample.items():
        net.eval()
        shape = (1, 3, size, size)
        from_torch(net, f"{size}x{size}x3")  # warm-up
        with torch.no_grad():
            torchinfo.summary(net, shape, verbose=0)
            ours = median_time(lambda: from_torch(net, f"{size}x{size}x3"), 7)
            peer = median_time(lambda: torchinfo.summary(net, shape, verbose=0), 7)
        row(f"import {name}, in process (vs torchinfo.summary on the same module)", ours,
            peer, "s", "(reference)", None)


def server():
    """The playground under load: small requests from 4 clients, alone and while 2 clients
    keep sending heavy ones (5,000 layers with explanations); requests a second and the
    99th percentile of a small request's time."""
    import json
    import socket
    import threading
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cnncalc", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    proc.stdout.readline()  # its address: listening
    url = f"http://127.0.0.1:{port}/api/analyse"

    def post(spec, **extra):
        req = urllib.request.Request(url, json.dumps({"spec": spec, **extra}).encode(),
                                     {"Content-Type": "application/json"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as res:
            res.read()
        return time.perf_counter() - t

    small = VGG.read_text()
    heavy = "input 224x224x3\nrepeat 4999 { conv 3x3x8 same }"
    for _ in range(5):
        post(small)  # the workers start

    def load(n_clients, per_client, stop=None):
        times = []

        def client():
            for _ in range(per_client):
                times.append(post(small))
        t = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(n_clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return len(times) / (time.perf_counter() - t), sorted(times)[int(0.99 * len(times))]

    try:
        rps, p99 = load(4, 50)
        row("playground: VGG16 requests a second, 4 clients", rps, 0, "/s", "(reference)", None)
        row("playground: p99 of a VGG16 request, 4 clients", p99, 0, "s", "< 1 s", p99 < 1)
        busy = threading.Event()

        def heavy_client():
            while not busy.is_set():
                post(heavy, explain=True)
        heavies = [threading.Thread(target=heavy_client) for _ in range(2)]
        for th in heavies:
            th.start()
        time.sleep(0.5)
        rps_h, p99_h = load(4, 25)
        busy.set()
        for th in heavies:
            th.join()
        row("playground: p99 of a VGG16 request while 2 clients send 5,000-layer specs", p99_h,
            p99, "s", "< 1 s", p99_h < 1, ratio=p99_h / p99)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
    sweep_speed()
    onnx_import()
    torch_import()
    library_imports()
    server()
    backend()
    training_speed()
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
