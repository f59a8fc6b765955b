"""Each classic-control expert beats the issue's threshold.

The default suite plays 3 episodes per task (a smoke run that must already beat
the threshold); the slow test plays the full 20 on other seeds.
"""

import numpy as np
import pytest

import gato.envs as envs
from gato.envs.rollout import rollout

THRESHOLDS = {
    "cartpole": 500.0,
    "acrobot": -90.0,
    "mountaincar": -125.0,
    "pendulum": -200.0,
    "mountaincar-continuous": 85.0,
}


def _mean_return(task: str, seeds: range) -> float:
    env, expert = envs.make(task), envs.expert(task)
    return float(np.mean([rollout(env, expert, s, task).score for s in seeds]))


@pytest.mark.parametrize("task", sorted(THRESHOLDS))
def test_expert_smoke_run_beats_threshold(task):
    assert _mean_return(task, range(100, 103)) >= THRESHOLDS[task]


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(THRESHOLDS))
def test_expert_beats_threshold_over_20_episodes(task):
    assert _mean_return(task, range(2000, 2020)) >= THRESHOLDS[task]


@pytest.mark.parametrize("task", sorted(THRESHOLDS))
def test_expert_demonstrations_differ_between_seeds(task):
    env, expert = envs.make(task), envs.expert(task)
    a, b = rollout(env, expert, 7, task), rollout(env, expert, 8, task)
    n = min(len(a), len(b))
    assert not np.array_equal(a.observations["state"][:n], b.observations["state"][:n])
    # Same seed again: the same episode (determinism given the seed).
    c = rollout(env, expert, 7, task)
    np.testing.assert_array_equal(a.actions, c.actions)


def test_exploration_noise_changes_actions_from_the_same_start():
    # Same env seed, different expert rng: the exploration noise alone must change the actions.
    env, expert = envs.make("cartpole"), envs.expert("cartpole")
    runs = []
    for stream in (1, 2):
        expert.reset(env, np.random.default_rng(stream))
        obs, _ = env.reset(seed=0)
        acts = []
        for _ in range(200):
            acts.append(expert.act(env, obs))
            obs, *_ = env.step(acts[-1])
        runs.append(acts)
    assert runs[0] != runs[1]
