"""``labelled_rollouts``: N episodes at once, one learner call a step, the same
episodes as N one-env ``rollout`` calls with a labeler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

import gato.envs as envs
from gato.envs.rollout import labelled_rollouts, learner_seed, rollout


class LeanLearner:
    """Pushes the cart toward the pole's lean, badly (a threshold), plus seeded noise.

    Acts on each row from that row's own generator, so its choices only match the
    one-env learner's if rows keep their seeds and finished rows are dropped in order.
    """

    def __init__(self) -> None:
        self.kept: list[list[int]] = []

    def reset(self, batch_size: int, seeds: Sequence[int] | None = None) -> None:
        assert seeds is not None and len(seeds) == batch_size
        self.rngs = [np.random.default_rng(s) for s in seeds]

    def act(self, observations: Mapping[str, np.ndarray]) -> np.ndarray:
        state = observations["state"]  # (N, 4)
        assert len(state) == len(self.rngs)
        noise = np.array([g.random() < 0.2 for g in self.rngs])
        return ((state[:, 2] > 0.02) ^ noise).astype(np.int64)  # (N,)

    def keep(self, rows: Sequence[int]) -> None:
        self.kept.append(list(rows))
        self.rngs = [self.rngs[r] for r in rows]


class OneEnv:
    """The same learner alone in one env, as ``rollout`` plays a policy callable."""

    def __init__(self, seed: int) -> None:
        self.batch = LeanLearner()
        self.batch.reset(1, seeds=[learner_seed(seed)])

    def __call__(self, obs: Mapping[str, np.ndarray]) -> int:
        return int(self.batch.act({k: np.asarray(v)[None] for k, v in obs.items()})[0])


def test_labelled_rollouts_record_what_one_env_rollouts_record():
    seeds = [11, 12, 13, 14]
    learner = LeanLearner()
    together = labelled_rollouts(
        [envs.make("cartpole") for _ in seeds],
        learner,
        [envs.expert("cartpole") for _ in seeds],
        seeds,
        "cartpole",
    )
    alone = [
        rollout(envs.make("cartpole"), OneEnv(s), s, "cartpole", labeler=envs.expert("cartpole"))
        for s in seeds
    ]
    assert len({len(e) for e in alone}) > 1  # episodes end at different steps ...
    assert learner.kept  # ... so rows were dropped on the way
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a.observations["state"], b.observations["state"])
        np.testing.assert_array_equal(a.actions, b.actions)  # the expert's labels
        np.testing.assert_array_equal(a.rewards, b.rewards)
        assert (a.seed, a.terminated, a.truncated) == (b.seed, b.terminated, b.truncated)


def test_labelled_rollouts_need_a_labeler_and_seed_per_env():
    with pytest.raises(ValueError, match="as many labelers and seeds as envs"):
        labelled_rollouts([envs.make("cartpole")], LeanLearner(), [], [0])
