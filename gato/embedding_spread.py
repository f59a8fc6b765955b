"""How distinct the text pieces' input embeddings stay, by how often training shows each piece.

Why measure it: with the output head tied to the token embedding (``model.tie_head``),
every target's softmax pushes the logit of every other piece down, so the row of a piece
that is nowhere in a batch still gets a gradient, ``p(piece) * h`` summed over the
batch's predicting positions ``h``. The gradient is small but points the same way step
after step, and Adam scales a steady gradient up to a full-size step, so over many steps
the rows of rarely seen pieces drift together along one shared direction. As inputs
those pieces then look alike to the model: the first layer norm divides each row by its
size, so a large shared part shrinks what is left of the piece's own part. A run that
shows the text pieces on a tenth of its steps (a generalist) takes ten times the steps a
text-only model does for the same text, and drifts further.

The spread of a group of rows is their mean pairwise cosine similarity (0 for random
directions in high dimension, 1 for rows that point the same way), computed exactly from
the sum of the unit rows: ``sum_{i != j} u_i . u_j = |sum_i u_i|^2 - n``. Beside it, each
row's own part: the norm of the row minus the group's mean row. A shared direction makes
the cosine high without taking anything from the own parts; for the output head (whose
rows score the pieces) only the own parts tell pieces apart, since the shared part adds
the same logit to every piece of the group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gato.tokenizers.chat import encode_dialogue
from gato.tokenizers.text import TextTokenizer

# Count bucket edges: pieces seen 0, 1-10, 11-100, 101-1,000 and more than 1,000 times.
EDGES = (0, 1, 11, 101, 1001)


@dataclass(frozen=True)
class SpreadRow:
    """The text pieces a training text shows ``lo..hi`` times (``hi`` None: no upper bound).

    Attributes:
        pieces: how many pieces fall in the bucket.
        mean_norm: mean L2 norm of their embedding rows.
        own_norm: mean L2 norm of each row minus the bucket's mean row (its own part).
        mean_cosine: mean cosine similarity over every pair of their rows (nan below 2).
    """

    lo: int
    hi: int | None
    pieces: int
    mean_norm: float
    own_norm: float
    mean_cosine: float

    @property
    def label(self) -> str:
        if self.hi == self.lo:
            return f"{self.lo:,}"
        return f"{self.lo:,}-{self.hi:,}" if self.hi is not None else f"> {self.lo - 1:,}"


def piece_counts(
    dialogues: Iterable[Sequence[Mapping[str, str]]], text: TextTokenizer
) -> np.ndarray:
    """``(text.vocab_size,)`` int64: occurrences of each piece in the dialogues, encoded
    exactly as training encodes them (:func:`gato.tokenizers.chat.encode_dialogue`)."""
    ids = [i for messages in dialogues for i in encode_dialogue(messages, text)]
    return np.bincount(np.asarray(ids, dtype=np.int64), minlength=text.vocab_size)


def mean_pairwise_cosine(rows: torch.Tensor) -> float:
    """Mean cosine similarity over all ordered pairs ``i != j`` of ``rows`` ``(n, d)``;
    nan for fewer than two rows. Zero rows count as orthogonal to everything."""
    n = rows.shape[0]
    if n < 2:
        return float("nan")
    units = torch.nn.functional.normalize(rows.double(), dim=1)  # (n, d)
    nonzero = int((units.norm(dim=1) > 0).sum())
    total = units.sum(dim=0)  # (d,)
    return float((total @ total - nonzero) / (n * (n - 1)))


def spread_by_count(
    embedding: torch.Tensor, counts: np.ndarray, edges: Sequence[int] = EDGES
) -> list[SpreadRow]:
    """Bucket the first ``len(counts)`` rows of ``embedding`` ``(V, d)`` (the text pieces)
    by ``counts`` at ``edges`` (ascending lower bounds) and measure each bucket."""
    if embedding.shape[0] < len(counts):
        raise ValueError(f"{len(counts)} piece counts but only {embedding.shape[0]} rows")
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"edges must ascend without repeats, got {list(edges)}")
    rows = embedding[: len(counts)].detach().float().cpu()  # (T, d)
    out = []
    for k, lo in enumerate(edges):
        hi = edges[k + 1] - 1 if k + 1 < len(edges) else None
        chosen = (counts >= lo) & (counts <= (hi if hi is not None else np.inf))
        group = rows[torch.from_numpy(chosen)]  # (n, d)
        if len(group):
            norm = float(group.norm(dim=1).mean())
            own = float((group - group.mean(dim=0)).norm(dim=1).mean())
        else:
            norm = own = float("nan")
        out.append(SpreadRow(lo, hi, len(group), norm, own, mean_pairwise_cosine(group)))
    return out
