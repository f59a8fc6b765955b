"""Discrete values to value ids: integer ``v`` in ``[0, bins)`` becomes ``bin_offset + v``.

Used for discrete actions (an Atari action id, a CartPole push) and discrete
observations. A value outside ``[0, bins)`` is an error, never clamped: a silent
clamp would teach the model a different action than the one taken.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gato.tokenizers.vocab import Vocab


class DiscreteTokenizer:
    """Maps integer arrays of any shape to int64 ids of the same shape and back."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def encode(self, values: ArrayLike) -> np.ndarray:
        """Integers in ``[0, bins)`` (any shape) -> int64 ids of the same shape."""
        arr = np.asarray(values)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            fractional = ~np.isfinite(arr) | (arr != np.round(arr))
            if np.any(fractional):
                raise ValueError(
                    f"discrete values must be whole numbers, got {_first_bad(arr, fractional)}"
                )
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "iu":
            raise ValueError(f"discrete values must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.vocab.bins)
        if np.any(bad):
            raise ValueError(
                f"discrete value {_first_bad(arr, bad)} is outside [0, {self.vocab.bins})"
            )
        return arr + self.vocab.bin_offset

    def decode(self, ids: ArrayLike) -> np.ndarray:
        """Value ids (any shape) -> int64 values in ``[0, bins)``."""
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64) - self.vocab.bin_offset
        bad = (arr < 0) | (arr >= self.vocab.bins)
        if np.any(bad):
            first = _first_bad(arr, bad) + self.vocab.bin_offset
            raise ValueError(
                f"token id {first} is not a value id "
                f"[{self.vocab.bin_offset}, {self.vocab.bin_offset + self.vocab.bins})"
            )
        return arr


def _first_bad(arr: np.ndarray, bad: np.ndarray):
    """The first offending element, for error messages (works for nan too)."""
    return arr[np.nonzero(np.broadcast_to(bad, arr.shape))][0].item() if arr.ndim else arr.item()
