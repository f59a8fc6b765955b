"""Masked next-token loss over a :class:`gato.sequence.TokenBatch`.

Token ``t`` of a row is a target when ``loss_mask[b, t]`` is true; the logits at
``t - 1`` predict it. Only text targets and action tokens are masked in by the
sequence builders (never image patches, observation values, the separator or
padding), so the loss is the mean cross-entropy over those tokens. Computed in
float32 whatever the logits' dtype (bf16 autocast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gato.sequence import Kind, TokenBatch


@dataclass(frozen=True)
class TaskLoss:
    """Summed loss and target count of one task in a batch."""

    loss_sum: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.loss_sum / self.tokens if self.tokens else float("nan")


@dataclass
class LossOutput:
    """The training loss and its breakdown for logging.

    Attributes:
        loss: scalar, mean cross-entropy over all target tokens (differentiable).
        text_loss, action_loss: mean over targets of that :class:`Kind`; None when the
            batch has no such target.
        tokens, text_tokens, action_tokens: number of targets.
        per_task: task name -> :class:`TaskLoss` (rows grouped by ``batch.tasks``).
    """

    loss: torch.Tensor
    text_loss: float | None
    action_loss: float | None
    tokens: int
    text_tokens: int
    action_tokens: int
    per_task: dict[str, TaskLoss] = field(default_factory=dict)


def predicting(batch: TokenBatch) -> torch.Tensor:
    """Bool ``(B, T)``: the positions whose logits predict a target (the one before it).

    ``model(batch, at=predicting(batch))`` computes only the logits the loss reads.
    """
    at = torch.zeros_like(batch.loss_mask)
    at[:, :-1] = batch.loss_mask[:, 1:]
    return at


def sequence_loss(logits: torch.Tensor, batch: TokenBatch) -> LossOutput:
    """Cross-entropy on the batch's masked targets of ``logits``: ``(B, T, V)`` for every
    position, or ``(M, V)`` at the :func:`predicting` positions only (row-major)."""
    B, T = batch.tokens.shape
    mask = batch.loss_mask[:, 1:]  # (B, T-1): targets at 1..T-1
    if logits.dim() == 3 and tuple(logits.shape[:2]) != (B, T):
        raise ValueError(f"logits {tuple(logits.shape[:2])} and batch {(B, T)} disagree")
    if logits.dim() == 2 and logits.shape[0] != int(mask.sum()):
        raise ValueError(
            f"logits for {logits.shape[0]} positions, but the batch has {int(mask.sum())} targets"
        )
    kinds = batch.kinds[:, 1:][mask]  # (M,)
    wrong = (kinds != Kind.TEXT) & (kinds != Kind.ACTION)
    if bool(wrong.any()):
        kind = Kind(int(kinds[wrong][0]))
        raise ValueError(f"loss_mask marks a {kind.name} target; only TEXT and ACTION carry loss")
    targets = batch.tokens[:, 1:][mask]  # (M,)
    # Only the predicting positions go through the softmax: (M, V), float32.
    pred = (logits if logits.dim() == 2 else logits[:, :-1][mask]).float()
    nll = F.cross_entropy(pred, targets, reduction="none")  # (M,)
    n = int(targets.numel())
    loss = nll.sum() / n if n else logits.sum() * 0.0  # keeps the graph when empty

    nll_d = nll.detach()

    def part(kind: Kind) -> tuple[float | None, int]:
        sel = kinds == kind
        count = int(sel.sum())
        return (float(nll_d[sel].sum()) / count if count else None), count

    text_loss, text_tokens = part(Kind.TEXT)
    action_loss, action_tokens = part(Kind.ACTION)

    per_task: dict[str, TaskLoss] = {}
    if batch.tasks:
        row = torch.arange(B, device=mask.device)[:, None].expand(B, T - 1)[mask]  # (M,)
        row_sum = torch.zeros(B, device=nll.device).index_add_(0, row, nll_d)
        row_count = torch.bincount(row, minlength=B)
        sums, counts = row_sum.tolist(), row_count.tolist()
        for b, task in enumerate(batch.tasks):
            prev = per_task.get(task, TaskLoss(0.0, 0))
            per_task[task] = TaskLoss(prev.loss_sum + sums[b], prev.tokens + counts[b])
    return LossOutput(
        loss=loss,
        text_loss=text_loss,
        action_loss=action_loss,
        tokens=n,
        text_tokens=text_tokens,
        action_tokens=action_tokens,
        per_task=per_task,
    )


def frequency_loss(targets: torch.Tensor) -> float:
    """Mean cross-entropy (nats) of predicting each of ``targets`` ``(M,)`` from the
    targets' own frequencies: their empirical entropy, ``nan`` when there are none.

    No predictor that ignores the context does better on these targets (the cross-entropy
    ``-sum p log q`` is least at ``q = p``), so a held-out loss at this level means the
    model has learned the frequencies and nothing from the context. An in-sample floor: the
    frequencies are the held-out targets' own, not the training data's. One pool for all
    the targets given: for actions of several tokens (continuous values) it ignores each
    token's place in the action, so there it sits above what a per-place predictor gets.
    """
    n = int(targets.numel())
    if not n:
        return float("nan")
    p = torch.unique(targets, return_counts=True)[1].double() / n  # (distinct ids,)
    return float(-(p * p.log()).sum())
