"""Strict UTF-8 decoding of users' text files, with the line and column of a bad byte.

Users' files (captions and chat JSONL, corpus text) are training data: silently turning
undecodable bytes into U+FFFD would teach the model garbage, so they must be UTF-8 and
a file that is not is an error a user can act on (``iconv -f latin1 -t utf-8``).
"""

from __future__ import annotations

import os
from pathlib import Path


def decode_utf8(raw: bytes, where: str, first_line: int = 1) -> str:
    """``raw`` decoded as UTF-8 (a leading byte-order mark dropped).

    Raises:
        ValueError: ``"<where>:<line>: not UTF-8 text (byte 0x.. at column N)"``;
            lines count from ``first_line``.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(
            f"{where}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); "
            "convert the file to UTF-8, e.g. with iconv"
        ) from None


def read_utf8(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file; FileNotFoundError or the ValueError of :func:`decode_utf8`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    return decode_utf8(path.read_bytes(), str(path))
