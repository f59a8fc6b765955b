"""The one id space shared by every modality.

| ids                      | meaning                                                   |
|--------------------------|-----------------------------------------------------------|
| ``[0, text_size)``       | SentencePiece pieces (its own unk/bos/eos live in here)   |
| ``[bin_offset, +bins)``  | discrete values and quantised continuous values           |
| ``separator``            | ``|`` between a timestep's observation and its action     |
| ``patch``                | placeholder where an image patch sits in a token row; the |
|                          | model embeds the patch pixels there, never this id        |
| ``pad``                  | padding of a batch; never attended to, never a target     |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vocab:
    """Layout of the shared vocabulary.

    Args:
        text_size: number of SentencePiece pieces T (paper: 32000).
        bins: number of value bins (paper: 1024), shared by discrete and continuous values.
    """

    text_size: int = 32000
    bins: int = 1024

    def __post_init__(self) -> None:
        if self.text_size < 1:
            raise ValueError(f"Vocab.text_size must be >= 1, got {self.text_size}")
        if self.bins < 2:
            raise ValueError(f"Vocab.bins must be >= 2, got {self.bins}")

    @property
    def bin_offset(self) -> int:
        """First id of the value bins (== text_size)."""
        return self.text_size

    @property
    def separator(self) -> int:
        """Id of the ``|`` token between observation and action."""
        return self.text_size + self.bins

    @property
    def patch(self) -> int:
        """Placeholder id at image-patch positions."""
        return self.separator + 1

    @property
    def pad(self) -> int:
        """Padding id."""
        return self.separator + 2

    @property
    def size(self) -> int:
        """Total number of ids, i.e. the model's embedding and output size."""
        return self.separator + 3

    def is_text(self, token_id: int) -> bool:
        return 0 <= token_id < self.text_size

    def is_value(self, token_id: int) -> bool:
        return self.bin_offset <= token_id < self.bin_offset + self.bins
