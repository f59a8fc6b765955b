"""Durable atomic file writes: a crash leaves either the old file or the whole new one.

Writers put their output in a temporary file in the destination's folder, then call
:func:`fsync_replace`: the data reaches the disk before the rename, and the rename
before the function returns. :func:`write_atomic` does all of it for bytes in memory;
:func:`fsync_file` and :func:`fsync_dir` are the pieces, for writers that rename a
whole folder (checkpoints).

``tempfile.mkstemp``/``mkdtemp`` and safetensors' ``save_file`` create owner-only
files and folders (0600, 0700). Writers pass what they publish through
:func:`give_default_mode`, so every output has the permissions a plain ``open`` or
``mkdir`` would give it: readable by others unless the user's umask says otherwise.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _read_umask() -> int:
    # The only way to read the umask is to set it. Done once, at import: doing it per
    # write would let another thread create a file under umask 0 in between.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


def give_default_mode(path: str | os.PathLike) -> None:
    """Set a file's mode to ``0o666``, a folder's to ``0o777``, less the umask."""
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~UMASK)


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
        give_default_mode(tmp)  # mkstemp made it 0600
        fsync_replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
