"""Content digests of files: checkpoints' manifests and collection stores' experts."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB pieces, not all at once)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()
