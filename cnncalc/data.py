"""Reading real inputs for ``cnncalc run``: an image (Pillow), a ``.npy`` array, or a
small text grid. Arrays come back channels last, axes in the spec's order; for
images the first axis is the width, as in the lecture notes (443x592 is 443 wide)."""

from __future__ import annotations

from math import prod
from pathlib import Path

from .errors import CnnCalcError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def parse_grid(text: str, where: str = "grid"):
    """'0 10 9 / 4 3 2' or one row per line → a 2-D float array."""
    import numpy as np
    rows = [r for r in text.replace("/", "\n").split("\n") if r.strip()]
    try:
        values = [[float(v) for v in r.replace(",", " ").split()] for r in rows]
    except ValueError as e:
        raise CnnCalcError(f"{where}: expected numbers separated by spaces ({e})") from None
    if not values or len({len(r) for r in values}) != 1:
        raise CnnCalcError(f"{where}: every row of the grid needs the same number of values")
    return np.array(values)


def read_input(path: str, shape: tuple, resize: bool = False):
    """The array for a spec whose input is ``shape`` (spatial sizes, then channels)."""
    import numpy as np
    p = Path(path)
    if not p.exists() or p.is_dir():
        raise CnnCalcError(f"--input {path}: no such file")
    suffix = p.suffix.lower()
    values = prod(shape)
    # never read far more than the input can hold: 8 bytes a value (.npy), 64 (text)
    per_value = 8 if suffix == ".npy" else 64
    if suffix not in IMAGE_SUFFIXES and p.stat().st_size > per_value * values + 65536:
        raise CnnCalcError(f"--input {path}: the file is {p.stat().st_size:,} bytes, far more than "
                           f"the spec's input ({'x'.join(map(str, shape))}) can hold")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise CnnCalcError(f"--input {path}: not a plain .npy array ({e})") from None
    elif suffix in IMAGE_SUFFIXES:
        arr = _image(p, shape, resize)
    else:
        arr = parse_grid(p.read_text(errors="replace"), f"--input {path}")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == len(shape) - 1:
        arr = arr[..., None]  # a grid or grey image: one channel
    if tuple(arr.shape) != tuple(shape):
        want = "x".join(map(str, shape))
        raise CnnCalcError(f"--input {path}: its shape is {'x'.join(map(str, arr.shape))}, the "
                           f"spec's input is {want}" + ("; add --resize for an image" if suffix in
                                                        IMAGE_SUFFIXES else ""))
    return arr


def _image(p: Path, shape: tuple, resize: bool):
    import numpy as np
    from PIL import Image, UnidentifiedImageError
    if len(shape) != 3:
        raise CnnCalcError(f"--input {p}: an image needs a 2-D input such as 443x592x3")
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(p)
            img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise CnnCalcError(f"--input {p}: cannot read the image ({e})") from None
    img = img.convert("L" if shape[-1] == 1 else "RGB")
    if img.size != (shape[0], shape[1]):
        if not resize:
            raise CnnCalcError(f"--input {p}: the image is {img.size[0]}x{img.size[1]} (width x "
                               f"height), the spec's input is {shape[0]}x{shape[1]}; add --resize "
                               "to resize it")
        img = img.resize((shape[0], shape[1]))
    arr = np.asarray(img, dtype=np.float32) / 255.0  # (height, width[, channels])
    return arr.swapaxes(0, 1)  # (width, height[, channels]): the spec's axis order
