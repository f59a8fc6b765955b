import math

import pytest

from gato.schedule import learning_rate

KW = dict(peak=1e-3, warmup=10, total=110, min_ratio=0.1)


def test_warmup_is_linear_and_reaches_the_peak():
    rates = [learning_rate(s, **KW) for s in range(10)]
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1e-3)
    diffs = [b - a for a, b in zip(rates, rates[1:], strict=False)]
    assert all(d == pytest.approx(1e-4) for d in diffs)


def test_cosine_decays_monotonically_to_the_floor_and_stays():
    rates = [learning_rate(s, **KW) for s in range(10, 200)]
    assert all(b <= a + 1e-15 for a, b in zip(rates, rates[1:], strict=False))
    assert learning_rate(60, **KW) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert learning_rate(110, **KW) == learning_rate(500, **KW) == pytest.approx(1e-4)
    assert all(math.isfinite(r) and r > 0 for r in rates)
