"""An expert with random actions injected: off-course states for it to label.

A policy cloned from demonstrations errs and drifts into states the expert never
visits. DAgger (``gato data collect --dagger``) finds those states by letting a trained
checkpoint play; noise injection (DART, Laskey et al. 2017) finds states near them
without any model: the expert plays, but now and then a random action is held for a
few steps, and the clean expert labels every state visited (``gato data collect
--explore``). The recorded episode then shows the way back from each detour.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.base import Expert


def random_action(space: gym.Space, rng: np.random.Generator) -> Any:
    """A uniform random action of a Discrete or Box ``space``, drawn from ``rng``."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.start + rng.integers(space.n))
    if isinstance(space, gym.spaces.Box):
        return rng.uniform(space.low, space.high).astype(space.dtype)
    raise TypeError(f"no random action for {type(space).__name__} spaces")


class Perturbed(Expert):
    """``expert`` playing, except that on each step with probability ``p`` (while no
    detour is running) a uniform random action starts and is held for 1..``hold``
    steps (uniform). The expert still sees every step, so its own state follows the
    episode."""

    def __init__(self, expert: Expert, p: float, hold: int) -> None:
        if not 0 < p <= 1 or hold < 1:
            raise ValueError(f"--explore needs 0 < P <= 1 and --explore-hold >= 1, got {p}, {hold}")
        self.expert, self.p, self.hold = expert, p, hold

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        self.expert.reset(env, rng)
        self.left, self.action = 0, None  # steps left of the running detour, its action

    def act(self, env: gym.Env, obs: Any) -> Any:
        action = self.expert.act(env, obs)
        if self.left == 0 and self.rng.random() < self.p:
            self.left = int(self.rng.integers(1, self.hold + 1))
            self.action = random_action(env.action_space, self.rng)
        if self.left > 0:
            self.left -= 1
            return self.action
        return action
