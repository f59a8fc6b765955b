"""The interface every scripted expert implements.

An expert is a hand-written policy for one task. Unlike the agent, it may look
inside the environment: emulator RAM (``env.unwrapped.ale.getRAM()``), the
physics state of a classic-control env (``env.unwrapped.state``), or it may
simulate ahead with ``cloneState``/``restoreState``. The agent trained on its
demonstrations only ever sees what ``gato.envs.make(task)`` returns.

Demonstrations must vary between episodes, so experts receive a random
generator at ``reset`` and may use it for tie-breaking or a little exploration
noise; sticky actions and no-op starts in the env add the rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np


class Expert(ABC):
    """A scripted policy for one task.

    Usage::

        expert.reset(env, rng)
        obs, info = env.reset(seed=seed)
        while not done:
            action = expert.act(env, obs)
            obs, reward, terminated, truncated, info = env.step(action)
    """

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        """Start a new episode; ``rng`` is the expert's only source of randomness."""
        self.rng = rng

    @abstractmethod
    def act(self, env: gym.Env, obs: Any) -> Any:
        """Return an action from ``env.action_space`` for the current state."""
