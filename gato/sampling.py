"""Choosing the next token from logits: greedy, temperature, top-k, top-p, legal ids.

Shared by the env policy (actions restricted to the task's legal value ids) and
by text generation (captions, chat). Pure functions of the logits and an explicit
``torch.Generator``, so a seeded run is reproducible and batched sampling equals
one-at-a-time sampling row by row when each row has its own generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick a token.

    Attributes:
        temperature: 0 means greedy (argmax); otherwise logits are divided by it.
        top_k: keep only the k most likely tokens (0 = all).
        top_p: keep the smallest set of tokens whose probability reaches p (1.0 = all).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


GREEDY = SamplingConfig(temperature=0.0)


def restrict(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Set logits of disallowed ids to -inf.

    Args:
        logits: ``(B, V)``.
        allowed: bool ``(V,)`` or ``(B, V)``; every row must allow at least one id.
    """
    if not bool(allowed.any(-1).all()):
        raise ValueError("every row must allow at least one token")
    return logits.masked_fill(~allowed, float("-inf"))


def sample(
    logits: torch.Tensor,
    config: SamplingConfig = GREEDY,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one id per row.

    Args:
        logits: ``(B, V)``; ``-inf`` marks ids that must never be chosen.
        generator: source of randomness (ignored when greedy).

    Returns:
        ``(B,)`` int64 ids.
    """
    logits = logits.float()
    if config.temperature == 0.0:
        return logits.argmax(-1)
    logits = logits / config.temperature
    if config.top_k:
        k = min(config.top_k, logits.size(-1))
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens before it already reach top_p (keeps at least one).
        drop_sorted = probs.cumsum(-1) - probs >= config.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(-1)  # (B, V); rows of -inf except the kept ids
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def median(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The allowed id at the median of the restricted distribution, in id order.

    For ids that are ordered values (a continuous action's bins), this is the median
    value of the model's distribution: unlike the argmax it does not jump to a lone
    spike when the mass is spread over many neighbouring bins, and unlike the mean it
    stays on one side of a two-peaked (bang-bang) distribution.

    Args:
        logits: ``(B, V)``.
        allowed: bool ``(V,)`` or ``(B, V)``.

    Returns:
        ``(B,)`` int64: per row, the first id whose cumulative probability reaches 1/2.
    """
    probs = restrict(logits, allowed).float().softmax(-1)  # (B, V), 0 outside allowed
    cdf = probs.cumsum(-1)  # (B, V), non-decreasing; flat across disallowed ids
    first = (cdf < 0.5).sum(-1)  # (B,) ids before the median
    # cdf only rises at allowed ids, so ``first`` is one; the clamp guards rounding.
    return first.clamp_max(logits.size(-1) - 1)
