"""Strict JSON Lines reading and writing.

Every malformed line is reported as ``ValueError("<file>:<line>: ...")`` so a
user can open the file at the right place; blank lines are allowed (editors
leave them at the end) and skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from gato.atomic import fsync_replace
from gato.data.utf8 import decode_utf8


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Line numbers start at 1. Raises FileNotFoundError if the file is missing and
    ValueError naming the file and line if a line is not UTF-8 or not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSONL file not found: {path}")
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = decode_utf8(raw, str(path), first_line=lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, obj


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write dicts as JSON Lines (UTF-8, one object per line) atomically; return the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    fsync_replace(tmp, path)
    return n
