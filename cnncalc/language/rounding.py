"""How a fraction (a width multiplier times channels) becomes a whole number: ceil, floor,
round (a half up) and div8 (MobileNet's channel rule), exact on fractions and lane by lane
on a sweep's arrays."""

from __future__ import annotations

import math


def _div8(v) -> int:
    """MobileNet's and EfficientNet's channel rule (torchvision's _make_divisible(v, 8)): the
    nearest multiple of 8, at least 8, and never more than 10% below v."""
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


# ways a fraction (a width multiplier times channels) becomes a whole number; exact on
# fractions (math's ceil and floor of a Fraction are), and round takes a half up
ROUNDING = {"ceil": math.ceil, "floor": math.floor,
            "round": lambda v: math.floor(2 * v + 1) // 2, "div8": _div8}


def rounded(name: str, v):
    import numpy as np
    if v.dtype == object:  # fractions: each lane by the exact rule
        return np.array([ROUNDING[name](x) for x in v], dtype=np.int64)
    if v.dtype.kind == "f":  # the float shadow a sweep checks its integers against
        return {"ceil": np.ceil, "floor": np.floor, "round": lambda x: np.floor(2 * x + 1) // 2,
                "div8": div8_lanes}[name](v)
    return div8_lanes(v) if name == "div8" else v  # whole numbers round to themselves


def div8_lanes(v):
    import numpy as np
    new = np.maximum(8, (v + 4) // 8 * 8)
    return new + 8 * (new < 0.9 * v)
