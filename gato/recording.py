"""Saving an episode's frames as an animated GIF (Pillow; no video codec needed)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gato.atomic import give_default_mode


def write_gif(
    frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 30.0, scale: int = 1
) -> Path:
    """Write uint8 frames ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` as a looping GIF.

    Args:
        frames: at least one frame, all of the same shape.
        fps: playback speed.
        scale: integer upscaling (nearest neighbour) so small frames stay visible.

    The file is written to a temporary name in the same folder and renamed, so a
    crash never leaves a half-written GIF under ``path``.
    """
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("no frames to record")
    first = np.asarray(frames[0])
    images = []
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != first.shape or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {i} is {frame.dtype}{frame.shape}; expected uint8{first.shape} like frame 0"
            )
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        if scale > 1:
            frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
        images.append(Image.fromarray(frame))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".gif.tmp")
    os.close(fd)
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps)),
            loop=0,
        )
        give_default_mode(tmp)  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
