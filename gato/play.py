"""One episode of the agent, with its frames, for ``gato play --record``.

Frames come from the env's ``render()`` in ``rgb_array`` mode when the task's env
supports it (classic control, Atari); otherwise from the task's image observation
(the fake image task); a task with neither has nothing to record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from gato.envs.spec import ObsKind, TaskSpec
from gato.evaluate import policy_seed
from gato.loading import Trained
from gato.policy import ActionDecoding, Policy
from gato.sampling import GREEDY, SamplingConfig


@dataclass
class Played:
    """An episode of the agent: its return, length, and frames (uint8, one per step + 1)."""

    task: str
    seed: int
    score: float
    length: int
    frames: list[np.ndarray] = field(default_factory=list)


def _make(task: str, record: bool) -> tuple[gym.Env, bool]:
    """The task's env, rendering ``rgb_array`` frames if asked and supported."""
    from gato.envs import registry

    if record:
        try:
            env = registry.make(task, render_mode="rgb_array")
            if env.render_mode == "rgb_array":
                return env, True
            env.close()
        except (TypeError, ValueError):
            pass  # the factory takes no render_mode: use image observations
    return registry.make(task), False


def _image_key(spec: TaskSpec) -> str | None:
    return next((k for k, f in spec.observation.items() if f.kind is ObsKind.IMAGE), None)


def _frame(obs: dict, key: str) -> np.ndarray:
    img = np.asarray(obs[key])
    if img.dtype != np.uint8:
        img = (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return img


def play_episode(
    trained: Trained,
    spec: TaskSpec,
    seed: int = 0,
    sampling: SamplingConfig = GREEDY,
    device: str = "cpu",
    record: bool = False,
    max_steps: int | None = None,
    action_decoding: ActionDecoding = ActionDecoding.MODE,
) -> Played:
    """Play episode 0 of ``seed`` (the same episode ``gato eval --seed`` plays first)."""
    env, rendered = _make(spec.name, record)
    key = _image_key(spec)
    if record and not rendered and key is None:
        env.close()
        raise ValueError(f"task {spec.name!r} renders no frames and observes no image")
    policy = Policy(
        trained.model, trained.tokenizers, spec, sampling, device,
        action_decoding=action_decoding,
    )  # fmt: skip
    policy.reset(1, seeds=[policy_seed(seed, 0)])
    played = Played(spec.name, seed, 0.0, 0)
    try:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            if record:
                played.frames.append(env.render() if rendered else _frame(obs, key))
            action = policy.act({k: np.asarray(v)[None] for k, v in obs.items()})[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            played.score += float(reward)
            played.length += 1
            done = terminated or truncated or (max_steps is not None and played.length >= max_steps)
        if record:
            played.frames.append(env.render() if rendered else _frame(obs, key))
    finally:
        env.close()
    return played
