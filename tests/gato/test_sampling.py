import pytest
import torch

from gato.sampling import GREEDY, SamplingConfig, median, restrict, sample


def test_greedy_takes_the_argmax():
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, -1.0, 4.9]])
    assert sample(logits, GREEDY).tolist() == [1, 0]


def test_restricted_sampling_never_picks_an_illegal_id():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50) * 5
    allowed = torch.zeros(50, dtype=torch.bool)
    allowed[[3, 7, 11]] = True
    for cfg in (
        GREEDY,
        SamplingConfig(1.0),
        SamplingConfig(2.0, top_k=2),
        SamplingConfig(top_p=0.5),
    ):
        picks = sample(restrict(logits, allowed), cfg, g)
        assert set(picks.tolist()) <= {3, 7, 11}


def test_top_k_keeps_only_the_k_best():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).repeat(500, 1)
    picks = sample(logits, SamplingConfig(temperature=5.0, top_k=2), g)
    assert set(picks.tolist()) == {2, 3}


def test_top_p_keeps_the_smallest_set_reaching_p():
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).repeat(2000, 1)
    picks = sample(probs.log(), SamplingConfig(top_p=0.75), g)
    assert set(picks.tolist()) == {0, 1}  # 0.5 < 0.75 <= 0.8


def test_seeded_sampling_is_reproducible():
    logits = torch.randn(8, 100)
    a = sample(logits, SamplingConfig(), torch.Generator().manual_seed(3))
    b = sample(logits, SamplingConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_a_row_with_nothing_allowed_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        restrict(torch.zeros(2, 4), torch.tensor([[True] * 4, [False] * 4]))


@pytest.mark.parametrize("kw", [dict(temperature=-1), dict(top_k=-2), dict(top_p=0.0)])
def test_bad_sampling_settings_are_rejected(kw):
    with pytest.raises(ValueError):
        SamplingConfig(**kw)


def test_median_is_the_first_allowed_id_where_the_mass_reaches_half():
    probs = torch.tensor([[0.0, 0.1, 0.15, 0.3, 0.05, 0.4]])  # cdf 0 .1 .25 .55 ...: id 3
    assert median(probs.log(), torch.ones(6, dtype=torch.bool)).tolist() == [3]
    # A spike at the end (the argmax) does not move the median of spread-out mass.
    assert probs.argmax(-1).item() == 5


def test_median_ignores_disallowed_ids_and_stays_on_one_side_of_two_peaks():
    logits = torch.tensor([[9.0, 0.0, 0.0, 0.0, 0.0], [0.0, 2.0, -9.0, -9.0, 1.9]])
    allowed = torch.tensor([False, True, True, True, True])
    out = median(logits, allowed).tolist()
    assert out[0] != 0  # the disallowed favourite is never chosen
    assert out[1] == 1  # two peaks (ids 1 and 4): the heavier side, not the middle


def test_median_of_a_single_allowed_id_is_that_id():
    allowed = torch.zeros(7, dtype=torch.bool)
    allowed[4] = True
    assert median(torch.randn(3, 7), allowed).tolist() == [4, 4, 4]
