"""Demonstration collection speed: env steps/s of `gato data collect` vs the raw env.

Per task, the raw env (``gym.make`` of the bare id, uniform random actions, no
wrappers of ours, no expert, no storage) and a full collection (``make(task)``,
the scripted expert or a trained RAM policy, compression, checksums, atomic writes;
one worker, no filter) run side by side in the same process; ``ratio`` = collection /
raw. Adding a task is one ``BenchTask`` line in ``TASKS``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import harness

from gato.data.collect import collect


@dataclass(frozen=True)
class BenchTask:
    task: str  # registry name
    raw_env: Callable[[], gym.Env]  # the bare emulator/simulator for the baseline
    episodes: int = 20  # full mode; quick mode plays 2
    quick: bool = True  # part of --quick (the test suite); Atari experts take minutes
    repeats: int = 3  # full mode; quick mode runs once
    expert: str | None = None  # a shipped RAM policy (`--expert`) instead of the scripted one

    @property
    def name(self) -> str:
        return self.task if self.expert is None else f"{self.task} ({self.expert})"


def _ale(game: str) -> Callable[[], gym.Env]:
    """The raw emulator at the agent's step size: frame skip 4, sticky actions 0.25."""

    def make() -> gym.Env:
        import ale_py

        gym.register_envs(ale_py)
        return gym.make(f"ALE/{game}-v5", frameskip=4, repeat_action_probability=0.25)

    return make


TASKS = [
    BenchTask("cartpole", lambda: gym.make("CartPole-v1")),
    BenchTask("acrobot", lambda: gym.make("Acrobot-v1")),
    BenchTask("mountaincar", lambda: gym.make("MountainCar-v0")),
    BenchTask("pendulum", lambda: gym.make("Pendulum-v1")),
    BenchTask("mountaincar-continuous", lambda: gym.make("MountainCarContinuous-v0")),
    BenchTask("pong", _ale("Pong"), episodes=1, quick=False, repeats=1),
    BenchTask("breakout", _ale("Breakout"), episodes=1, quick=False, repeats=1),
    BenchTask("freeway", _ale("Freeway"), episodes=2, quick=False, repeats=1),
    BenchTask("boxing", _ale("Boxing"), episodes=2, quick=False, repeats=1),
    BenchTask("pong", _ale("Pong"), episodes=1, quick=False, repeats=1, expert="pong-ppo"),
    BenchTask(
        "breakout", _ale("Breakout"), episodes=2, quick=False, repeats=1, expert="breakout-ppo"
    ),
]


def main(argv: list[str] | None = None) -> dict:
    args = harness.parser("collect", __doc__.splitlines()[0]).parse_args(argv)
    raw_steps = 2_000 if args.quick else 20_000
    figures: dict[str, dict] = {}
    tasks = [bt for bt in TASKS if bt.quick or not args.quick]
    for bt in tasks:
        episodes = 2 if args.quick else bt.episodes
        repeats = 1 if args.quick else bt.repeats
        raw = [harness.random_action_steps(bt.raw_env, raw_steps) for _ in range(repeats)]
        steps, seconds, size = [], [], 0
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                s = collect(
                    bt.task,
                    episodes,
                    Path(tmp),
                    min_score_frac=0,
                    progress=False,
                    expert_file=bt.expert,
                )
                size = sum(p.stat().st_size for p in Path(tmp).iterdir())
            steps.append(s.steps)
            seconds.append(s.steps / s.steps_per_second)
        figures[bt.name] = harness.compare(
            harness.Timed("collect", "env steps/s", tuple(steps), tuple(seconds)),
            harness.Timed.of("raw env, random actions", "env steps/s", raw_steps, raw),
            store_bytes_per_step=size / max(1, steps[-1]),
        )
    config = {
        "tasks": [bt.name for bt in tasks],
        "episodes": {bt.name: 2 if args.quick else bt.episodes for bt in tasks},
        "raw_steps": raw_steps,
        "repeats": {bt.name: 1 if args.quick else bt.repeats for bt in tasks},
        "workers": 1,
    }
    return harness.write_result(
        args.out, "collect", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
