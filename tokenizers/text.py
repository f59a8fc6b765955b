"""Text to ids with SentencePiece, trained by the project on text it has offline.

Training choices (and why):

* ``model_type="unigram"`` as in the paper, ``byte_fallback=True`` and
  ``character_coverage=1.0``: any string is encodable (unseen characters fall back
  to byte pieces), so no input ever becomes ``<unk>``.
* ``normalization_rule_name="identity"`` and ``remove_extra_whitespaces=False``:
  ``decode(encode(s)) == s`` exactly, so chat and captions round-trip.
* ``"\\n"`` is a user-defined piece: SentencePiece trains line by line and would
  otherwise only see newlines as byte pieces, yet the chat format uses them.
* ids: ``unk=0, bos=1, eos=2``, no pad (the shared vocabulary has its own).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from gato.atomic import write_atomic

USER_SYMBOLS = ("\n",)


class TextTokenizer:
    """A loaded SentencePiece model. Ids lie in ``[0, vocab_size)``."""

    def __init__(self, processor: spm.SentencePieceProcessor, model_bytes: bytes) -> None:
        self._sp = processor
        self.model_bytes = model_bytes

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_bytes(cls, model_bytes: bytes, source: str = "<bytes>") -> TextTokenizer:
        """Load from a serialized model (as stored in a checkpoint)."""
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(model_bytes)
        except (RuntimeError, OSError, TypeError) as exc:
            raise ValueError(f"{source} is not a valid SentencePiece model ({exc})") from None
        if sp.get_piece_size() == 0:
            raise ValueError(f"{source} is not a valid SentencePiece model (no pieces)")
        return cls(sp, bytes(model_bytes))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextTokenizer:
        """Load a ``.model`` file written by :meth:`train` or SentencePiece itself."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {path}")
        return cls.from_bytes(path.read_bytes(), source=str(path))

    @classmethod
    def train(
        cls,
        files: Sequence[str | os.PathLike],
        out_path: str | os.PathLike,
        vocab_size: int,
        *,
        max_sentences: int = 2_000_000,
        seed: int = 0,
        threads: int = 2,
    ) -> TextTokenizer:
        """Train a unigram model on text files and write it atomically to ``out_path``.

        Args:
            files: UTF-8 text files, one sentence or paragraph per line.
            out_path: where the ``.model`` file goes (parent directories are created).
            vocab_size: number of pieces, including unk/bos/eos and 256 byte pieces.
            max_sentences: lines sampled from the input (bounds time and memory).
        """
        paths = [Path(f) for f in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"text file(s) not found: {', '.join(missing)}")
        if not paths:
            raise ValueError("no text files to train the tokenizer on")
        minimum = 256 + 3 + len(USER_SYMBOLS) + 1
        if vocab_size < minimum:
            raise ValueError(f"vocab_size must be >= {minimum} (256 byte pieces + specials)")
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)  # sampling of sentences is seeded
        try:
            spm.SentencePieceTrainer.train(
                input=[str(p) for p in paths],
                model_writer=model,
                vocab_size=vocab_size,
                model_type="unigram",
                byte_fallback=True,
                character_coverage=1.0,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                user_defined_symbols=list(USER_SYMBOLS),
                unk_id=0,
                bos_id=1,
                eos_id=2,
                pad_id=-1,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                seed_sentencepiece_size=200_000,
                max_sentence_length=8192,
                num_threads=threads,
                minloglevel=2,
            )
        except RuntimeError as exc:
            msg = str(exc)
            if "Vocabulary size" in msg:
                raise ValueError(
                    f"the text is too small for vocab_size={vocab_size}: {msg.strip()}"
                ) from None
            raise ValueError(f"SentencePiece training failed: {msg.strip()}") from None
        data = model.getvalue()
        write_atomic(Path(out_path), data)
        return cls.from_bytes(data, source=str(out_path))

    # -- use ------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def eos_id(self) -> int:
        return self._sp.eos_id()

    @property
    def unk_id(self) -> int:
        return self._sp.unk_id()

    def encode(self, text: str) -> list[int]:
        """Text -> ids in ``[0, vocab_size)`` (no EOS appended)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be str, got {type(text).__name__}")
        try:
            return self._sp.encode(text)
        except RuntimeError:  # SentencePiece's only word for a string it cannot take
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates: undecodable input bytes
                raise ValueError(
                    f"text is not valid Unicode at character {exc.start} (input that was "
                    "not UTF-8?)"
                ) from None
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. EOS and other control ids decode to nothing."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"text id {bad[0]} is outside [0, {self.vocab_size})")
        return self._sp.decode(ids)

    def piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(token_id)
