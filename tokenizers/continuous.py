"""Continuous values to value ids.

Two paths share the same 1024 bins (ids ``[bin_offset, bin_offset + bins)``):

* **Observations** (unbounded) go through mu-law companding (paper, DESIGN.md)::

      F(x) = sgn(x) * ln(|x| * mu + 1) / ln(M * mu + 1),   mu = 100, M = 256

  then are clipped to [-1, 1] and binned uniformly. Companding spends more bins
  near zero, where most observations live; |x| >= M lands in an edge bin.
* **Actions with known bounds** ``[low, high]`` are scaled linearly to [-1, 1] and
  binned without companding, so that decoding a bin always gives a valid action
  inside the space.

Bin ``b`` covers ``[-1 + 2b/bins, -1 + 2(b+1)/bins)``; the top bin is closed at
+1, so +1.0 lands in bin ``bins - 1`` (other implementations put it in bin
``bins``, one past the end). Decoding maps a bin to its centre. NaN and inf are
errors: there is no honest bin for them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gato.tokenizers.vocab import Vocab


def mu_law(x: np.ndarray, mu: float = 100.0, m: float = 256.0) -> np.ndarray:
    """Mu-law companding ``F(x)``; maps [-M, M] onto [-1, 1], monotone."""
    return np.sign(x) * np.log1p(np.abs(x) * mu) / np.log1p(m * mu)


def inverse_mu_law(y: np.ndarray, mu: float = 100.0, m: float = 256.0) -> np.ndarray:
    """Inverse of :func:`mu_law` on [-1, 1]."""
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(m * mu)) / mu


class ContinuousTokenizer:
    """Floats (any shape) to int64 value ids of the same shape and back.

    Args:
        vocab: the shared id layout; ``vocab.bins`` is the number of bins.
        mu, m: companding constants (paper: 100 and 256).
    """

    def __init__(self, vocab: Vocab, mu: float = 100.0, m: float = 256.0) -> None:
        self.vocab = vocab
        self.mu = mu
        self.m = m

    # -- bins on [-1, 1] ------------------------------------------------------
    def _to_ids(self, y: np.ndarray) -> np.ndarray:
        """y in [-1, 1] -> ids; the top bin is closed at +1."""
        bins = self.vocab.bins
        b = np.floor((y + 1.0) * (bins / 2.0)).astype(np.int64)
        b = np.minimum(b, bins - 1)  # y == +1.0 belongs to the last bin, by definition
        return b + self.vocab.bin_offset

    def _to_centres(self, ids: ArrayLike) -> np.ndarray:
        """ids -> bin centres in (-1, 1), float64."""
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got dtype {arr.dtype}")
        b = arr.astype(np.int64) - self.vocab.bin_offset
        bad = (b < 0) | (b >= self.vocab.bins)
        if np.any(bad):
            first = b[np.nonzero(np.broadcast_to(bad, b.shape))][0] if b.ndim else b
            raise ValueError(
                f"token id {int(first) + self.vocab.bin_offset} is not a value id "
                f"[{self.vocab.bin_offset}, {self.vocab.bin_offset + self.vocab.bins})"
            )
        return -1.0 + (2.0 * b + 1.0) / self.vocab.bins

    # -- observations: mu-law -------------------------------------------------
    def encode(self, values: ArrayLike) -> np.ndarray:
        """Observation values (any shape) -> ids (same shape), through mu-law companding."""
        x = _finite_floats(values, "continuous value")
        return self._to_ids(np.clip(mu_law(x, self.mu, self.m), -1.0, 1.0))

    def decode(self, ids: ArrayLike) -> np.ndarray:
        """ids -> float32 values: the bin centre, un-companded."""
        return inverse_mu_law(self._to_centres(ids), self.mu, self.m).astype(np.float32)

    # -- actions with known bounds: linear ------------------------------------
    def encode_bounded(self, values: ArrayLike, low: ArrayLike, high: ArrayLike) -> np.ndarray:
        """Values inside ``[low, high]`` (broadcastable) -> ids, scaled linearly (no companding)."""
        x = _finite_floats(values, "action value")
        lo, hi = _bounds(low, high)
        outside = (x < lo) | (x > hi)
        if np.any(outside):
            i = np.argwhere(np.broadcast_to(outside, x.shape))[0] if x.ndim else ()
            raise ValueError(
                f"action value {x[tuple(i)]!r} at index {tuple(int(j) for j in i)} is outside "
                f"its bounds [{np.broadcast_to(lo, x.shape)[tuple(i)]}, "
                f"{np.broadcast_to(hi, x.shape)[tuple(i)]}]"
            )
        y = 2.0 * (x - lo) / (hi - lo) - 1.0
        return self._to_ids(np.clip(y, -1.0, 1.0))  # clip only guards float round-off

    def decode_bounded(self, ids: ArrayLike, low: ArrayLike, high: ArrayLike) -> np.ndarray:
        """ids -> float32 values strictly inside ``[low, high]`` (bin centres)."""
        lo, hi = _bounds(low, high)
        y = self._to_centres(ids)
        return (lo + (y + 1.0) * 0.5 * (hi - lo)).astype(np.float32)


def _finite_floats(values: ArrayLike, what: str) -> np.ndarray:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}s must be numbers, got {values!r:.80}") from None
    if not np.all(np.isfinite(x)):
        bad = x[~np.isfinite(x)].ravel()[0]
        raise ValueError(f"{what} {bad} is not finite (NaN and inf cannot be tokenized)")
    return x


def _bounds(low: ArrayLike, high: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("action bounds must be finite to use the linear path")
    if np.any(hi <= lo):
        raise ValueError(f"action bounds need high > low, got low={lo}, high={hi}")
    return lo, hi
