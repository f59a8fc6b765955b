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

from gato.config import OptimConfig
from gato.tokenizers.chat import encode_dialogue
from gato.tokenizers.text import TextTokenizer
from gato.train import param_groups

# Count bucket edges: pieces seen 0, 1-10, 11-100, 101-1,000 and more than 1,000 times.
EDGES = (0, 1, 11, 101, 1001)


@dataclass(frozen=True)
class Bucket:
    """The text pieces a training text shows ``lo..hi`` times (``hi`` None: no upper bound).

    Attributes:
        pieces: how many pieces fall in the bucket.
    """

    lo: int
    hi: int | None
    pieces: int

    @property
    def label(self) -> str:
        """``"0"``, ``"1-10"``, ``"> 1,000"``: how the bucket reads in a table."""
        if self.hi == self.lo:
            return f"{self.lo:,}"
        return f"{self.lo:,}-{self.hi:,}" if self.hi is not None else f"> {self.lo - 1:,}"


@dataclass(frozen=True)
class SpreadRow(Bucket):
    """How alike a bucket's embedding rows are.

    Attributes:
        mean_norm: mean L2 norm of their embedding rows.
        own_norm: mean L2 norm of each row minus the bucket's mean row (its own part).
        mean_cosine: mean cosine similarity over every pair of their rows (nan below 2).
    """

    mean_norm: float
    own_norm: float
    mean_cosine: float


@dataclass(frozen=True)
class AdamRow(Bucket):
    """Adam's state for a bucket's embedding rows.

    Attributes:
        grad_rms: mean over the rows' elements of ``sqrt(v)``, Adam's running RMS of
            their gradients (``exp_avg_sq``; bias correction is negligible late in a run).
        step: mean of ``|m| / (sqrt(v) + eps)``: the size of the step Adam takes per
            element in units of the learning rate (``m`` = ``exp_avg``), whatever the
            gradient's scale.
    """

    grad_rms: float
    step: float


def buckets(counts: np.ndarray, edges: Sequence[int] = EDGES):
    """``(lo, hi, chosen)`` per bucket: ``chosen`` a bool ``(len(counts),)`` tensor of the
    pieces with ``lo <= count <= hi`` (``hi`` None: no upper bound)."""
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"edges must ascend without repeats, got {list(edges)}")
    for k, lo in enumerate(edges):
        hi = edges[k + 1] - 1 if k + 1 < len(edges) else None
        chosen = (counts >= lo) & (counts <= (hi if hi is not None else np.inf))
        yield lo, hi, torch.from_numpy(chosen)


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
    rows = embedding[: len(counts)].detach().float().cpu()  # (T, d)
    out = []
    for lo, hi, chosen in buckets(counts, edges):
        group = rows[chosen]  # (n, d)
        if len(group):
            norm = float(group.norm(dim=1).mean())
            own = float((group - group.mean(dim=0)).norm(dim=1).mean())
        else:
            norm = own = float("nan")
        out.append(SpreadRow(lo, hi, len(group), norm, own, mean_pairwise_cosine(group)))
    return out


def adam_steps_by_count(
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    eps: float,
    counts: np.ndarray,
    edges: Sequence[int] = EDGES,
) -> list[AdamRow]:
    """Bucket the first ``len(counts)`` rows of Adam's ``exp_avg`` and ``exp_avg_sq`` for
    an embedding ``(V, d)`` by ``counts`` and measure each bucket (:class:`AdamRow`)."""
    if exp_avg.shape != exp_avg_sq.shape or exp_avg.shape[0] < len(counts):
        raise ValueError(
            f"Adam state {tuple(exp_avg.shape)} / {tuple(exp_avg_sq.shape)} does not hold "
            f"{len(counts)} embedding rows"
        )
    m = exp_avg[: len(counts)].detach().double().cpu()  # (T, d)
    rms = exp_avg_sq[: len(counts)].detach().double().cpu().sqrt()  # (T, d)
    out = []
    for lo, hi, chosen in buckets(counts, edges):
        if not bool(chosen.any()):
            out.append(AdamRow(lo, hi, 0, float("nan"), float("nan")))
            continue
        step = m[chosen].abs() / (rms[chosen] + eps)
        out.append(
            AdamRow(lo, hi, int(chosen.sum()), float(rms[chosen].mean()), float(step.mean()))
        )
    return out


def embedding_adam_state(
    optimizer_state: Mapping, model: torch.nn.Module, optim: OptimConfig
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(exp_avg, exp_avg_sq, eps)`` of ``model.tok_emb.weight`` in an AdamW
    ``state_dict`` (as a checkpoint stores it) built by training's
    :func:`gato.train.param_groups` from ``optim``.

    Raises:
        ValueError: the state holds no Adam moments for the token embedding.
    """
    # training's grouping fixes the order in which the state numbers the parameters
    for k, group in enumerate(param_groups(model, optim.weight_decay, optim.embedding_eps)):
        for j, p in enumerate(group["params"]):
            if p is model.tok_emb.weight:
                saved = optimizer_state["param_groups"][k]
                state = optimizer_state["state"].get(saved["params"][j])
                if state is None or "exp_avg_sq" not in state:
                    raise ValueError("the optimizer state holds no Adam moments for tok_emb")
                return state["exp_avg"], state["exp_avg_sq"], float(saved.get("eps", optim.eps))
    raise ValueError("the model has no token embedding among its parameters")
