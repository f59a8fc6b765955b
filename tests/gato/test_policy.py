"""The env policy: legal actions only, cached == uncached, batched == single, lockstep drop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gato.config import load_preset
from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec
from gato.loading import tokenizers_for
from gato.model import Gato
from gato.policy import ActionDecoding, Policy
from gato.sampling import GREEDY, SamplingConfig
from gato.sequence import demonstration_prompt

torch.set_num_threads(1)

DISCRETE = TaskSpec("t-discrete", {"state": ObsField(ObsKind.CONTINUOUS, (3,))}, ActionSpec(n=3))
CONTINUOUS = TaskSpec(
    "t-continuous",
    {"state": ObsField(ObsKind.CONTINUOUS, (2,)), "flags": ObsField(ObsKind.DISCRETE, (2,))},
    ActionSpec(low=(-2.0, 0.0), high=(2.0, 5.0)),
)
IMAGE = TaskSpec("t-image", {"image": ObsField(ObsKind.IMAGE, (16, 32, 1))}, ActionSpec(n=18))
HOT = SamplingConfig(temperature=1.5)


@pytest.fixture(scope="module")
def model() -> Gato:
    torch.manual_seed(0)
    return Gato(load_preset("debug")).eval()  # random, untrained: context 128


@pytest.fixture(scope="module")
def tok():
    return tokenizers_for(load_preset("debug"))


def observations(spec: TaskSpec, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for key, f in spec.observation.items():
        if f.kind is ObsKind.IMAGE:
            out[key] = rng.integers(0, 256, (n, *f.shape), dtype=np.uint8)
        elif f.kind is ObsKind.DISCRETE:
            out[key] = rng.integers(0, 7, (n, *f.shape))
        else:
            out[key] = rng.uniform(-3, 3, (n, *f.shape)).astype(np.float32)
    return out


def run(policy: Policy, spec: TaskSpec, n: int, steps: int, seed: int = 0) -> np.ndarray:
    """Actions of ``steps`` steps on seeded random observations, ``(steps, n, ...)``."""
    rng = np.random.default_rng(seed)
    return np.stack([policy.act(observations(spec, n, rng)) for _ in range(steps)])


def legal(spec: TaskSpec, actions: np.ndarray) -> bool:
    a = spec.action
    if a.is_discrete:
        return actions.dtype == np.int64 and bool(((actions >= 0) & (actions < a.n)).all())
    low, high = np.array(a.low), np.array(a.high)
    return actions.dtype == np.float32 and bool(((actions >= low) & (actions <= high)).all())


@pytest.mark.parametrize("spec", [DISCRETE, CONTINUOUS, IMAGE], ids=lambda s: s.name)
def test_constrained_decoding_never_emits_an_illegal_action_past_the_context(model, tok, spec):
    policy = Policy(model, tok, spec, HOT)
    policy.reset(4, seeds=[1, 2, 3, 4])
    steps = 70  # >= 4 tokens a step: past twice the 128-token context
    actions = run(policy, spec, 4, steps)
    assert policy.cache.pos > 2 * model.cfg.context  # the cache slid at least once
    assert legal(spec, actions)
    assert actions.shape[:2] == (steps, 4)
    # A hot, untrained model still spreads over several legal actions (no constant output).
    assert len(np.unique(actions.reshape(steps * 4, -1), axis=0)) > 1


class Biased(torch.nn.Module):
    """A model whose logits favour an illegal id most and one legal id second."""

    def __init__(self, inner: Gato, illegal: int, legal: int) -> None:
        super().__init__()
        self.inner, self.cfg, self.illegal, self.legal = inner, inner.cfg, illegal, legal

    def new_cache(self, batch_size: int):
        return self.inner.new_cache(batch_size)

    def forward(self, batch, cache=None, at=None):
        logits = self.inner(batch, cache=cache, at=at).clone()
        logits[..., self.illegal] += 100.0
        logits[..., self.legal] += 50.0
        return logits


def test_greedy_picks_the_best_legal_id_even_when_an_illegal_one_scores_higher(model, tok):
    vocab = tok.vocab
    for illegal in (0, vocab.separator, vocab.bin_offset + 3):  # text, separator, bin >= n
        biased = Biased(model, illegal=illegal, legal=vocab.bin_offset + 2)
        policy = Policy(biased, tok, DISCRETE, GREEDY)
        policy.reset(2)
        actions = run(policy, DISCRETE, 2, 5)
        assert (actions == 2).all()


@pytest.mark.parametrize("spec", [DISCRETE, CONTINUOUS], ids=lambda s: s.name)
def test_cached_act_equals_the_uncached_recomputation_for_the_same_rng(model, tok, spec):
    cached = Policy(model, tok, spec, HOT)
    uncached = Policy(model, tok, spec, HOT, cached=False)
    cached.reset(2, seeds=[5, 6])
    uncached.reset(2, seeds=[5, 6])
    steps = 60  # DISCRETE: 5 tokens a step -> 300 tokens, past the 128-token context
    np.testing.assert_array_equal(run(cached, spec, 2, steps), run(uncached, spec, 2, steps))


@pytest.mark.parametrize("spec", [DISCRETE, CONTINUOUS], ids=lambda s: s.name)
def test_batched_act_equals_single_env_runs(model, tok, spec):
    seeds = [11, 12, 13, 14]
    rng = np.random.default_rng(3)
    obs = [observations(spec, 4, rng) for _ in range(40)]
    batched = Policy(model, tok, spec, HOT)
    batched.reset(4, seeds=seeds)
    together = np.stack([batched.act(o) for o in obs])  # (40, 4, ...)
    for i, s in enumerate(seeds):
        single = Policy(model, tok, spec, HOT)
        single.reset(1, seeds=[s])
        alone = np.stack([single.act({k: v[i : i + 1] for k, v in o.items()})[0] for o in obs])
        np.testing.assert_array_equal(together[:, i], alone)


def test_keep_drops_finished_envs_without_changing_the_others(model, tok):
    spec, seeds = DISCRETE, [21, 22, 23]
    rng = np.random.default_rng(4)
    obs = [observations(spec, 3, rng) for _ in range(30)]
    policy = Policy(model, tok, spec, HOT)
    policy.reset(3, seeds=seeds)
    out = [policy.act(o) for o in obs[:10]]
    policy.keep([0, 2])  # env 1 finished
    out += [np.insert(policy.act({k: v[[0, 2]] for k, v in o.items()}), 1, -1) for o in obs[10:]]
    reference = Policy(model, tok, spec, HOT)
    reference.reset(3, seeds=seeds)
    full = np.stack([reference.act(o) for o in obs])
    got = np.stack(out)
    np.testing.assert_array_equal(got[:, [0, 2]], full[:, [0, 2]])
    with pytest.raises(ValueError, match="subset"):
        policy.keep([5])


def test_a_demonstration_prompt_is_prefilled_and_changes_the_context(model, tok):
    spec = DISCRETE
    rng = np.random.default_rng(5)
    demo = Episode(
        spec.name,
        {"state": rng.uniform(-1, 1, (20, 3)).astype(np.float32)},
        rng.integers(0, 3, 20),
        np.zeros(20, np.float32),
    )
    prompt = demonstration_prompt(tok, spec, demo, budget=50)
    policy = Policy(model, tok, spec, HOT)
    policy.reset(2, seeds=[1, 2], prompts=[prompt, prompt])
    policy.act(observations(spec, 2, rng))
    assert policy.cache.pos == len(prompt) + 4  # prompt, then 3 values and the separator
    with pytest.raises(ValueError, match="equal lengths"):
        policy.reset(2, prompts=[prompt, prompt.slice(0, 10)])


def test_observations_of_the_wrong_shape_are_a_clear_error(model, tok):
    policy = Policy(model, tok, DISCRETE)
    policy.reset(1)
    with pytest.raises(ValueError, match="shape"):
        policy.act({"state": np.zeros((1, 4), np.float32)})
    with pytest.raises(ValueError, match="NaN|nan|finite"):
        policy.act({"state": np.full((1, 3), np.nan, np.float32)})


class Spread(torch.nn.Module):
    """Logits over the value bins: a lone spike at ``spike``, broad mass around ``centre``."""

    def __init__(self, inner: Gato, spike: int, centre: int, width: int = 40) -> None:
        super().__init__()
        self.inner, self.cfg = inner, inner.cfg
        self.spike, self.centre, self.width = spike, centre, width

    def new_cache(self, batch_size: int):
        return self.inner.new_cache(batch_size)

    def forward(self, batch, cache=None, at=None):
        logits = self.inner(batch, cache=cache, at=at) * 0.0  # keeps the cache advancing
        v = self.cfg.vocab
        bins = torch.arange(v.bins, dtype=logits.dtype)
        broad = -(((bins - self.centre) / self.width) ** 2)  # log of a wide bump
        logits[..., v.bin_offset : v.bin_offset + v.bins] = broad
        logits[..., v.bin_offset + self.spike] = 2.0  # likelier than any single bump bin
        return logits


def test_median_decoding_follows_the_mass_where_the_argmax_follows_a_spike(model, tok):
    v = tok.vocab
    spread = Spread(model, spike=v.bins - 1, centre=v.bins // 4)
    spec = TaskSpec(
        "t-1d", {"state": ObsField(ObsKind.CONTINUOUS, (2,))}, ActionSpec(low=(-1.0,), high=(1.0,))
    )
    mode = Policy(spread, tok, spec, GREEDY)
    med = Policy(spread, tok, spec, GREEDY, action_decoding=ActionDecoding.MEDIAN)
    for p in (mode, med):
        p.reset(2)
    a_mode, a_med = run(mode, spec, 2, 3), run(med, spec, 2, 3)
    assert legal(spec, a_med)
    assert np.allclose(a_mode, 1.0, atol=0.01)  # the spike at the top bin
    assert np.allclose(a_med, -0.5, atol=0.02)  # the bump's centre, a quarter up the range


def test_median_decoding_leaves_discrete_actions_and_refuses_sampling(model, tok):
    mode = Policy(model, tok, DISCRETE, GREEDY)
    med = Policy(model, tok, DISCRETE, GREEDY, action_decoding=ActionDecoding.MEDIAN)
    for p in (mode, med):
        p.reset(2)
    assert np.array_equal(run(mode, DISCRETE, 2, 4), run(med, DISCRETE, 2, 4))
    with pytest.raises(ValueError, match="temperature 0"):
        Policy(model, tok, CONTINUOUS, HOT, action_decoding=ActionDecoding.MEDIAN)
