"""The one chat format, used by training and by ``gato chat`` alike.

A dialogue is a list of ``{"role": ..., "content": ...}`` messages with roles
``system``, ``user`` and ``assistant`` (the common chat JSONL format). Each turn
is rendered as::

    System: {content}\\n        (optional, first)
    User: {content}\\n
    Gato: {content}<eos>

Every assistant turn ends with the SentencePiece EOS id, so generation stops
there. Each turn is encoded separately and the ids concatenated; the assistant
cue ``Gato:`` and the assistant's content are encoded separately too (the
content's leading SentencePiece space marker is the space after the colon).
So the prompt used at inference is exactly a prefix of the training sequence
of the same conversation, and the sampled ids up to EOS are the reply alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gato.tokenizers.text import TextTokenizer

ROLE_PREFIX = {"system": "System: ", "user": "User: "}
ASSISTANT_CUE = "Gato:"
ROLES = (*ROLE_PREFIX, "assistant")


def validate_messages(messages: Sequence[Mapping[str, str]]) -> None:
    """Raise ValueError unless ``messages`` is a well-formed dialogue."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise ValueError("a dialogue must be a non-empty list of messages")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or set(m) - {"role", "content", "name"}:
            raise ValueError(f"message {i} must be an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ValueError(f"message {i} has role {role!r}; expected one of {list(ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"message {i} content must be a string")
        if role == "system" and i != 0:
            raise ValueError(f"message {i}: a system message may only come first")


def _turn_ids(message: Mapping[str, str], tok: TextTokenizer) -> list[int]:
    role = message["role"]
    if role == "assistant":
        return tok.encode(ASSISTANT_CUE) + tok.encode(message["content"]) + [tok.eos_id]
    return tok.encode(ROLE_PREFIX[role] + message["content"] + "\n")


def encode_dialogue(messages: Sequence[Mapping[str, str]], tok: TextTokenizer) -> list[int]:
    """A whole dialogue -> text ids for training (each assistant turn ends in EOS)."""
    validate_messages(messages)
    ids: list[int] = []
    for m in messages:
        ids += _turn_ids(m, tok)
    return ids


def encode_prompt(messages: Sequence[Mapping[str, str]], tok: TextTokenizer) -> list[int]:
    """History ending in a user turn -> ids ending with the assistant cue, for generation.

    The reply the model then samples, up to EOS, is the assistant's content.
    """
    validate_messages(messages)
    if messages[-1]["role"] == "assistant":
        raise ValueError("the last message of a prompt must not be the assistant's")
    ids: list[int] = []
    for m in messages:
        ids += _turn_ids(m, tok)
    return ids + tok.encode(ASSISTANT_CUE)
