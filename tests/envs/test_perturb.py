"""Perturbed: the expert with random detours (noise injection for ``collect --explore``)."""

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from gato.envs.experts.base import Expert
from gato.envs.perturb import Perturbed, random_action


class Counting(Expert):
    """Always action 0; counts the steps it was asked about."""

    def reset(self, env, rng):
        super().reset(env, rng)
        self.calls = 0

    def act(self, env, obs):
        self.calls += 1
        return 0


def _play(p, hold, steps=2000, seed=0):
    env = SimpleNamespace(action_space=gym.spaces.Discrete(10**9, start=1))  # never 0
    policy = Perturbed(Counting(), p, hold)
    policy.reset(env, np.random.default_rng(seed))
    actions = [policy.act(env, None) for _ in range(steps)]
    return np.array(actions), policy.expert.calls


def _runs(actions):
    """Lengths of the runs of equal non-expert actions (detours never draw the same one)."""
    runs, length = [], 0
    for prev, a in zip([0, *actions[:-1]], actions, strict=True):
        if a != 0 and a == prev:
            length += 1
        else:
            if length:
                runs.append(length)
            length = 1 if a != 0 else 0
    return runs + ([length] if length else [])


def test_detours_hold_one_random_action_for_one_to_hold_steps():
    actions, calls = _play(p=1.0, hold=4)
    assert calls == len(actions)  # the expert sees every step, detour or not
    assert (actions != 0).all()  # p = 1: a new detour starts as soon as one ends
    runs = _runs(actions)
    assert set(runs) == {1, 2, 3, 4}


def test_the_probability_sets_how_often_the_expert_is_overridden():
    rare, _ = _play(p=0.02, hold=1)
    often, _ = _play(p=0.5, hold=1)
    assert 0.005 < (rare != 0).mean() < 0.05
    assert 0.4 < (often != 0).mean() < 0.6


def test_same_seed_same_detours_and_bad_settings_are_refused():
    np.testing.assert_array_equal(_play(0.3, 5, seed=4)[0], _play(0.3, 5, seed=4)[0])
    assert not np.array_equal(_play(0.3, 5, seed=4)[0], _play(0.3, 5, seed=5)[0])
    for p, hold in ((0.0, 5), (1.5, 5), (0.5, 0)):
        with pytest.raises(ValueError, match="--explore"):
            Perturbed(Counting(), p, hold)


def test_random_actions_come_from_the_space():
    rng = np.random.default_rng(0)
    box = gym.spaces.Box(-2.0, np.array([2.0, 0.5]), dtype=np.float32)
    draws = np.array([random_action(box, rng) for _ in range(500)])
    assert draws.dtype == np.float32 and draws.shape == (500, 2)
    assert (draws >= box.low).all() and (draws <= box.high).all()
    assert draws[:, 0].min() < -1.5 and draws[:, 0].max() > 1.5  # the whole range
    shifted = gym.spaces.Discrete(3, start=-1)
    assert {random_action(shifted, rng) for _ in range(100)} == {-1, 0, 1}
    with pytest.raises(TypeError, match="MultiBinary"):
        random_action(gym.spaces.MultiBinary(3), rng)
