"""Plain-text corpus from offline sources, one paragraph per line.

One paragraph per line is what SentencePiece trains on (a line is a "sentence"),
and it keeps every source's file greppable. Sources: the Debian text packages of
``gato.data.sources``, the project's own docs, and any text files a user passes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gato.atomic import fsync_replace
from gato.data import sources
from gato.data.utf8 import read_utf8


def fortune_lines(directory: Path) -> Iterator[str]:
    for path in sources.fortune_files(directory):
        for entry in sources.fortune_entries(path):
            line = sources.collapse(entry)
            if line:
                yield line


def jargon_lines(path: Path) -> Iterator[str]:
    yield from sources.paragraphs(sources.read_text(path))


def debian_faq_lines(path: Path) -> Iterator[str]:
    yield from sources.paragraphs(sources.read_text(path))


def python_docs_lines(directory: Path) -> Iterator[str]:
    """Paragraphs of every ``.rst.txt`` source of the Python docs, markup lightened."""
    for path in sorted(Path(directory).rglob("*.rst.txt")):
        text = sources.rst_to_text(sources.read_text(path))
        for para in sources.paragraphs(text):
            if not set(para) <= set("=-~^\"'`#*+ "):  # drop heading underlines
                yield para


def text_file_lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Paragraphs of users' (or the project's) text files, which must be UTF-8.

    FileNotFoundError names a missing file, ValueError the line of a non-UTF-8 byte.
    """
    for p in paths:
        yield from sources.paragraphs(read_utf8(p))


def project_docs() -> list[Path]:
    """README.md and DESIGN.md of the source tree, if this is a checkout (not a wheel)."""
    root = Path(__file__).resolve().parents[2]
    return [p for p in (root / "README.md", root / "DESIGN.md") if p.is_file()]


def default_builders() -> dict[
    str, tuple[sources.Source | None, Callable[[Path | None], Iterator[str]]]
]:
    """Name -> (source it needs or None, lines(path)) for the default corpus."""
    return {
        "fortunes": (sources.FORTUNES, fortune_lines),
        "wordnet": (sources.WORDNET, sources.wordnet_glosses),
        "gcide": (sources.GCIDE, sources.gcide_paragraphs),
        "jargon": (sources.JARGON, jargon_lines),
        "debian-faq": (sources.DEBIAN_FAQ, debian_faq_lines),
        "python-docs": (sources.PYTHON_DOCS, python_docs_lines),
        "project-docs": (None, lambda _: text_file_lines(project_docs())),
    }


def write_lines(path: Path, lines: Iterable[str]) -> dict:
    """Write lines to a UTF-8 file atomically; return {"lines", "words", "bytes"}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n_lines = n_words = 0
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
            n_lines += 1
            n_words += len(line.split())
    fsync_replace(tmp, path)
    return {"lines": n_lines, "words": n_words, "bytes": path.stat().st_size}
