"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (paper).

A pure function of the step, so resuming needs no scheduler state beyond the step.
The paper warms up over 15k steps to 1e-4 and decays by 10x (``min_ratio=0.1``).
"""

from __future__ import annotations

import math


def learning_rate(
    step: int, *, peak: float, warmup: int, total: int, min_ratio: float = 0.1
) -> float:
    """Learning rate for optimiser step ``step`` (0-based).

    Args:
        peak: the rate reached at the end of warm-up.
        warmup: steps of linear warm-up from ``peak / warmup`` to ``peak``.
        total: steps of the whole run; the cosine ends at ``total`` with ``peak * min_ratio``.
        min_ratio: the floor as a fraction of ``peak``; held after ``total``.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return peak * min_ratio
    progress = (step - warmup) / max(1, total - warmup)  # 0 -> 1 over the decay
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return peak * (min_ratio + (1.0 - min_ratio) * cosine)
