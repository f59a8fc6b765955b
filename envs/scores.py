"""The score table: random-policy and expert returns measured by the project.

``envs/scores.json`` (package data) holds, per task, the mean and standard
deviation of the return over ``episodes`` episodes of a uniform random policy
and of the task's scripted expert, with the exact env seeds used. The registry
reads it into ``TaskSpec.random_score`` / ``expert_score``; a task without a row
is "not measured". ``gato scores --tasks ... --write`` re-measures and rewrites
rows (other rows are kept), so the table is reproducible by one command.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SCORES_PATH = Path(__file__).resolve().parent / "scores.json"
FORMAT_VERSION = 1
SEED_BASE = 1_000_000  # far from the collection seeds (0, 1, ...) so scores are held out


@dataclass(frozen=True)
class ScoreStats:
    """Returns of one policy on one task."""

    mean: float
    std: float
    episodes: int
    seeds: list[int]

    @classmethod
    def of(cls, returns: list[float], seeds: list[int]) -> ScoreStats:
        r = np.asarray(returns, dtype=np.float64)
        return cls(float(r.mean()), float(r.std()), len(returns), list(seeds))


@dataclass(frozen=True)
class TaskScores:
    """One row of the score table."""

    random: ScoreStats
    expert: ScoreStats


@functools.cache
def _load(path: str, mtime: float) -> dict[str, TaskScores]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown score table format {data.get('format_version')!r}")
    return {
        task: TaskScores(ScoreStats(**row["random"]), ScoreStats(**row["expert"]))
        for task, row in data["tasks"].items()
    }


def load_scores(path: Path = SCORES_PATH) -> dict[str, TaskScores]:
    """Task name -> measured scores; an absent file is an empty table."""
    path = Path(path)
    if not path.is_file():
        return {}
    return _load(str(path), path.stat().st_mtime)


def write_scores(rows: dict[str, TaskScores], path: Path = SCORES_PATH) -> None:
    """Merge ``rows`` into the table at ``path`` (other tasks are kept), atomically."""
    from gato.atomic import write_atomic

    table = dict(load_scores(path))
    table.update(rows)
    # One line per task and policy keeps the table readable and diffs small.
    lines = [
        f'  "{task}": {{\n    "random": {json.dumps(asdict(table[task].random))},\n'
        f'    "expert": {json.dumps(asdict(table[task].expert))}\n  }}'
        for task in sorted(table)
    ]
    text = (
        f'{{"format_version": {FORMAT_VERSION},\n'
        '"note": "mean/std of episode returns; rewrite with `gato scores --tasks T --write`",\n'
        '"tasks": {\n' + ",\n".join(lines) + "\n}}\n"
    )
    json.loads(text)  # the hand-laid-out text must still be valid JSON
    write_atomic(Path(path), text.encode())


def episode_return(task: str, seed: int, expert: bool) -> float:
    """The return of one episode of ``task`` from ``seed`` (expert or uniform random)."""
    from gato.envs.registry import expert as make_expert
    from gato.envs.registry import make
    from gato.envs.rollout import random_rollout, rollout

    env = make(task)
    try:
        episode = (
            rollout(env, make_expert(task), seed, task)
            if expert
            else random_rollout(env, seed, task)
        )
    finally:
        env.close()
    return episode.score


def _job(args: tuple[str, int, bool]) -> float:
    return episode_return(*args)


def measure(task: str, episodes: int = 20, seed: int = SEED_BASE, workers: int = 1) -> TaskScores:
    """Play ``episodes`` random and expert episodes of ``task`` on seeds ``seed + i``."""
    from gato.envs.registry import entry

    entry(task)  # unknown task -> ValueError before any process starts
    seeds = [seed + i for i in range(episodes)]
    jobs = [(task, s, False) for s in seeds] + [(task, s, True) for s in seeds]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            returns = pool.map(_job, jobs, chunksize=1)
    else:
        returns = [_job(j) for j in jobs]
    return TaskScores(
        random=ScoreStats.of(returns[:episodes], seeds),
        expert=ScoreStats.of(returns[episodes:], seeds),
    )


def format_task_table() -> str:
    """Every task with its observation/action spec and measured scores, as text."""
    from gato.envs.registry import scores_key, spec, task_names

    def score(stats: ScoreStats | None) -> str:
        return f"{stats.mean:.1f} +/- {stats.std:.1f}" if stats else "not measured"

    table = load_scores()
    rows = [("task", "observation", "action", "random", "expert")]
    for name in task_names():
        s = spec(name)
        obs = ", ".join(
            f"{k}[{'x'.join(map(str, f.shape))}] {f.kind.value}" for k, f in s.observation.items()
        )
        if s.action.is_discrete:
            act = f"discrete {s.action.n}"
        else:
            act = f"box {list(s.action.low)}..{list(s.action.high)}"
        row = table.get(scores_key(name))
        rows.append(
            (name, obs, act, score(row.random if row else None), score(row.expert if row else None))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
