"""Wrappers that give every env the Dict observation space of its TaskSpec."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class DictObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Turn a ``Box`` observation into ``{key: float32 array}`` (classic control: "state").

    The bounds are those of the wrapped space, cast to float32, so ``check_env``
    finds every observation inside the space. Recording the constructor
    arguments lets ``env.spec.make()`` (and ``check_env``) rebuild the wrapped env.
    """

    def __init__(self, env: gym.Env, key: str = "state"):
        gym.utils.RecordConstructorArgs.__init__(self, key=key)
        gym.ObservationWrapper.__init__(self, env)
        box = env.observation_space
        if not isinstance(box, gym.spaces.Box):
            raise ValueError(f"DictObservation wraps a Box observation space, got {box}")
        self.key = key
        inner = gym.spaces.Box(
            low=box.low.astype(np.float32),
            high=box.high.astype(np.float32),
            shape=box.shape,
            dtype=np.float32,
        )
        self.observation_space = gym.spaces.Dict({key: inner})

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        return {self.key: np.asarray(observation, dtype=np.float32)}
