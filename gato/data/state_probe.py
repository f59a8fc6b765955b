"""Can a RAM policy be cloned from its own state? The frame probe's control.

``gato data probe`` asks whether a store's actions follow from its frames. When pixel
learners fail on a RAM policy's demonstrations (``breakout-ppo``, ``pong-ppo``), two
causes look alike: the policy may be one that imitation cannot copy from this much data
(a knife-edge rule, too few games), or the pixel learner may not read, from the frames,
the positions the policy acts on. This probe takes the frames out: it records the
policy's games as (positions it reads, action it takes) pairs, trains a small MLP clone
on all but the last ``heldout`` games, and at each of a series of step counts scores it
on the held-out games (cross-entropy, accuracy) and in closed-loop play.

- The clone plays near the policy: the policy is copyable from this data, and a pixel
  learner that does not is missing the positions (perception, not imitation).
- Its curve maps held-out fit to play for this task. A pixel learner whose held-out
  accuracy equals a state clone's that plays, but which does not play itself, is right
  for reasons other than the ones the policy acts on (the paddle's motion, say).

By default the clone sees only the positions (``spec.history`` steps of the RAM bytes the
policy reads); ``last_action`` adds the clone's own previous action, as the policy's
input (and Gato's context) has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gato.data.probe import frequency_baseline
from gato.envs import registry
from gato.envs.experts.ram_policy import SPECS, MlpPolicy, RamFeatures, RamPolicySpec, policy_file


@dataclass(frozen=True)
class StateProbeConfig:
    """What the state probe records, trains and plays.

    Attributes:
        episodes: the policy's games recorded (env seeds ``seed``, ``seed + 1``, ...).
        heldout: games at the end kept for scoring.
        checkpoints: increasing optimiser step counts at which the clone is scored.
        batch_size: samples per step.
        lr: Adam learning rate.
        hidden: width of the clone's two tanh hidden layers.
        last_action: also give the clone its previous action (one-hot).
        seed: first env seed of the recorded games, and the torch seed.
        play: greedy games the clone plays at each checkpoint (0: none).
        play_seed: env seed of the first played game.
    """

    episodes: int = 30
    heldout: int = 3
    checkpoints: tuple[int, ...] = (50, 100, 200, 400, 800, 1600, 3200, 6400)
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 256
    last_action: bool = False
    seed: int = 0
    play: int = 10
    play_seed: int = 2_000_000

    def __post_init__(self) -> None:
        if self.episodes <= self.heldout or self.heldout < 1:
            raise ValueError(
                f"need at least 1 held-out game and 1 to train on, got {self.episodes} games "
                f"with {self.heldout} held out"
            )
        steps = self.checkpoints
        if not steps or steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"checkpoints must be increasing step counts >= 1, got {steps}")
        if self.play < 0:
            raise ValueError(f"play must be >= 0, got {self.play}")


@dataclass
class StatePoint:
    """The clone after ``step`` optimiser steps."""

    step: int
    heldout_ce: float
    accuracy: float
    returns: list[float]

    @property
    def mean_return(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None


@dataclass
class StateProbeReport:
    """The recorded games and the clone's curve."""

    policy: str
    task: str
    last_action: bool
    train_samples: int
    heldout_samples: int
    expert_returns: list[float]
    baseline_ce: float
    majority_accuracy: float
    points: list[StatePoint] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for point, row in zip(self.points, d["points"], strict=True):
            row["mean_return"] = point.mean_return
        return d


def task_of(spec: RamPolicySpec) -> str:
    """The gato task a RAM policy plays (``"breakout"`` for ``ALE/Breakout``)."""
    for task, known in SPECS.items():
        if known.game == spec.game:
            return task
    raise ValueError(f"no gato task plays {spec.game} (RAM policies exist for {sorted(SPECS)})")


def position_columns(spec: RamPolicySpec, last_action: bool) -> slice:
    """The feature columns a clone reads: the positions, and the previous action if asked."""
    return slice(None) if last_action else slice(0, spec.history * len(spec.addresses))


@torch.no_grad()
def greedy_games(
    net: nn.Module, view: RamFeatures, seeds: Sequence[int], cols: slice = slice(None)
) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Games of ``net`` acting greedily on ``cols`` of the features ``view`` shows.

    Returns:
        Per game (env seeds ``seeds``): features ``(T, n_features)`` float32 (all
        columns), the action chosen in each state ``(T,)`` int64 as an index into
        ``spec.actions``, and the game's return.
    """
    xs, ys, returns = [], [], []
    for seed in seeds:
        obs, _ = view.reset(seed=seed)
        seen, chosen, total, done = [], [], 0.0, False
        while not done:
            action = int(net(torch.from_numpy(obs[cols])[None]).argmax())
            seen.append(obs)
            chosen.append(action)
            obs, reward, terminated, truncated, _ = view.step(action)
            total += reward
            done = terminated or truncated
        xs.append(np.stack(seen))  # (T, n_features)
        ys.append(np.array(chosen, dtype=np.int64))  # (T,)
        returns.append(total)
    return xs, ys, returns


def record(
    policy: MlpPolicy, env: gym.Env, episodes: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """The policy's greedy games (env seeds ``seed``, ``seed + 1``, ...) through its own
    view of ``env``: :func:`greedy_games` of the policy on all its features."""
    return greedy_games(policy, RamFeatures(env, policy.spec), range(seed, seed + episodes))


def play(clone: nn.Module, env: gym.Env, spec: RamPolicySpec, cfg: StateProbeConfig) -> list[float]:
    """Returns of ``cfg.play`` greedy games of the clone (env seeds from ``cfg.play_seed``)."""
    seeds = range(cfg.play_seed, cfg.play_seed + cfg.play)
    cols = position_columns(spec, cfg.last_action)
    return greedy_games(clone, RamFeatures(env, spec), seeds, cols)[2]


def state_probe(
    policy_name: str | Path,
    cfg: StateProbeConfig = StateProbeConfig(),
    progress: Callable[[StatePoint], None] | None = None,
) -> StateProbeReport:
    """Record a RAM policy's games, clone it from their states, score the clone's curve.

    Args:
        policy_name: a shipped RAM policy's name (``breakout-ppo``) or a policy file.
        cfg: what to record, train and play.
        progress: called with each point of the curve as it is measured.
    """
    path = policy_file(policy_name)
    policy = MlpPolicy.load(path)
    spec = policy.spec
    task = task_of(spec)
    env = registry.make(task)
    try:
        xs, ys, expert_returns = record(policy, env, cfg.episodes, cfg.seed)
        cut = cfg.episodes - cfg.heldout
        cols = position_columns(spec, cfg.last_action)
        x_train = torch.from_numpy(np.concatenate(xs[:cut])[:, cols])  # (N, F)
        y_train = torch.from_numpy(np.concatenate(ys[:cut]))  # (N,)
        x_test = torch.from_numpy(np.concatenate(xs[cut:])[:, cols])
        y_test = torch.from_numpy(np.concatenate(ys[cut:]))
        n_actions = len(spec.actions)
        baseline_ce, majority = frequency_baseline(
            torch.bincount(y_train, minlength=n_actions), y_test
        )
        report = StateProbeReport(
            policy=str(path),
            task=task,
            last_action=cfg.last_action,
            train_samples=len(y_train),
            heldout_samples=len(y_test),
            expert_returns=expert_returns,
            baseline_ce=baseline_ce,
            majority_accuracy=majority,
        )

        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        clone = nn.Sequential(
            nn.Linear(x_train.shape[1], cfg.hidden), nn.Tanh(),
            nn.Linear(cfg.hidden, cfg.hidden), nn.Tanh(),
            nn.Linear(cfg.hidden, n_actions),
        )  # fmt: skip
        opt = torch.optim.Adam(clone.parameters(), lr=cfg.lr)
        step = 0
        for target in cfg.checkpoints:
            while step < target:
                rows = torch.randint(len(y_train), (cfg.batch_size,), generator=gen)
                loss = F.cross_entropy(clone(x_train[rows]), y_train[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            with torch.no_grad():
                logits = clone(x_test)  # (N_test, n_actions)
                ce = float(F.cross_entropy(logits, y_test))
                accuracy = float((logits.argmax(1) == y_test).double().mean())
            point = StatePoint(step, ce, accuracy, play(clone, env, spec, cfg))
            report.points.append(point)
            if progress is not None:
                progress(point)
    finally:
        env.close()
    return report
