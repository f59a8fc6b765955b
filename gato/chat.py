"""A conversation with the model in the one chat format (``gato.tokenizers.chat``).

The whole history goes into the context at every turn (the prompt is exactly a prefix
of the training sequence of the same conversation). When it is too long for the
model's context (leaving room for the reply), whole exchanges are dropped from the
oldest on; a leading system message is kept while it fits; the newest user turn is
always kept. If the newest turn alone does not fit, its oldest tokens are cut, so the
prompt still ends with the end of the user's message and the assistant cue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from gato.generate import GenerationConfig, generate, text_row
from gato.model import Gato
from gato.sequence import Tokenizers
from gato.tokenizers.chat import ASSISTANT_CUE, encode_prompt, validate_messages
from gato.tokenizers.text import TextTokenizer

Message = Mapping[str, str]


def _exchanges(messages: Sequence[Message]) -> list[list[Message]]:
    """Group messages into exchanges: each starts at a user turn (a lone reply stays alone)."""
    groups: list[list[Message]] = []
    for m in messages:
        if m["role"] == "user" or not groups:
            groups.append([m])
        else:
            groups[-1].append(m)
    return groups


def trim_history(
    messages: Sequence[Message], text: TextTokenizer, budget: int
) -> tuple[list[Message], list[int]]:
    """The newest part of a conversation whose prompt fits ``budget`` tokens.

    ``messages`` ends with a user turn. Returns the kept messages and their prompt ids
    (:func:`encode_prompt`, cut on the left only when the newest turn alone is too long).
    """
    cue = len(text.encode(ASSISTANT_CUE))
    if budget <= cue:
        raise ValueError(f"a prompt budget of {budget} tokens leaves no room for a message")
    validate_messages(messages)
    if messages[-1]["role"] != "user":
        raise ValueError("the conversation must end with a user turn")
    system = [messages[0]] if messages[0]["role"] == "system" else []
    rest = list(messages[len(system) :])
    groups = _exchanges(rest)
    # Drop the oldest exchanges until it fits; the last exchange (newest user turn) stays.
    for first in range(len(groups)):
        kept = system + [m for g in groups[first:] for m in g]
        ids = encode_prompt(kept, text)
        if len(ids) <= budget:
            return kept, ids
    newest = [groups[-1][-1]]
    ids = encode_prompt(newest, text)
    if len(ids) <= budget:  # without the system message
        return newest, ids
    return newest, ids[len(ids) - budget :]  # the newest turn's end and the cue


@dataclass
class ChatSession:
    """A running conversation: ``reply(text)`` adds the user turn and the model's answer.

    Args:
        system: optional system message placed first.
        generation: reply length and sampling; the prompt budget is the model's context
            minus ``max_new_tokens``.
    """

    model: Gato
    tok: Tokenizers
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    system: str | None = None
    generator: torch.Generator | None = None
    messages: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.system:
            self.messages.append({"role": "system", "content": self.system})
        if self.budget <= len(self.tok.text_model().encode(ASSISTANT_CUE)):
            raise ValueError(
                f"max_new_tokens ({self.generation.max_new_tokens}) leaves no room for a "
                f"prompt in the model's context ({self.model.cfg.context})"
            )

    @property
    def budget(self) -> int:
        return self.model.cfg.context - self.generation.max_new_tokens

    def reply(self, user_text: str) -> str:
        """Answer one user message; both turns join the history."""
        text = self.tok.text_model()
        # The history grows only once the turn succeeded: a message the tokenizer refuses
        # (ValueError) leaves the session as it was.
        messages = [*self.messages, {"role": "user", "content": user_text}]
        _, ids = trim_history(messages, text, self.budget)
        (out,) = generate(self.model, self.tok, [text_row(self.tok, ids)], self.generation,
                          self.generator)  # fmt: skip
        answer = text.decode(out.ids)
        self.messages[:] = [*messages, {"role": "assistant", "content": answer}]
        return answer


def chat_loop(session: ChatSession, read=input, write=print) -> int:
    """The interactive terminal loop; Ctrl-C or EOF (Ctrl-D) ends it cleanly (returns 0).

    ``read(prompt)`` returns one line (``input``), ``write(text)`` shows one (``print``).
    Empty lines are skipped; ``/exit`` or ``/quit`` also end the session. A line that is
    not text (undecodable bytes) is answered with one error line and the chat goes on.
    """
    write("Chatting with Gato. Ctrl-D or /exit to quit.")
    try:
        while True:
            try:
                line = read("you> ").strip()
                if not line:
                    continue
                if line in ("/exit", "/quit"):
                    return 0
                write(f"gato> {session.reply(line)}")
            except ValueError as exc:  # incl. UnicodeDecodeError of a non-UTF-8 line
                write(f"gato: error: {exc}; try again")
    except (EOFError, KeyboardInterrupt):
        write("")
        return 0
