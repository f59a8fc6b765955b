"""Demonstration collection speed: env steps/s of `gato data collect` vs the raw env.

Per task, the raw env (``gym.make`` of the bare id, uniform random actions, no
wrappers of ours, no expert, no storage) and a full collection (``make(task)``,
the scripted expert, compression, checksums, atomic writes; one worker, no
filter) run side by side in the same process; ``ratio`` = collection / raw.
Adding a task is one ``BenchTask`` line in ``TASKS``.
"""

from __future__ import annotations

import sys
import tempfile
import time
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


TASKS = [
    BenchTask("cartpole", lambda: gym.make("CartPole-v1")),
    BenchTask("acrobot", lambda: gym.make("Acrobot-v1")),
    BenchTask("mountaincar", lambda: gym.make("MountainCar-v0")),
    BenchTask("pendulum", lambda: gym.make("Pendulum-v1")),
    BenchTask("mountaincar-continuous", lambda: gym.make("MountainCarContinuous-v0")),
]


def raw_steps_per_second(make_env: Callable[[], gym.Env], steps: int) -> float:
    """Uniform random actions on the bare env, resetting at episode ends."""
    env = make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    args = harness.parser("collect", __doc__.splitlines()[0]).parse_args(argv)
    raw_steps = 2_000 if args.quick else 20_000
    repeats = 1 if args.quick else 3
    figures: dict[str, dict] = {}
    for bt in TASKS:
        episodes = 2 if args.quick else bt.episodes
        raw = [raw_steps_per_second(bt.raw_env, raw_steps) for _ in range(repeats)]
        runs = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                s = collect(bt.task, episodes, Path(tmp), min_score_frac=0, progress=False)
                size = sum(p.stat().st_size for p in Path(tmp).iterdir())
            runs.append((s.steps_per_second, s.steps, size))
        sps = sorted(r[0] for r in runs)[len(runs) // 2]
        raw_sps = sorted(raw)[len(raw) // 2]
        figures[bt.task] = {
            "collect_steps_per_s": sps,
            "raw_env_steps_per_s": raw_sps,
            "ratio": sps / raw_sps,
            "steps": runs[0][1],
            "store_bytes_per_step": runs[0][2] / max(1, runs[0][1]),
        }
        print(
            f"{bt.task:24s} collect {sps:>9,.0f} steps/s   raw env {raw_sps:>9,.0f} steps/s   "
            f"ratio {sps / raw_sps:.3f}   {figures[bt.task]['store_bytes_per_step']:.1f} B/step",
            flush=True,
        )
    config = {
        "tasks": [bt.task for bt in TASKS],
        "episodes": 2 if args.quick else "per task (20)",
        "raw_steps": raw_steps,
        "repeats": repeats,
        "workers": 1,
    }
    return harness.write_result(args.out, "collect", config, figures, args.device)


if __name__ == "__main__":
    main(sys.argv[1:])
