"""Every kind's training step, each in a two-layer context (its own example after a
weighted layer, then a global pool so that the output is small, as a network's): the
estimate against a real step on CPU (cnncalc.backends.measure), float32 and bfloat16
autocast, SGD at batch 8. Prints the kinds off by more than 10%: the model's open work.

    python tools/training_kinds.py"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import cnncalc  # noqa: E402
from cnncalc.backends.measure import measured_step  # noqa: E402
from cnncalc.errors import CnnCalcError  # noqa: E402
from test_training import CONTEXTS, _kinds  # noqa: E402


def main():
    off = 0
    for word, example in sorted(_kinds().items()):
        for context in CONTEXTS:
            try:
                s = cnncalc.summarize(context.format(example) + " | globalavgpool")
                break
            except CnnCalcError:
                continue
        else:
            continue
        for amp in (False, True):
            dtype = "bfloat16" if amp else "float32"
            real = measured_step(s, 8, "sgd", False, dtype=dtype, amp=amp)
            est = s.memory(8, dtype, "sgd", False, amp).training_bytes
            if not 0.9 <= est / real <= 1.1:
                off += 1
                print(f"{word:14} {'amp' if amp else 'fp32'}  estimate/real {est / real:.3f}  "
                      f"{context.format(example)}", flush=True)
    print(f"{off} off by more than 10%")


if __name__ == "__main__":
    main()
