"""Offline text sources: where each lives once installed, the package that ships it,
its licence, and readers for its on-disk format.

Nothing here downloads anything. Every source is a Debian package; ``make
data-sources`` installs them all. A missing source raises FileNotFoundError naming
the apt package to install, never a bare "No such file".

Readers take explicit paths (tests run them on tiny fixtures in the same formats)
and return plain text: paragraphs with whitespace collapsed, or question/answer
pairs.
"""

from __future__ import annotations

import glob
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One offline source: a path (glob allowed) inside a Debian package."""

    name: str
    package: str  # apt package(s) that ship it, space separated
    pattern: str  # absolute path or glob; the last match (sorted) is used
    licence: str
    description: str

    def locate(self, root: str | Path = "/") -> Path | None:
        """The installed path, or None if the package is not installed."""
        matches = sorted(glob.glob(str(Path(root) / self.pattern.lstrip("/"))))
        return Path(matches[-1]) if matches else None

    def require(self, root: str | Path = "/") -> Path:
        """The installed path; FileNotFoundError saying how to install it if missing."""
        path = self.locate(root)
        if path is None:
            raise FileNotFoundError(
                f"offline source {self.name!r} not found at {self.pattern}: install it with "
                f"`apt-get install {self.package}` (or `make data-sources` for all of them)"
            )
        return path


FORTUNES = Source(
    "fortunes",
    "fortunes fortunes-min",
    "/usr/share/games/fortunes",
    "BSD (fortune-mod); quotations belong to their authors",
    "fortune cookie files: quotations, jokes, riddles, Q:/A: exchanges",
)
WORDNET = Source(
    "wordnet",
    "wordnet-base",
    "/usr/share/wordnet",
    "WordNet 3.0 licence (Princeton University, BSD-like)",
    "English lexical database: lemmas, parts of speech, definitions, examples",
)
GCIDE = Source(
    "gcide",
    "dict-gcide",
    "/usr/share/dictd/gcide.dict.dz",
    "GPL-2+ (GNU Collaborative International Dictionary of English)",
    "dictionary of English (Webster's 1913 + WordNet + additions), dictd format",
)
JARGON = Source(
    "jargon",
    "jargon-text",
    "/usr/share/doc/jargon-text/jargon.txt.gz",
    "public domain (the Jargon File 4.4.7)",
    "the hacker's dictionary, plain text",
)
DEBIAN_FAQ = Source(
    "debian-faq",
    "debian-faq",
    "/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",
    "verbatim and modified copies permitted (Software in the Public Interest)",
    "the Debian GNU/Linux FAQ, plain text",
)
PYTHON_DOCS = Source(
    "python-docs",
    "python3-doc",
    "/usr/share/doc/python3.*/html/_sources",
    "PSF licence (Python documentation)",
    "reStructuredText sources of Python's documentation, including its FAQ",
)
FASHION_MNIST = Source(
    "fashion-mnist",
    "dataset-fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
    "MIT (Expat), Zalando Research",
    "70,000 28x28 grey images of clothing in 10 classes (60k train, 10k test)",
)
TEXT_SOURCES = (FORTUNES, WORDNET, GCIDE, JARGON, DEBIAN_FAQ, PYTHON_DOCS)
ALL_SOURCES = (*TEXT_SOURCES, FASHION_MNIST)


def collapse(text: str) -> str:
    """All runs of whitespace (newlines, tabs, no-break spaces) to one space."""
    return " ".join(text.replace("\xa0", " ").split())


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each collapsed to one line; empty ones dropped."""
    out = (collapse(p) for p in re.split(r"\n\s*\n", text))
    return [p for p in out if p]


def read_text(path: Path) -> str:
    """UTF-8 text of a plain or gzip file; undecodable bytes become U+FFFD."""
    raw = gzip.open(path).read() if path.suffix in (".gz", ".dz") else path.read_bytes()
    return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- fortunes


def fortune_files(directory: Path) -> list[Path]:
    """The text files of a fortunes directory (not the .dat indexes or .u8 copies)."""
    return sorted(
        p
        for p in Path(directory).iterdir()
        if p.is_file() and p.suffix not in (".dat", ".u8") and not p.name.startswith(".")
    )


def fortune_entries(path: Path) -> list[str]:
    """Entries of a fortune file (separated by lines holding only ``%``), text kept as is."""
    entries = re.split(r"^%\s*$", read_text(path), flags=re.MULTILINE)
    return [e.strip("\n") for e in entries if e.strip()]


def fortune_exchange(entry: str) -> list[tuple[str, str]]:
    """The Q:/A: pairs of a fortune entry, in order; [] if it is not an exchange.

    A turn starts at a line beginning with ``Q:`` or ``A:``; other lines continue it.
    Attribution lines (``-- Someone``) are dropped. Turns must alternate Q, A, Q, A
    from the start; anything after the last well-formed pair is ignored.
    """
    turns: list[list[str]] = []  # [marker, text]
    for line in entry.splitlines():
        s = line.strip()
        if s.startswith("--"):
            continue
        m = re.match(r"([QA]):\s*(.*)", s)
        if m:
            turns.append([m[1], m[2]])
        elif turns:
            turns[-1][1] += " " + s
        elif s:
            return []  # text before the first Q: this is not an exchange
    pairs = []
    for i in range(0, len(turns) - 1, 2):
        (mq, q), (ma, a) = turns[i], turns[i + 1]
        q, a = collapse(q), collapse(a)
        if mq != "Q" or ma != "A" or not _has_words(q) or not _has_words(a):
            break
        pairs.append((q, a))
    return pairs


def _has_words(text: str) -> bool:
    """At least one letter: answers like "..." teach nothing."""
    return re.search(r"[^\W\d_]", text) is not None


# ---------------------------------------------------------------- wordnet

WORDNET_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


@dataclass(frozen=True)
class Sense:
    lemma: str  # spaces, not underscores
    pos: str  # noun | verb | adjective | adverb
    definition: str
    examples: tuple[str, ...]


def _wordnet_gloss(line: str) -> tuple[str, tuple[str, ...]]:
    gloss = line.split(" | ", 1)[1].strip() if " | " in line else ""
    parts = [p.strip() for p in gloss.split(";")]
    definition = "; ".join(p for p in parts if not p.startswith('"'))
    examples = tuple(p.strip('"') for p in parts if p.startswith('"') and len(p) > 2)
    return definition, examples


def wordnet_senses(directory: Path) -> Iterator[Sense]:
    """The most frequent sense of every (lemma, part of speech) in WordNet.

    ``index.<pos>`` lists each lemma's synsets most frequent first, by their byte
    offset in ``data.<pos>``; the gloss is read at that offset. Lemmas without a
    letter (numbers such as "18") are skipped.
    """
    directory = Path(directory)
    for key, pos in WORDNET_POS.items():
        index, data = directory / f"index.{key}", directory / f"data.{key}"
        if not (index.is_file() and data.is_file()):
            continue
        raw = data.read_bytes()
        for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or not line.strip():
                continue  # licence header lines start with two spaces
            f = line.split()
            n_synsets, n_ptrs = int(f[2]), int(f[3])
            offsets = f[4 + n_ptrs + 2 :]
            if len(offsets) != n_synsets or not offsets:
                raise ValueError(f"{index}: malformed line {line[:60]!r}")
            off = int(offsets[0])
            end = raw.index(b"\n", off)
            definition, examples = _wordnet_gloss(raw[off:end].decode("utf-8", "replace"))
            if definition and _has_words(f[0]):
                yield Sense(f[0].replace("_", " "), pos, definition, examples)


def wordnet_glosses(directory: Path) -> Iterator[str]:
    """Every synset of the data files as ``word, word: definition; "example"``."""
    for key in WORDNET_POS:
        data = Path(directory) / f"data.{key}"
        if not data.is_file():
            continue
        for line in data.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or " | " not in line:
                continue
            f = line.split()
            n_words = int(f[3], 16)
            words = [
                re.sub(r"\(\w+\)$", "", w).replace("_", " ") for w in f[4 : 4 + 2 * n_words : 2]
            ]
            yield f"{', '.join(words)}: {line.split(' | ', 1)[1].strip()}"


# ---------------------------------------------------------------- jargon file


def jargon_entries(path: Path) -> Iterator[tuple[str, str]]:
    """(headword, first definition paragraph) of each Jargon File entry.

    Entries start with a line ``   :word: ...``. Etymology paragraphs (``[...]``) and
    cross-references only (``See {x}.``) are skipped; ``{x}`` links become ``x`` and a
    leading pronunciation ``/.../`` and sense number are removed.
    """
    text = read_text(path)
    heads = list(re.finditer(r"^ {3}:([^:\n]+):(.*)$", text, flags=re.MULTILINE))
    for m, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[m.end() : nxt.start() if nxt else len(text)]
        for para in paragraphs(body):
            if para.startswith("[") or para.startswith("See "):
                continue
            para = re.sub(r"\{([^}]*)\}", r"\1", para)
            para = re.sub(r"^(\d+\.\s*)?(/[^/]+/,?\s*)?", "", para)
            if len(para) >= 20:
                yield collapse(m[1]), para
            break


# ---------------------------------------------------------------- FAQs


def debian_faq_sections(path: Path) -> Iterator[tuple[str, str]]:
    """(question, answer) for each numbered section of the Debian FAQ whose title is a question.

    Body headings sit at column 0 (``2.1. What is ...?``, possibly wrapped onto the next
    lines); the table of contents is indented, so it never matches. The answer is the
    section's first three paragraphs.
    """
    text = read_text(path).replace("\xa0", " ")
    heads = list(re.finditer(r"^\d+\.\d+(?:\.\d+)?\.\s+(\S.*(?:\n\S.*)*)", text, re.MULTILINE))
    for m, nxt in zip(heads, [*heads[1:], None], strict=True):
        question = collapse(m[1])
        if not question.endswith("?"):
            continue
        body = text[m.end() : nxt.start() if nxt else len(text)]
        body = re.split(r"^\d+\. ", body, maxsplit=1, flags=re.MULTILINE)[0]  # next chapter
        answer = "\n\n".join(paragraphs(body)[:3])
        if answer:
            yield question, answer


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def rst_to_text(text: str) -> str:
    """Light reStructuredText clean-up: roles and literals to plain words, directives dropped."""
    text = re.sub(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)  # :ref:`x <y>` -> x
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`<]*?)(?:\s*<[^>]*>)?`_{0,2}", r"\1", text)
    text = re.sub(r"^\.\. .*$", "", text, flags=re.MULTILINE)
    return text


def rst_sections(path: Path) -> Iterator[tuple[str, str]]:
    """(title, body) of each section of a .rst file (title line followed by an underline)."""
    lines = read_text(path).splitlines()
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and _RST_UNDERLINE.match(lines[i + 1])
        and len(lines[i + 1].strip()) >= len(lines[i].strip())
    ]
    for i, nxt in zip(starts, [*starts[1:], None], strict=True):
        body = "\n".join(lines[i + 2 : nxt if nxt is not None else len(lines)])
        yield collapse(rst_to_text(lines[i])), rst_to_text(body)


def python_faq(directory: Path) -> Iterator[tuple[str, str]]:
    """(question, answer) pairs from Python's FAQ (``faq/*.rst.txt``): up to 3 paragraphs."""
    for path in sorted((Path(directory) / "faq").glob("*.rst.txt")):
        for title, body in rst_sections(path):
            answer = "\n\n".join(paragraphs(body)[:3])
            if title.endswith("?") and answer:
                yield title, answer


# ---------------------------------------------------------------- gcide


def gcide_paragraphs(path: Path) -> Iterator[str]:
    """GCIDE paragraphs without ``{links}``, ``[SOURCE]`` tags or ``\\pronunciation\\``."""
    for para in paragraphs(read_text(path)):
        para = re.sub(r"\[[A-Z][A-Za-z0-9 .]*\]", "", para)
        para = re.sub(r"\{([^}]*)\}", r"\1", para)
        para = re.sub(r"\\[^\\]*\\", "", para)  # \Head"word\ pronunciation marks
        para = collapse(para)
        if para:
            yield para
