"""A tiny data directory for training tests: SentencePiece model, captions, dialogues, episodes.

Built once per session in a temporary directory (a few seconds): a 512-piece
SentencePiece model (the ``debug`` preset's text size), 16 procedural scene images
with captions, 16 dialogues about scenes, and 8 episodes of the ``fake`` task played
by its expert.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def build_text_data(root: Path) -> Path:
    """Tokenizer, captions and dialogues (no episodes)."""
    from gato.data.captions import save_caption_set, scene_arrays
    from gato.data.dialogues import scene_dialogues, write_chat_jsonl
    from gato.tokenizers.text import TextTokenizer

    root.mkdir(parents=True, exist_ok=True)
    captions = scene_arrays("train", 16, seed=0, image_size=48)
    save_caption_set(root / "captions.npz", captions)
    dialogues = scene_dialogues(16, seed=0)
    write_chat_jsonl(root / "chat.jsonl", dialogues)
    corpus = root / "corpus.txt"
    lines = [str(c) for c in captions["captions"]]
    lines += [m["content"] for d in dialogues for m in d]
    lines += (REPO / "DESIGN.md").read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines * 2) + "\n", encoding="utf-8")
    TextTokenizer.train([corpus], root / "text.model", vocab_size=512)
    return root


def build_tiny_data(root: Path) -> Path:
    build_text_data(root)
    collect_fake_episodes(root / "episodes" / "fake", episodes=8)
    return root


def collect_fake_episodes(path: Path, episodes: int) -> None:
    from gato.data.store import collect

    collect("fake", path, episodes=episodes, seed=0)


@pytest.fixture(scope="session")
def text_data(tmp_path_factory) -> Path:
    return build_text_data(tmp_path_factory.mktemp("text-data"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return build_tiny_data(tmp_path_factory.mktemp("tiny-data"))
