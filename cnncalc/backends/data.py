"""Reading real inputs for ``cnncalc run``: an image (Pillow), a ``.npy`` array, or a
small text grid. Every one is a picture: rows first, as it looks on the page (a text grid's
lines are the picture's rows; a .npy array is (rows, columns[, channels]), as NumPy and
Pillow hold images). The spec writes the width first (443x592 is 443 wide, 592 high), so
its picture is 592 rows of 443."""

from __future__ import annotations

from math import prod
from pathlib import Path

from ..errors import CnnCalcError
from ..layers.base import picture

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


def picture_shape(shape: tuple) -> tuple:
    """The spec's input (width first) as an array shape (rows first)."""
    shape = tuple(shape)
    return (*picture(shape[:-1]), shape[-1]) if shape else shape


def read_input(path: str, shape: tuple, resize: bool = False):
    """The array (rows first, channels last) for a spec whose input is ``shape``."""
    import numpy as np
    p = Path(path)
    if not p.exists() or p.is_dir():
        raise CnnCalcError(f"--data {path}: no such file")
    suffix = p.suffix.lower()
    values = prod(shape)
    # never read far more than the input can hold: 8 bytes a value (.npy), 64 (text)
    per_value = 8 if suffix == ".npy" else 64
    if suffix not in IMAGE_SUFFIXES and p.stat().st_size > per_value * values + 65536:
        raise CnnCalcError(f"--data {path}: the file is {p.stat().st_size:,} bytes, far more than "
                           f"the spec's input ({'x'.join(map(str, shape))}) can hold")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise CnnCalcError(f"--data {path}: not a plain .npy array ({e})") from None
    elif suffix in IMAGE_SUFFIXES:
        arr = _image(p, shape, resize)
    else:
        arr = parse_grid(p.read_text(errors="replace"), f"--data {path}")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == len(shape) - 1:
        arr = arr[..., None]  # a grid or grey image: one channel
    want = picture_shape(shape)
    if tuple(arr.shape) != want:
        raise CnnCalcError(f"--data {path}: the array is {'x'.join(map(str, arr.shape))} (rows "
                           f"first), the spec's input {'x'.join(map(str, shape))} (width first) "
                           f"needs {'x'.join(map(str, want))}"
                           + ("; add --resize for an image" if suffix in IMAGE_SUFFIXES else ""))
    return arr


def _image(p: Path, shape: tuple, resize: bool):
    import numpy as np
    from PIL import Image, UnidentifiedImageError
    if len(shape) != 3:
        raise CnnCalcError(f"--data {p}: an image needs a 2-D input such as 443x592x3")
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(p)
            img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise CnnCalcError(f"--data {p}: cannot read the image ({e})") from None
    img = img.convert("L" if shape[-1] == 1 else "RGB")
    if img.size != (shape[0], shape[1]):
        if not resize:
            raise CnnCalcError(f"--data {p}: the image is {img.size[0]}x{img.size[1]} (width x "
                               f"height), the spec's input is {shape[0]}x{shape[1]}; add --resize "
                               "to resize it")
        img = img.resize((shape[0], shape[1]))
    return np.asarray(img, dtype=np.float32) / 255.0  # (height, width[, channels])
