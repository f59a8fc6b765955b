"""Experts for the fake tasks: the known optimal mapping, plus a little exploration.

With probability ``epsilon`` an expert takes a random action instead (drawn from
the rng given at ``reset``), so demonstrations vary and some episodes fall
below the filtering threshold, which the store's tests rely on.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.base import Expert
from gato.envs.fake import continuous_target, fake_target, image_target


class FakeExpert(Expert):
    """``argmax(state)``, random with probability ``epsilon``."""

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = epsilon

    def act(self, env: gym.Env, obs: Any) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(env.action_space.n))
        return fake_target(obs["state"])


class FakeContinuousExpert(Expert):
    """``(s0 - s1) / 2`` plus Gaussian noise of std ``noise``, clipped to [-1, 1]."""

    def __init__(self, noise: float = 0.05):
        self.noise = noise

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        a = continuous_target(obs["state"]) + self.noise * self.rng.standard_normal(1)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


class FakeImageExpert(Expert):
    """The quadrant holding the bright square, random with probability ``epsilon``."""

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = epsilon

    def act(self, env: gym.Env, obs: Any) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(env.action_space.n))
        return image_target(obs["image"])
