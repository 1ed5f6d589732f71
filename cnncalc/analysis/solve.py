"""Small inverse questions: which windows (kernel, stride, padding, dilation) take an input
size to an output size, by the calculator's own window rule (``window_axis``, the one conv
and pooling use), each with whether it is exact (no input row left unused) and its cost."""

from __future__ import annotations

from ..errors import CnnCalcError
from ..layers import RuleError
from ..layers.window import window_axis


def windows(n: int, m: int, kernels=range(1, 8), strides=range(1, 5),
            dilations=range(1, 4)) -> list[dict]:
    """Every window taking ``n`` to ``m``: padding 'valid', 'same' or 0 to k // 2 a side;
    exact ones first, then by kernel, stride, dilation."""
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= m and 1 <= n <= 10**9):
        raise CnnCalcError(f"solve: sizes from 1 (to 10^9), received {n} and {m}")
    found = []
    for k in kernels:
        for s in strides:
            for d in dilations:
                if d > 1 and k == 1:
                    continue
                for pad in ("valid", "same", *range(1, d * (k - 1) // 2 + 1)):
                    try:
                        out, before, after, dropped = window_axis(n, k, s, d, pad, False,
                                                                  "width", None)
                    except RuleError:
                        continue
                    if out == m:
                        found.append({"kernel": k, "stride": s, "dilation": d,
                                      "padding": pad if isinstance(pad, str) else f"pad {pad}",
                                      "pads": (before, after), "exact": dropped == 0})
    found.sort(key=lambda w: (not w["exact"], w["kernel"], w["stride"], w["dilation"]))
    return found
