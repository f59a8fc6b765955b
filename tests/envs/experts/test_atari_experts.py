"""Atari experts: smoke runs in the default suite, full 20-episode thresholds under slow."""

import gymnasium as gym
import numpy as np
import pytest

from gato.envs.atari import make_atari
from gato.envs.experts.ale_sim import AleSimulator
from gato.envs.experts.base import Expert
from gato.envs.experts.boxing import BoxingExpert
from gato.envs.experts.breakout import BreakoutExpert
from gato.envs.experts.freeway import FreewayExpert
from gato.envs.experts.pong import PongExpert


def play(env: gym.Env, expert: Expert, seed: int, max_steps: int | None = None):
    """Run one episode (or its first ``max_steps``); returns (return, actions)."""
    expert.reset(env, np.random.default_rng(seed))
    obs, _ = env.reset(seed=seed)
    total, actions = 0.0, []
    while max_steps is None or len(actions) < max_steps:
        action = expert.act(env, obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    return total, actions


def test_simulator_lookahead_leaves_the_real_episode_untouched():
    def run(look: bool) -> np.ndarray:
        env = make_atari("Pong")
        sim = AleSimulator(env)
        obs, _ = env.reset(seed=3)
        out = []
        for t in range(80):
            if look:
                sim.sync(env)
                for a in (0, 3, 4, 11, 12):
                    sim.step(a)
            obs, *_ = env.step(3 if (t // 10) % 2 else 4)
            out.append(obs["image"])
        return np.stack(out)

    assert np.array_equal(run(False), run(True))


def test_freeway_expert_scores_within_first_steps():
    total, actions = play(make_atari("Freeway"), FreewayExpert(), seed=0, max_steps=400)
    assert total >= 2
    assert all(0 <= a < 18 for a in actions)


def test_breakout_expert_serves_scores_and_keeps_its_lives():
    env = make_atari("Breakout")
    total, _ = play(env, BreakoutExpert(), seed=0, max_steps=300)
    assert total >= 5
    assert env.unwrapped.ale.lives() == 5


def test_boxing_expert_lands_punches():
    env = make_atari("Boxing")
    expert = BoxingExpert()
    expert.reset(env, np.random.default_rng(0))
    obs, _ = env.reset(seed=0)
    landed = taken = 0.0
    for _ in range(400):
        obs, reward, *_ = env.step(expert.act(env, obs))
        landed += max(float(reward), 0.0)
        taken += max(-float(reward), 0.0)
    assert landed >= 10 and landed > taken


def test_pong_expert_wins_the_first_three_points():
    # Each point won on our first return takes about 90 steps.
    total, actions = play(make_atari("Pong"), PongExpert(), seed=0, max_steps=300)
    assert total >= 3
    assert all(0 <= a < 18 for a in actions)


def test_expert_episodes_with_different_seeds_differ():
    env = make_atari("Freeway")
    _, a = play(env, FreewayExpert(), seed=0, max_steps=300)
    _, b = play(env, FreewayExpert(), seed=1, max_steps=300)
    assert a != b


THRESHOLDS = [
    ("Pong", PongExpert, 19.0),
    ("Breakout", BreakoutExpert, 150.0),
    ("Freeway", FreewayExpert, 20.0),
    ("Boxing", BoxingExpert, 25.0),
]


@pytest.mark.slow
@pytest.mark.parametrize("game,expert_cls,threshold", THRESHOLDS)
def test_expert_beats_threshold_over_20_episodes(game, expert_cls, threshold):
    env = make_atari(game)
    expert = expert_cls()
    returns = [play(env, expert, seed)[0] for seed in range(20)]
    assert np.mean(returns) >= threshold, returns
