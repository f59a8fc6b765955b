"""Durable atomic replacement of a finished temporary file.

Writers put their output in a temporary file in the destination's folder, then call
:func:`fsync_replace`: the data reaches the disk before the rename, and the rename
before the function returns, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``tmp``, rename it over ``path`` (same folder), fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
