"""Durable atomic file writes: a crash leaves either the old file or the whole new one.

Writers put their output in a temporary file in the destination's folder, then call
:func:`fsync_replace`: the data reaches the disk before the rename, and the rename
before the function returns. :func:`write_atomic` does all of it for bytes in memory;
:func:`fsync_file` and :func:`fsync_dir` are the pieces, for writers that rename a
whole folder (checkpoints).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``tmp``, rename it over ``path`` (same folder), fsync the folder."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`fsync_replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        fsync_replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
