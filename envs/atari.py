"""Atari games as gato tasks: ALE v5 with the paper-style preprocessing.

``make_atari("Pong")`` builds, from the inside out:

1. ``gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.25,
   full_action_space=True)``. Frame skip is left to the next wrapper (it needs a
   frameskip-1 base env to max-pool the last two frames). Sticky actions live in
   the ALE itself: on every emulator frame the previous action is repeated with
   probability 0.25, drawn from the ALE's own RNG (seeded by ``reset(seed=...)``).
   The full 18-action set makes an action id mean the same in every game
   (0 NOOP, 1 FIRE, 2 UP, 3 RIGHT, 4 LEFT, 5 DOWN, ...), so one policy head
   serves them all; games ignore the actions they do not use.
2. gymnasium's ``AtariPreprocessing``: 1 to ``noop_max`` random no-ops at reset
   (from the env's seeded ``np_random``), frame skip 4 with a max over the last
   two frames (removes sprite flicker), resize to ``screen_size`` square, grey or
   RGB. ``terminal_on_life_loss`` stays False: an episode is a full game, as the
   paper scores it, and a model that sees history needs no life-loss signal.
   No frame stacking by default: the transformer attends over past timesteps.
3. Only with ``frame_stack=k > 1`` (grey frames): gymnasium's
   ``FrameStackObservation`` keeps the last ``k`` frames (the first frame repeated
   at reset) and :class:`FramesAsChannels` lays them out as the channels of one
   ``(H, W, k)`` image, oldest first - motion visible inside each patch, as a
   convolutional agent's stacked input shows it, instead of only across timesteps.
4. :class:`ImageObservation`: wraps the frame as ``{"image": (H, W, C) uint8}``
   with a channel axis always present (C = 1 grey, 3 RGB or k stacked grey
   frames), the Dict layout every gato task shares (see ``envs/spec.py``).
5. ``TimeLimit(max_episode_steps)`` in agent steps (27,000 steps = 108,000
   frames = 30 minutes of play, the ALE v5 default cap).

Experts may reach the emulator through ``env.unwrapped.ale``; the agent sees
only the observation dict.
"""

from __future__ import annotations

from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

gym.register_envs(ale_py)

FULL_ACTIONS = 18  # size of the ALE's full action set


class _FrameWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """An observation wrapper over uint8 frames; ``self.frames`` is the inner Box."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        box = env.observation_space
        assert isinstance(box, gym.spaces.Box) and box.dtype == np.uint8, box
        self.frames = box


class FramesAsChannels(_FrameWrapper):
    """Stacked grey frames ``(k, H, W, 1)`` -> one image ``(H, W, k)``, oldest first."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = self.frames
        assert len(box.shape) == 4 and box.shape[-1] == 1, box.shape  # (k, H, W, 1)
        k, h, w, _ = box.shape
        self.observation_space = gym.spaces.Box(0, 255, (h, w, k), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation[..., 0], 0, -1))  # (H, W, k)


class ImageObservation(_FrameWrapper):
    """Turn a frame (H, W) or (H, W, C) into ``{"image": (H, W, C) uint8}``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = self.frames
        shape = box.shape if len(box.shape) == 3 else (*box.shape, 1)
        image = gym.spaces.Box(0, 255, shape, np.uint8)
        self.observation_space = gym.spaces.Dict({"image": image})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        frame = observation if observation.ndim == 3 else observation[..., None]  # (H, W, C)
        return {"image": frame}


def make_atari(
    game: str,
    *,
    screen_size: int = 80,
    grayscale: bool = True,
    repeat_action_probability: float = 0.25,
    frame_skip: int = 4,
    noop_max: int = 30,
    max_episode_steps: int | None = 27000,
    frame_stack: int = 1,
) -> gym.Env:
    """Build an ALE v5 game with gato's preprocessing.

    Args:
        game: ALE game name as in ``ALE/<game>-v5`` ("Pong", "Breakout", ...).
        screen_size: side of the square output frame in pixels.
        grayscale: grey (C = 1) or RGB (C = 3) frames.
        repeat_action_probability: sticky-action probability per emulator frame.
        frame_skip: emulator frames per agent step.
        noop_max: at most this many random no-ops after reset (0 disables).
        max_episode_steps: time limit in agent steps (None: the ALE's own cap).
        frame_stack: grey frames per observation, the last ``frame_stack`` agent
            steps' frames as the image's channels, oldest first (1: the current
            frame only).

    Returns:
        An env with observation ``Dict({"image": Box(0, 255, (S, S, C), uint8)})``
        (C = 1 grey, 3 RGB, ``frame_stack`` if above 1) and action space
        ``Discrete(18)``.
    """
    if frame_stack < 1:
        raise ValueError(f"frame_stack must be at least 1, got {frame_stack}")
    if frame_stack > 1 and not grayscale:
        raise ValueError("frame_stack above 1 stacks grey frames: pass grayscale=True")
    base = gym.make(
        f"ALE/{game}-v5",
        frameskip=1,
        repeat_action_probability=repeat_action_probability,
        full_action_space=True,
    )
    env: gym.Env = AtariPreprocessing(
        base,
        noop_max=noop_max,
        frame_skip=frame_skip,
        screen_size=screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=grayscale,
        grayscale_newaxis=True,
    )
    if frame_stack > 1:
        env = FramesAsChannels(FrameStackObservation(env, stack_size=frame_stack))
    env = ImageObservation(env)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    return env


def ale_of(env: gym.Env) -> Any:
    """The emulator under an env built by :func:`make_atari` (``ale_py.ALEInterface``)."""
    return env.unwrapped.ale
