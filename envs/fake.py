"""Tiny fake envs for tests: known dynamics, a known optimal policy, no emulator.

Each step shows a fresh random observation drawn from the env's seeded
generator; the reward depends only on whether the action matches what the
observation asks for. A model that learns observation -> action therefore
reaches the optimal score, and the optimal policy is a one-line function of
the observation (:func:`fake_target`, :func:`continuous_target`,
:func:`image_target`). Episodes last exactly ``EPISODE_STEPS`` steps and end
``terminated``.

- ``FakeEnv`` ("fake"): ``{"state": float32 (3,)}`` in [-1, 1], ``Discrete(3)``;
  reward 1 when the action is the argmax of the state.
- ``FakeContinuousEnv`` ("fake-continuous"): ``{"state": float32 (2,)}``,
  ``Box(-1, 1, (1,))``; reward ``1 - |a - (s0 - s1) / 2|``.
- ``FakeImageEnv`` ("fake-image"): ``{"image": uint8 (16, 16, 1)}`` with a bright
  4x4 square in one of the four 8x8 quadrants on a dim noisy background,
  ``Discrete(4)``; reward 1 when the action names the quadrant (raster order).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

EPISODE_STEPS = 12
IMAGE_SIDE = 16


def fake_target(state: np.ndarray) -> int:
    """The rewarded action of ``FakeEnv``: index of the largest state value."""
    return int(np.argmax(state))


def continuous_target(state: np.ndarray) -> np.ndarray:
    """The rewarded action of ``FakeContinuousEnv``: ``(s0 - s1) / 2``, shape (1,)."""
    return np.array([(state[0] - state[1]) / 2], dtype=np.float32)


def image_target(image: np.ndarray) -> int:
    """The rewarded action of ``FakeImageEnv``: quadrant (0..3, raster) holding the square."""
    half = image.shape[0] // 2
    quadrants = [image[r : r + half, c : c + half].sum() for r in (0, half) for c in (0, half)]
    return int(np.argmax(quadrants))


class _StepCounter(gym.Env):
    """Shared episode bookkeeping: fixed length, fresh observation every step."""

    metadata = {"render_modes": []}

    def _observe(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _reward(self, action: Any) -> float:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._obs = self._observe()
        return self._obs, {}

    def step(self, action: Any):
        reward = self._reward(action)
        self._t += 1
        terminated = self._t >= EPISODE_STEPS
        self._obs = self._observe()
        return self._obs, reward, terminated, False, {}


class FakeEnv(_StepCounter):
    """Discrete fake task: reward 1 for choosing the argmax of a 3-vector."""

    def __init__(self):
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-1.0, 1.0, (3,), np.float32)}
        )
        self.action_space = gym.spaces.Discrete(3)

    def _observe(self) -> dict[str, np.ndarray]:
        return {"state": self.np_random.uniform(-1, 1, 3).astype(np.float32)}

    def _reward(self, action: Any) -> float:
        return float(int(action) == fake_target(self._obs["state"]))


class FakeContinuousEnv(_StepCounter):
    """Continuous fake task: reward ``1 - |a - (s0 - s1) / 2|`` in [0, 1]."""

    def __init__(self):
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _observe(self) -> dict[str, np.ndarray]:
        return {"state": self.np_random.uniform(-1, 1, 2).astype(np.float32)}

    def _reward(self, action: Any) -> float:
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(1), -1.0, 1.0)
        return float(1.0 - abs(a[0] - continuous_target(self._obs["state"])[0]))


class FakeImageEnv(_StepCounter):
    """Image fake task: say which quadrant of a 16x16 frame holds the bright square."""

    def __init__(self):
        shape = (IMAGE_SIDE, IMAGE_SIDE, 1)
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, shape, np.uint8)})
        self.action_space = gym.spaces.Discrete(4)

    def _observe(self) -> dict[str, np.ndarray]:
        rng = self.np_random
        frame = rng.integers(0, 64, (IMAGE_SIDE, IMAGE_SIDE, 1), dtype=np.uint8)  # dim noise
        quadrant = int(rng.integers(4))
        half = IMAGE_SIDE // 2
        # The 4x4 square sits anywhere fully inside its quadrant.
        r = (quadrant // 2) * half + int(rng.integers(0, half - 3))
        c = (quadrant % 2) * half + int(rng.integers(0, half - 3))
        frame[r : r + 4, c : c + 4] = 255
        return {"image": frame}

    def _reward(self, action: Any) -> float:
        return float(int(action) == image_target(self._obs["image"]))
