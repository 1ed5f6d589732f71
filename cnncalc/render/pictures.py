"""Pictures of tensors: feature maps as PNG grids, one tile per channel (Pillow)."""

from __future__ import annotations

import math
from pathlib import Path


def _tile(arr2d, scale: int):
    """A 2-D array → 8-bit grey, stretched to its own min..max, enlarged ``scale`` times."""
    import numpy as np
    a = np.asarray(arr2d, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = (a * 255).round().astype(np.uint8)
    return np.kron(a, np.ones((scale, scale), np.uint8)) if scale > 1 else a


def map_grid(fmap, max_tiles: int = 256):
    """(spatial..., C) → one grey image with a tile per channel. Images are shown with
    the first axis across (the width, as the spec and the lecture notes write it)."""
    import numpy as np
    if fmap.ndim == 2:  # 1-D maps (length, channels): one picture, a row per channel
        fmap = fmap.T[..., None]
    if fmap.ndim == 4:  # 3-D maps: the middle slice of the first axis
        fmap = fmap[fmap.shape[0] // 2]
    w, h, c = fmap.shape
    c = min(c, max_tiles)
    scale = max(1, 64 // max(w, h))
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    tw, th, gap = w * scale, h * scale, 2
    canvas = np.full((rows * (th + gap) + gap, cols * (tw + gap) + gap), 255, np.uint8)
    for k in range(c):
        r, q = divmod(k, cols)
        tile = _tile(fmap[:, :, k].T, scale)  # rows of the picture are the second axis
        canvas[gap + r * (th + gap):gap + r * (th + gap) + th,
               gap + q * (tw + gap):gap + q * (tw + gap) + tw] = tile
    return canvas


def save_maps(outputs: list, directory: str) -> list[str]:
    """Write one PNG per layer with a spatial output; returns the paths."""
    from ..files import folder
    folder(directory, "--maps")
    out = Path(directory)
    paths = []
    for index, name, fmap in outputs:
        if fmap.ndim < 2:
            continue
        path = out / f"{index:03d}_{name}.png"
        write_png(map_grid(fmap), str(path), "--maps")
        paths.append(str(path))
    return paths


def write_png(pixels, path: str, what: str = "-o") -> None:
    """An array of pixels as a PNG file, written whole or not at all."""
    import io

    from PIL import Image

    from ..files import write
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    write(path, buffer.getvalue(), what)
