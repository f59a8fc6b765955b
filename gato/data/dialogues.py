"""Dialogues in the common chat JSONL format, and the default dialogue set.

A file holds one dialogue per line::

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

Roles are ``system`` (optional, first only), ``user`` and ``assistant``; user and
assistant alternate, and there is at least one assistant turn. How a dialogue
becomes tokens (role markers, EOS) is defined once, in ``gato.tokenizers.chat``.

The default set is built from offline sources (see ``gato.data.sources``): Q:/A:
exchanges in fortune files, WordNet definitions as "What does X mean?", Jargon File
entries, the Debian and Python FAQs, and questions about procedural scenes whose
answers are exact (``gato.data.scenes.questions``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from gato.data import scenes, sources
from gato.data.jsonl import iter_jsonl, write_jsonl

Message = dict[str, str]
Dialogue = list[Message]
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "name"}


def check_dialogue(messages: object, where: str = "dialogue") -> Dialogue:
    """Validate one dialogue; return it, or raise ValueError saying what is wrong and where."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not {"role", "content"} <= set(m) or set(m) - MESSAGE_KEYS:
            raise ValueError(
                f"{where}: message {i} must be an object with 'role' and 'content' "
                f"(and optionally 'name'), got keys {sorted(m) if isinstance(m, dict) else m!r}"
            )
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise ValueError(f"{where}: message {i} has role {role!r}; expected one of {ROLES}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"{where}: message {i} ({role}) has empty or non-string content")
        if role == "system" and i != 0:
            raise ValueError(f"{where}: message {i}: a system message may only come first")
        out.append(dict(m))
    turns = [m["role"] for m in out if m["role"] != "system"]
    for i, role in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        if role != want:
            raise ValueError(
                f"{where}: turns must alternate user/assistant starting with user; "
                f"turn {i} is {role!r}"
            )
    if "assistant" not in turns:
        raise ValueError(f"{where}: no assistant message (nothing to learn from)")
    return out


def read_chat_jsonl(path: str | os.PathLike) -> list[Dialogue]:
    """Read a chat JSONL file; ValueError naming file and line for any malformed line."""
    dialogues = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if "messages" not in obj:
            raise ValueError(f"{where}: missing key 'messages'")
        dialogues.append(check_dialogue(obj["messages"], where))
    return dialogues


def write_chat_jsonl(path: str | os.PathLike, dialogues: Iterable[Dialogue]) -> int:
    """Write dialogues (validated) as chat JSONL; returns how many were written."""
    return write_jsonl(
        path, ({"messages": check_dialogue(d, f"dialogue {i}")} for i, d in enumerate(dialogues))
    )


def qa_dialogue(pairs: Iterable[tuple[str, str]]) -> Dialogue:
    """[(question, answer), ...] -> alternating user/assistant messages."""
    out: Dialogue = []
    for q, a in pairs:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return out


# ---------------------------------------------------------------- default builders
# Each takes the source's installed path (or parameters) and returns dialogues in a
# deterministic order.


def fortune_dialogues(directory: Path) -> list[Dialogue]:
    """Every Q:/A: exchange in the fortune files; multi-pair entries become multi-turn."""
    out = []
    for path in sources.fortune_files(directory):
        for entry in sources.fortune_entries(path):
            pairs = sources.fortune_exchange(entry)
            if pairs:
                out.append(qa_dialogue(pairs))
    return out


_DEFINE = (
    'What does "{w}" mean?',
    'What is the meaning of the word "{w}"?',
    'Define "{w}".',
)


def wordnet_dialogues(directory: Path, limit: int, seed: int) -> list[Dialogue]:
    """Up to ``limit`` "What does X mean?" exchanges from WordNet's most frequent senses.

    The sample (and the question wording) is drawn with ``seed``; order follows WordNet.
    """
    senses = list(sources.wordnet_senses(directory))
    rng = np.random.default_rng([seed, 1])
    keep = np.sort(rng.choice(len(senses), size=min(limit, len(senses)), replace=False))
    out = []
    for i in keep:
        s = senses[int(i)]
        answer = (
            f'As {"an" if s.pos[0] in "aeiou" else "a"} {s.pos}, "{s.lemma}" means: {s.definition}.'
        )
        if s.examples:
            answer += f' For example: "{s.examples[0]}".'
        question = _DEFINE[int(rng.integers(0, len(_DEFINE)))].format(w=s.lemma)
        out.append(qa_dialogue([(question, answer)]))
    return out


def jargon_dialogues(path: Path) -> list[Dialogue]:
    """ "What does X mean in hacker jargon?" for each Jargon File entry."""
    return [
        qa_dialogue([(f'What does "{word}" mean in hacker jargon?', definition)])
        for word, definition in sources.jargon_entries(path)
    ]


def faq_dialogues(pairs: Iterable[tuple[str, str]]) -> list[Dialogue]:
    return [qa_dialogue([(q, a)]) for q, a in pairs]


def scene_dialogues(n: int, seed: int) -> list[Dialogue]:
    """``n`` dialogues about procedural scenes given as text (train split only, so no
    held-out colour-shape pair leaks in); 1-3 questions each, answers exact."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        scene = scenes.sample_scene(rng, "train")
        qa = scenes.questions(scene, rng)
        k = int(rng.integers(1, 4))
        picked = [qa[int(j)] for j in rng.choice(len(qa), size=min(k, len(qa)), replace=False)]
        picked[0] = (f"Here is a scene: {scenes.caption(scene)}. {picked[0][0]}", picked[0][1])
        out.append(qa_dialogue(picked))
    return out


def default_builders(
    wordnet_limit: int, scene_dialogue_count: int, seed: int
) -> dict[str, tuple[sources.Source | None, Callable[[Path | None], list[Dialogue]]]]:
    """Name -> (source it needs or None, builder(path)) for the default dialogue set."""
    return {
        "fortunes": (sources.FORTUNES, fortune_dialogues),
        "wordnet": (sources.WORDNET, lambda p: wordnet_dialogues(p, wordnet_limit, seed)),
        "jargon": (sources.JARGON, jargon_dialogues),
        "debian-faq": (sources.DEBIAN_FAQ, lambda p: faq_dialogues(sources.debian_faq_sections(p))),
        "python-faq": (sources.PYTHON_DOCS, lambda p: faq_dialogues(sources.python_faq(p))),
        "scenes": (None, lambda _: scene_dialogues(scene_dialogue_count, seed)),
    }
