"""The task registry: every task's spec, env factory and expert factory.

``make(task)`` returns a gymnasium env whose observation space is a ``Dict``
with the keys of ``spec(task).observation``; ``expert(task)`` returns its
scripted expert. Random and expert scores come from the measured score table
``envs/scores.json`` (see :mod:`gato.envs.scores`).

Adding a task is one :class:`TaskEntry` in ``TASKS`` plus an expert class.
Atari entries import ``gato.envs.atari`` and their experts only when called,
so listing tasks never starts the emulator.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from gato.envs import fake
from gato.envs.experts import classic
from gato.envs.experts import fake as fake_experts
from gato.envs.experts.base import Expert
from gato.envs.spec import ActionSpec, ObsField, ObsKind, TaskSpec
from gato.envs.wrappers import DictObservation


@dataclass(frozen=True)
class TaskEntry:
    """One registered task.

    Attributes:
        spec: observation/action spec with the default options (scores filled in by ``spec()``).
        make_env: ``(**overrides) -> gym.Env`` with the task's standard preprocessing.
        make_expert: ``() -> Expert``.
        description: one line for ``gato tasks``.
        scores_of: the task whose measured scores this one shares (the same game and
            rules seen another way, e.g. smaller frames); None: its own row.
        other_experts: scripted experts besides ``make_expert``, by name, that
            ``gato data collect --expert NAME`` can use instead (e.g. a simpler rule
            a learner can clone); the score table still measures ``make_expert``.
    """

    spec: TaskSpec
    make_env: Callable[..., gym.Env]
    make_expert: Callable[[], Expert]
    description: str = ""
    scores_of: str | None = None
    other_experts: Mapping[str, Callable[[], Expert]] = dataclasses.field(default_factory=dict)


# -- factories -------------------------------------------------------------------


def _classic(env_id: str, **overrides: Any) -> gym.Env:
    return DictObservation(gym.make(env_id, **overrides))


def _fake(env_cls: type[gym.Env], **overrides: Any) -> gym.Env:
    if overrides:
        raise ValueError(f"fake tasks take no options, got {sorted(overrides)}")
    return env_cls()  # ends itself (terminated) after fake.EPISODE_STEPS steps


def _atari(game: str, **overrides: Any) -> gym.Env:
    from gato.envs.atari import make_atari  # lazy: the emulator only when asked for

    return make_atari(game, **overrides)


def _pong_expert() -> Expert:
    from gato.envs.experts.pong import PongExpert

    return PongExpert()


def _breakout_expert() -> Expert:
    from gato.envs.experts.breakout import BreakoutExpert

    return BreakoutExpert()


def _breakout_tracker() -> Expert:
    from gato.envs.experts.breakout_tracker import BreakoutTracker

    return BreakoutTracker()


def _freeway_expert() -> Expert:
    from gato.envs.experts.freeway import FreewayExpert

    return FreewayExpert()


def _boxing_expert() -> Expert:
    from gato.envs.experts.boxing import BoxingExpert

    return BoxingExpert()


# -- the tasks -------------------------------------------------------------------

ATARI_FRAME = {"image": ObsField(ObsKind.IMAGE, (80, 80, 1))}  # make_atari's defaults
ATARI_ACTIONS = ActionSpec(n=18)  # the full action set: ids mean the same in every game


def _state(n: int) -> dict[str, ObsField]:
    return {"state": ObsField(ObsKind.CONTINUOUS, (n,))}


def _entry(
    name: str,
    observation: dict[str, ObsField],
    action: ActionSpec,
    make_env: Callable[..., gym.Env],
    make_expert: Callable[[], Expert],
    description: str,
    scores_of: str | None = None,
    other_experts: Mapping[str, Callable[[], Expert]] | None = None,
) -> TaskEntry:
    task_spec = TaskSpec(name, observation, action)
    return TaskEntry(task_spec, make_env, make_expert, description, scores_of,
                     dict(other_experts or {}))  # fmt: skip


_ENTRIES = [
    _entry("pong", ATARI_FRAME, ATARI_ACTIONS, functools.partial(_atari, "Pong"),
           _pong_expert, "ALE Pong v5, sticky 0.25, skip 4, 80x80 grey"),
    # Pong at 48x48: 9 patches a frame instead of 25 (11 tokens a step, not 27), the
    # same game, expert and scores; docs/results/findings.md measures what it costs.
    _entry("pong-48", {"image": ObsField(ObsKind.IMAGE, (48, 48, 1))}, ATARI_ACTIONS,
           functools.partial(_atari, "Pong", screen_size=48), _pong_expert,
           "ALE Pong v5 as pong, 48x48 grey (9 patches a frame)", scores_of="pong"),
    _entry("breakout", ATARI_FRAME, ATARI_ACTIONS, functools.partial(_atari, "Breakout"),
           _breakout_expert, "ALE Breakout v5, sticky 0.25, skip 4, 80x80 grey",
           other_experts={"breakout-tracker": _breakout_tracker}),
    # Breakout at 48x48, as pong-48: 9 patches a frame, 11 tokens a step instead of 27.
    _entry("breakout-48", {"image": ObsField(ObsKind.IMAGE, (48, 48, 1))}, ATARI_ACTIONS,
           functools.partial(_atari, "Breakout", screen_size=48), _breakout_expert,
           "ALE Breakout v5 as breakout, 48x48 grey (9 patches a frame)",
           scores_of="breakout", other_experts={"breakout-tracker": _breakout_tracker}),
    # Breakout with the last 3 frames as one image's channels: the ball's motion inside
    # a patch rather than only across timesteps (docs/results/findings.md, Breakout).
    _entry("breakout-stack", {"image": ObsField(ObsKind.IMAGE, (80, 80, 3))}, ATARI_ACTIONS,
           functools.partial(_atari, "Breakout", frame_stack=3), _breakout_expert,
           "ALE Breakout v5 as breakout, its last 3 grey frames as channels",
           scores_of="breakout", other_experts={"breakout-tracker": _breakout_tracker}),
    _entry("freeway", ATARI_FRAME, ATARI_ACTIONS, functools.partial(_atari, "Freeway"),
           _freeway_expert, "ALE Freeway v5, sticky 0.25, skip 4, 80x80 grey"),
    _entry("boxing", ATARI_FRAME, ATARI_ACTIONS, functools.partial(_atari, "Boxing"),
           _boxing_expert, "ALE Boxing v5, sticky 0.25, skip 4, 80x80 grey"),
    _entry("cartpole", _state(4), ActionSpec(n=2),
           functools.partial(_classic, "CartPole-v1"), classic.CartPoleExpert, "CartPole-v1"),
    _entry("acrobot", _state(6), ActionSpec(n=3),
           functools.partial(_classic, "Acrobot-v1"), classic.AcrobotExpert, "Acrobot-v1"),
    _entry("mountaincar", _state(2), ActionSpec(n=3),
           functools.partial(_classic, "MountainCar-v0"), classic.MountainCarExpert,
           "MountainCar-v0"),
    _entry("pendulum", _state(3), ActionSpec(low=(-2.0,), high=(2.0,)),
           functools.partial(_classic, "Pendulum-v1"), classic.PendulumExpert, "Pendulum-v1"),
    _entry("mountaincar-continuous", _state(2), ActionSpec(low=(-1.0,), high=(1.0,)),
           functools.partial(_classic, "MountainCarContinuous-v0"),
           classic.MountainCarContinuousExpert, "MountainCarContinuous-v0"),
    _entry("fake", _state(3), ActionSpec(n=3), functools.partial(_fake, fake.FakeEnv),
           fake_experts.FakeExpert, "test task: act = argmax(state), 12 steps"),
    _entry("fake-continuous", _state(2), ActionSpec(low=(-1.0,), high=(1.0,)),
           functools.partial(_fake, fake.FakeContinuousEnv), fake_experts.FakeContinuousExpert,
           "test task: act = (s0 - s1) / 2, 12 steps"),
    _entry("fake-image", {"image": ObsField(ObsKind.IMAGE, (16, 16, 1))}, ActionSpec(n=4),
           functools.partial(_fake, fake.FakeImageEnv), fake_experts.FakeImageExpert,
           "test task: act = quadrant of the bright square, 12 steps"),
]  # fmt: skip

TASKS: dict[str, TaskEntry] = {e.spec.name: e for e in _ENTRIES}


# -- public API ------------------------------------------------------------------


def task_names() -> list[str]:
    """Every registered task name, in registry order."""
    return list(TASKS)


def entry(task: str) -> TaskEntry:
    """The registry entry of ``task``; an unknown name is a ValueError listing the known ones."""
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


def spec(task: str) -> TaskSpec:
    """The task's spec, with random/expert scores from the score table (None if not measured)."""
    from gato.envs.scores import load_scores

    row = load_scores().get(scores_key(task))
    base = entry(task).spec
    if row is None:
        return base
    return dataclasses.replace(base, random_score=row.random.mean, expert_score=row.expert.mean)


def scores_key(task: str) -> str:
    """The score-table row ``task`` is measured by: its own, or the one it shares."""
    return entry(task).scores_of or task


def make(task: str, **overrides: Any) -> gym.Env:
    """A new env for ``task`` with its standard preprocessing; ``overrides`` go to the factory."""
    return entry(task).make_env(**overrides)


def expert(task: str, name: str | None = None) -> Expert:
    """A new scripted expert for ``task``: its own, or the one of its ``other_experts``
    called ``name`` (an unknown name is a ValueError listing the task's)."""
    task_entry = entry(task)
    if name is None:
        return task_entry.make_expert()
    try:
        return task_entry.other_experts[name]()
    except KeyError:
        known = ", ".join(task_entry.other_experts) or "none"
        raise ValueError(f"{task} has no scripted expert {name!r} (its others: {known})") from None


def other_experts(task: str) -> list[str]:
    """The names of ``task``'s scripted experts besides its own."""
    return list(entry(task).other_experts)
