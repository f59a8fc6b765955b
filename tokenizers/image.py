"""Images to patches: the model embeds these with a ResNet block, not as vocabulary ids.

Policy (paper, DESIGN.md):

1. **Fit** the image to a size divisible by the patch size ``p``:
   - ``size=(H, W)`` given: resize to exactly that (both multiples of ``p``); this is
     how arbitrary user images (1x1 or 10000x10000) get a bounded number of patches;
   - otherwise ``fit="resize"`` (default) resizes each side to the nearest multiple
     of ``p`` (at least ``p``), and ``fit="crop"`` centre-crops each side down to a
     multiple of ``p`` (an image smaller than one patch is an error).
   Shrinking uses area averaging, enlarging bilinear interpolation (OpenCV).
2. **Cut** non-overlapping ``p x p`` patches in raster order (left to right, then
   top to bottom).
3. **Normalise** pixels ``[0, 255] -> [-1, 1]``, then divide by ``sqrt(p)`` (paper).

Patch positions: each patch's normalised row and column interval, quantised into
``resolution`` (paper: 128) bins, from :func:`patch_intervals`; the model samples a
position inside the interval when training and uses its mean when evaluating.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

FITS = ("resize", "crop")


class ImageTokenizer:
    """Images ``(H, W)`` or ``(H, W, C)``, uint8 in [0, 255] or float in [0, 1], to patches.

    Args:
        patch_size: side ``p`` of the square patches (paper: 16).
        size: optional ``(H, W)`` every image is resized to first; multiples of ``p``.
        fit: how to reach a multiple of ``p`` when ``size`` is not given: "resize" or "crop".
    """

    def __init__(
        self, patch_size: int = 16, size: tuple[int, int] | None = None, fit: str = "resize"
    ) -> None:
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
        if size is not None:
            if len(size) != 2 or any(s < patch_size or s % patch_size for s in size):
                raise ValueError(
                    f"size {tuple(size)} must be two multiples of the patch size {patch_size}"
                )
            size = (int(size[0]), int(size[1]))
        self.patch_size = patch_size
        self.size = size
        self.fit = fit

    def fitted_shape(self, h: int, w: int) -> tuple[int, int]:
        """The ``(H, W)`` an ``h x w`` image has after the fit policy."""
        p = self.patch_size
        if self.size is not None:
            return self.size
        if self.fit == "resize":
            return max(p, round(h / p) * p), max(p, round(w / p) * p)
        if h < p or w < p:
            raise ValueError(f"image {h}x{w} is smaller than one {p}x{p} patch; use fit='resize'")
        return (h // p) * p, (w // p) * p

    def grid(self, h: int, w: int) -> tuple[int, int]:
        """``(rows, cols)`` of patches for an ``h x w`` input image."""
        fh, fw = self.fitted_shape(h, w)
        return fh // self.patch_size, fw // self.patch_size

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Image -> float32 patches ``(rows * cols, C, p, p)`` in raster order.

        Values lie in ``[-1/sqrt(p), 1/sqrt(p)]``.
        """
        x = _as_unit_float(image)  # (H, W, C) float32 in [0, 1]
        x = self._fit(x)  # (H', W', C), multiples of p
        p = self.patch_size
        h, w, c = x.shape
        x = x.reshape(h // p, p, w // p, p, c)  # (rows, p, cols, p, C)
        x = x.transpose(0, 2, 4, 1, 3)  # (rows, cols, C, p, p)
        x = x.reshape(-1, c, p, p)  # (N, C, p, p), raster order
        return ((x * 2.0 - 1.0) / math.sqrt(p)).astype(np.float32)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        h, w, c = x.shape
        th, tw = self.fitted_shape(h, w)
        if (th, tw) == (h, w):
            return x
        if self.size is None and self.fit == "crop":
            top, left = (h - th) // 2, (w - tw) // 2
            return x[top : top + th, left : left + tw]
        interp = cv2.INTER_AREA if th * tw < h * w else cv2.INTER_LINEAR
        out = cv2.resize(x, (tw, th), interpolation=interp)
        return out.reshape(th, tw, c)  # cv2 drops a trailing channel axis of size 1


def patch_intervals(
    rows: int, cols: int, resolution: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quantised position intervals of each patch, in raster order.

    Patch ``(i, j)`` covers rows ``[i/rows, (i+1)/rows)`` of the unit square; that
    interval is quantised to ``[floor(i/rows*R), floor((i+1)/rows*R))`` with
    ``R = resolution`` (and at least one bin wide).

    Returns:
        ``row_lo, row_hi, col_lo, col_hi``: int64 arrays of length ``rows * cols``;
        ``hi`` is exclusive and ``hi > lo``.
    """
    if rows < 1 or cols < 1 or resolution < 1:
        raise ValueError(f"need rows, cols, resolution >= 1, got {rows}, {cols}, {resolution}")

    def intervals(n: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(n)
        lo = (i * resolution) // n
        hi = np.maximum(((i + 1) * resolution) // n, lo + 1)
        return lo.astype(np.int64), np.minimum(hi, resolution).astype(np.int64)

    r_lo, r_hi = intervals(rows)
    c_lo, c_hi = intervals(cols)
    # Raster order: the row index varies slowest.
    return (np.repeat(r_lo, cols), np.repeat(r_hi, cols), np.tile(c_lo, rows), np.tile(c_hi, rows))


# Loading policy for users' image files. Pillow's decompression-bomb guard warns above
# ~89M pixels and refuses above ~179M; we set our own limit instead, deliberately above
# a 10000x10000 photo (100M) and below the point where decoding alone needs > ~0.5 GB.
MAX_PIXELS = 1 << 27  # 134,217,728 pixels, e.g. 11585 x 11585
# Every model input is far smaller than this, so larger images are shrunk by an integer
# factor (box average, like the tokenizer's area resize) while loading: a 10000x10000
# PNG then costs one decode (~0.4 GB, briefly) instead of ~3 GB of RGB and float copies.
MAX_SIDE = 2048


def load_image(path: str | Path, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Read an image file (PNG, JPEG, ... via Pillow) as uint8 ``(H, W, 3)`` RGB.

    An image with a side above ``max_side`` comes back shrunk by the smallest integer
    factor that brings its longer side to ``<= max_side`` (None: full size); the
    tokenizer's fit policy then resizes it as usual.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a directory, not an image Pillow can read, or more than
            :data:`MAX_PIXELS` pixels.
    """
    from PIL import Image

    with _open_image(path) as im:
        try:
            w, h = im.size
            if max_side is not None and max(w, h) > max_side:
                scale = max_side / max(w, h)
                im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))  # JPEG only
                if im.mode not in ("RGB", "L"):
                    im = im.convert("RGB")  # reduce() does not take every mode
                factor = math.ceil(max(im.size) / max_side)
                if factor > 1:
                    im = im.reduce(factor)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"{path} is not a readable image ({exc})") from None


def check_image(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header alone; raises like :func:`load_image`."""
    with _open_image(path) as im:
        return im.size[1], im.size[0]


def _open_image(path: str | Path):
    """``Image.open`` (reads the header only) with clear errors and the pixel limit."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise ValueError(
            f"{path}: the image is too large (over {MAX_PIXELS:,} pixels); shrink it first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable image ({exc})") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise ValueError(
            f"{path}: a {w}x{h} image is too large ({w * h:,} pixels, the limit is "
            f"{MAX_PIXELS:,}); shrink it first"
        )
    return im


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """Validate an image array and return it as float32 ``(H, W, C)`` in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    h, w, c = image.shape
    if h == 0 or w == 0 or c == 0:
        raise ValueError(f"image has an empty dimension: {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype.kind == "f":
        x = image.astype(np.float32)
        if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError("float images must be finite and inside [0, 1]")
        return x
    raise ValueError(f"image dtype must be uint8 or float, got {image.dtype}")
