"""The training step's peak of every zoo spec: cnncalc's estimate against a real step on
CPU (cnncalc.backends.measure), tensors only and with the convolution library's scratch
space, at the sizes tests/test_training.py uses. Prints one line per spec and setting:

    python tools/training_peaks.py [SPEC ...]"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import cnncalc  # noqa: E402
from cnncalc.backends.measure import measured_step  # noqa: E402
from test_training import SIZES  # noqa: E402

SETTINGS = [("sgd", 2, False, "float32"), ("adam", 8, False, "float32"),
            ("adamw", 8, True, "float32"), ("sgd", 8, False, "bfloat16")]


def main(names):
    names = names or sorted(p.stem for p in (ROOT / "specs").glob("*.cnn"))
    print(f"{'spec':20} {'setting':24} {'estimate':>10} {'tensors':>10} {'ratio':>6} "
          f"{'+scratch':>10} {'ratio':>6}")
    for name in names:
        s = cnncalc.summarize(ROOT / "specs" / f"{name}.cnn", input=SIZES.get(name))
        for optimizer, batch, foreach, dtype in SETTINGS:
            est = s.memory(batch, dtype, optimizer, foreach).training_bytes
            real = measured_step(s, batch, optimizer, foreach, dtype=dtype)
            whole = measured_step(s, batch, optimizer, foreach, workspace=True, dtype=dtype)
            setting = f"{optimizer}{' foreach' if foreach else ''} b{batch} {dtype}"
            print(f"{name:20} {setting:24} {est / 2**20:9.2f}M {real / 2**20:9.2f}M "
                  f"{est / real:6.3f} {whole / 2**20:9.2f}M {est / whole:6.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
