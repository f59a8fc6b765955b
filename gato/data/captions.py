"""Caption data sets: images with one caption each.

Three kinds:
- procedural scenes (``gato.data.scenes``), written as ``.npz`` shards for fixed
  evaluation sets (training can also draw them on the fly);
- Fashion-MNIST from Debian's ``dataset-fashion-mnist``: 28x28 grey images with a
  caption built from the label ("a photo of a sneaker"); its train/test split is kept
  so zero-shot classification can be measured on the test half;
- users' own: a JSONL file of ``{"image": path, "caption": text}`` lines, image paths
  relative to the JSONL file's folder (or absolute).

A built ``.npz`` caption set holds ``images`` uint8 (N, H, W, 3) or (N, H, W) and
``captions`` (N,) unicode; it may hold more per-example arrays (``labels``, ``scenes``).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gato.atomic import fsync_replace
from gato.data import scenes
from gato.data.jsonl import iter_jsonl
from gato.tokenizers.image import check_image, load_image

FASHION_CLASSES = (
    "t-shirt", "pair of trousers", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm")


def fashion_caption(label: int) -> str:
    name = FASHION_CLASSES[label]
    return f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name}"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format, gzip or plain) of unsigned bytes."""
    path = Path(path)
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def read_fashion_mnist(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the ``train`` or ``test`` split."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"fashion-mnist split must be 'train' or 'test', got {split!r}")
    d = Path(directory)
    images = read_idx(d / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(d / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{d}: {len(images)} images but {len(labels)} labels in {split}")
    return images, labels


def scene_arrays(split: str, n: int, seed: int, image_size: int, progress=None) -> dict:
    """The first ``n`` examples of a scene split as arrays for an ``.npz`` caption set."""
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)  # (N, H, W, 3)
    caps, descs = [], []
    for i in range(n):
        ex = scenes.example(split, i, seed, image_size)
        images[i] = ex.image
        caps.append(ex.caption)
        descs.append(json.dumps(ex.scene.to_dict(), sort_keys=True))
        if progress is not None:
            progress.update(1)
    return {"images": images, "captions": np.array(caps), "scenes": np.array(descs)}


def save_caption_set(path: str | os.PathLike, arrays: dict) -> None:
    """Write a caption set as a compressed ``.npz`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    fsync_replace(tmp, path)


def load_caption_set(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a built caption set; checks it has matching ``images`` and ``captions``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption set not found: {path} (build it with `gato data ...`)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if "images" not in out or "captions" not in out or len(out["images"]) != len(out["captions"]):
        raise ValueError(f"{path}: not a caption set (needs images and captions of equal length)")
    return out


@dataclass(frozen=True)
class CaptionRecord:
    image: Path  # absolute
    caption: str


def read_caption_jsonl(path: str | os.PathLike) -> list[CaptionRecord]:
    """Read users' ``{"image": path, "caption": text}`` lines, checking every image exists.

    Relative image paths are taken from the JSONL file's folder. A malformed line or an
    unreadable image is a ValueError and a missing image a FileNotFoundError, each naming
    file and line.
    """
    path = Path(path)
    out = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        extra = set(obj) - {"image", "caption"}
        if extra or "image" not in obj or "caption" not in obj:
            raise ValueError(f"{where}: expected keys 'image' and 'caption', got {sorted(obj)}")
        image, cap = obj["image"], obj["caption"]
        if not isinstance(image, str) or not image:
            raise ValueError(f"{where}: 'image' must be a non-empty path string")
        if not isinstance(cap, str) or not cap.strip():
            raise ValueError(f"{where}: 'caption' must be a non-empty string")
        img = Path(image) if Path(image).is_absolute() else path.parent / image
        if not img.is_file():
            raise FileNotFoundError(f"{where}: image not found: {img}")
        if img.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{where}: {img} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
        try:
            check_image(img)  # the header only: a readable image of a sane size
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        out.append(CaptionRecord(img.resolve(), cap.strip()))
    return out


def iter_caption_images(records: list[CaptionRecord]) -> Iterator[tuple[np.ndarray, str]]:
    """Load each record's image as uint8 (H, W, 3) RGB (the policy of ``load_image``)."""
    for r in records:
        yield load_image(r.image), r.caption
