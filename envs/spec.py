"""What a task shows and does, and one recorded episode of it.

Every env that ``gato.envs.make(task)`` returns has a ``gymnasium.spaces.Dict``
observation space whose keys are those of :attr:`TaskSpec.observation`, so one
tokenizer path serves every task:

- Atari: ``{"image": Box(0, 255, (H, W, C), uint8)}``;
- classic control: ``{"state": Box(low, high, (n,), float32)}``;
- discrete observations: ``Box`` of int64 values in ``[0, bins)``;
- text observations: ``gymnasium.spaces.Text``.

Actions are a ``Discrete(n)`` (ids mean the same in every Atari game: the full
18-action set) or a ``Box(low, high, (A,), float32)`` with finite bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class ObsKind(Enum):
    IMAGE = "image"  # uint8 (H, W, C) frame -> image patches
    CONTINUOUS = "continuous"  # float vector -> mu-law bins
    DISCRETE = "discrete"  # int vector in [0, bins) -> value ids
    TEXT = "text"  # a string per timestep -> SentencePiece ids


@dataclass(frozen=True)
class ObsField:
    """One key of a task's observation dict."""

    kind: ObsKind
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ActionSpec:
    """A task's action space.

    Attributes:
        n: number of discrete actions (``Discrete(n)``), or None for a continuous space.
        low, high: bounds of a continuous ``Box`` action (shape ``(A,)``), else None.
    """

    n: int | None = None
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    @property
    def is_discrete(self) -> bool:
        return self.n is not None

    @property
    def dims(self) -> int:
        """Action tokens per timestep: 1 for discrete, A for continuous."""
        return 1 if self.n is not None else len(self.low or ())


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
        name: short name used everywhere ("pong", "cartpole", ...).
        observation: observation key -> field, keys as in the env's Dict space.
        action: the action space.
        random_score, expert_score: mean returns measured by the project (score table).
    """

    name: str
    observation: dict[str, ObsField]
    action: ActionSpec
    random_score: float | None = None
    expert_score: float | None = None

    def normalised(self, score: float) -> float:
        """Expert-normalised score ``(score - random) / (expert - random)``."""
        if self.random_score is None or self.expert_score is None:
            raise ValueError(f"task {self.name!r} has no measured random/expert scores")
        return (score - self.random_score) / (self.expert_score - self.random_score)


@dataclass
class Episode:
    """One recorded episode of ``T`` timesteps.

    Attributes:
        task: task name.
        observations: key -> ``(T, ...)`` array (images uint8 ``(T, H, W, C)``,
            continuous float32 ``(T, n)``, discrete int64 ``(T, n)``, text: ``T`` strings).
        actions: ``(T,)`` int64 for a discrete space, ``(T, A)`` float32 for a continuous one.
        rewards: ``(T,)`` float32, reward received after each action.
        terminated, truncated: how the episode ended.
        seed: the env seed it was collected with (for reproducibility), if known.
    """

    task: str
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool = False
    truncated: bool = False
    seed: int | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def score(self) -> float:
        """The episode's return."""
        return float(self.rewards.sum())
