"""Scoring a checkpoint in its environments: returns, expert-normalised scores, headline.

``evaluate_task`` plays ``episodes`` episodes of one task with N vector envs and one
:class:`~gato.policy.Policy` serving all of them (one forward per step for the N envs).

Episodes in lockstep: episode ``k`` (0-based) always runs with env seed ``seed + k``
and sampling generator seed ``policy_seed(seed, k)``, in round ``k // N`` on env
``k % N``; every env plays one episode per round, an env that finishes drops out of
the policy (no more model compute), and the next round resets all envs. Because rows
never interact, the returns do not depend on N: same seed -> same result, and
``--envs 8`` equals eight single-env runs. The price is env steps of finished envs
(a gymnasium vector env steps all its envs; their results are ignored) until the
round's longest episode ends.

A demonstration prompt (DESIGN.md "Prompting"; ``--prompt-store``): episode ``k`` is
prompted with the end of a demonstration drawn from the store by
``(seed, k)``; the prompt gets half the context, capped at the store's shortest
episode, so every prompt of a task has the same length and batching stays exact.

Other kinds of evaluation (captions, chat) add :class:`MetricRow` entries to an
:class:`EvalReport`; every row with a normalised score counts in the headline.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.spec import ObsKind, TaskSpec
from gato.loading import Trained
from gato.policy import ActionDecoding, Policy
from gato.sampling import GREEDY, SamplingConfig
from gato.sequence import Row, Tokenizers, demonstration_prompt, observation_length

SAMPLING_STREAM = 1  # generator streams derived from (seed, episode)
PROMPT_STREAM = 2
HALF_EXPERT = 0.5  # the paper's headline threshold


def policy_seed(seed: int, episode: int) -> int:
    """Seed of episode ``episode``'s sampling generator (independent of the env seed)."""
    return int(np.random.SeedSequence([seed, episode, SAMPLING_STREAM]).generate_state(1)[0])


@dataclass
class TaskResult:
    """Returns of the agent on one control task.

    Attributes:
        returns: one per finished episode, in episode order.
        seeds: the env seed of each finished episode.
        lengths: steps of each finished episode.
        episodes: episodes asked for (more than ``len(returns)`` if interrupted).
        random_score, expert_score: the task's reference scores (None if not measured).
    """

    task: str
    returns: list[float]
    seeds: list[int]
    lengths: list[int]
    episodes: int
    random_score: float | None = None
    expert_score: float | None = None

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else math.nan

    @property
    def normalised(self) -> float | None:
        """``(mean - random) / (expert - random)``, None without reference scores."""
        if self.random_score is None or self.expert_score is None or not self.returns:
            return None
        return (self.mean - self.random_score) / (self.expert_score - self.random_score)

    @property
    def complete(self) -> bool:
        return len(self.returns) == self.episodes

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "mean": self.mean,
            "std": self.std,
            "normalised": self.normalised,
            "complete": self.complete,
        }


@dataclass
class MetricRow:
    """A non-control result (e.g. caption accuracy) that joins the report's table.

    ``normalised`` (0 = chance, 1 = reference) counts in the headline when given.
    """

    task: str
    metric: str
    value: float
    normalised: float | None = None


def vl_metric_rows(trained: Trained) -> list[MetricRow]:
    """Caption, zero-shot and chat rows (as ``gato eval-vl``) for ``gato eval --task all``.

    Empty when the run had no caption/chat task. These rows join the table but not the
    headline (``normalised`` None): the paper's headline counts control tasks only.
    """
    from gato.envs.registry import task_names
    from gato.vl_metrics import checkpoint_vl_rows

    if not set(trained.tasks) - set(task_names()) or trained.tokenizers.text is None:
        return []
    return [MetricRow(r.task, r.metric, r.value) for r in checkpoint_vl_rows(trained)]


@dataclass
class EvalReport:
    """Everything ``gato eval`` measured, JSON-ready with :meth:`to_json`."""

    checkpoint: str
    seed: int
    envs: int
    sampling: SamplingConfig
    tasks: list[TaskResult] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    interrupted: bool = False
    prompt_store: str | None = None
    action_decoding: ActionDecoding = ActionDecoding.MODE

    def normalised_scores(self) -> dict[str, float]:
        out = {t.task: t.normalised for t in self.tasks if t.normalised is not None}
        out |= {m.task: m.normalised for m in self.metrics if m.normalised is not None}
        return out

    @property
    def mean_normalised(self) -> float | None:
        scores = list(self.normalised_scores().values())
        return float(np.mean(scores)) if scores else None

    @property
    def tasks_at_half_expert(self) -> int:
        return sum(v >= HALF_EXPERT for v in self.normalised_scores().values())

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "seed": self.seed,
            "envs": self.envs,
            "sampling": asdict(self.sampling),
            "prompt_store": self.prompt_store,
            "action_decoding": self.action_decoding.value,
            "interrupted": self.interrupted,
            "tasks": [t.to_json() for t in self.tasks],
            "metrics": [asdict(m) for m in self.metrics],
            "headline": {
                "mean_normalised": self.mean_normalised,
                "tasks_at_half_expert": self.tasks_at_half_expert,
                "tasks_scored": len(self.normalised_scores()),
            },
        }

    def table(self) -> str:
        """The results as a fixed-width text table plus the headline line."""
        lines = [f"{'task':<24} {'random':>9} {'expert':>9} {'agent':>17} {'normalised':>10}"]
        for t in self.tasks:
            agent = f"{t.mean:.2f} ± {t.std:.2f}" if t.returns else "-"
            if not t.complete:
                agent += f" ({len(t.returns)}/{t.episodes})"
            lines.append(
                f"{t.task:<24} {_num(t.random_score):>9} {_num(t.expert_score):>9} "
                f"{agent:>17} {_pct(t.normalised):>10}"
            )
        for m in self.metrics:
            lines.append(f"{m.task:<24} {'':>9} {'':>9} {m.metric + f' {m.value:.3f}':>17} "
                         f"{_pct(m.normalised):>10}")  # fmt: skip
        n = len(self.normalised_scores())
        head = (
            f"mean normalised score {_pct(self.mean_normalised)} over {n} task(s); "
            f"{self.tasks_at_half_expert} of {n} at >= {HALF_EXPERT:.0%} of expert"
        )
        if self.interrupted:
            head += " (interrupted: partial results)"
        return "\n".join([*lines, head])


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def write_json(report: EvalReport, path: str | os.PathLike) -> Path:
    """Write the report atomically (temp file, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# -- vector envs ---------------------------------------------------------------------------


def make_vector_env(
    task: str, n: int, asynchronous: bool = False, render_mode: str | None = None
) -> gym.vector.VectorEnv:
    """``n`` copies of ``gato.envs.make(task)`` stepped together (Dict observations batched).

    ``asynchronous`` runs each env in its own process (worth it for slow envs like Atari).
    """
    from gato.envs import registry

    kwargs = {} if render_mode is None else {"render_mode": render_mode}
    fns = [lambda: registry.make(task, **kwargs) for _ in range(n)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns)
    return gym.vector.SyncVectorEnv(fns)


def _idle_actions(space: gym.Space, n: int) -> np.ndarray:
    """Valid actions for envs whose episode is over (ignored by the evaluation)."""
    if isinstance(space, gym.spaces.Discrete):
        return np.full(n, int(space.start), np.int64)
    return np.broadcast_to(space.low, (n, *space.shape)).astype(space.dtype)


# -- prompts -------------------------------------------------------------------------------


class PromptSource:
    """Demonstrations of one task from an episode store, as equal-length prompt rows.

    Args:
        store: an ``EpisodeStore`` directory (``gato data collect``) of the task.
        budget: most prompt tokens (default: half the context, as in training).
    """

    def __init__(
        self, tok: Tokenizers, spec: TaskSpec, store: str | os.PathLike, context: int
    ) -> None:
        from gato.data.store import EpisodeStore

        if any(f.kind is ObsKind.TEXT for f in spec.observation.values()):
            raise ValueError(f"prompting task {spec.name!r}: text observations are not supported")
        self.store = EpisodeStore(store)
        if self.store.task != spec.name:
            raise ValueError(f"{store} holds episodes of {self.store.task!r}, not {spec.name!r}")
        lengths = np.asarray(self.store.lengths)
        usable = np.nonzero(lengths > 0)[0]
        if len(usable) == 0:
            raise ValueError(f"{store}: no non-empty demonstration")
        step = observation_length(tok, spec) + 1 + spec.action.dims
        steps = min(context // 2 // step, int(lengths[usable].min()))
        if steps < 1:
            raise ValueError(f"a timestep of {spec.name!r} ({step} tokens) fills half the context")
        self.tok, self.spec, self.usable, self.budget = tok, spec, usable, steps * step

    def prompt(self, seed: int, episode: int) -> Row:
        """The prompt of episode ``episode``: a demonstration's last ``budget`` tokens."""
        rng = np.random.default_rng([seed, episode, PROMPT_STREAM])
        demo = self.store.episode(int(self.usable[rng.integers(len(self.usable))]))
        return demonstration_prompt(self.tok, self.spec, demo, self.budget, from_end=True)


# -- the evaluation loop -------------------------------------------------------------------


def evaluate_task(
    trained: Trained,
    spec: TaskSpec,
    episodes: int,
    envs: int = 8,
    seed: int = 0,
    sampling: SamplingConfig = GREEDY,
    device: str = "cpu",
    prompts: PromptSource | None = None,
    max_steps: int | None = None,
    asynchronous: bool = False,
    on_episode: Callable[[int], None] | None = None,
    result: TaskResult | None = None,
    action_decoding: ActionDecoding = ActionDecoding.MODE,
) -> TaskResult:
    """Play ``episodes`` episodes of ``spec.name`` and collect their returns.

    ``result`` (optional) is filled in place as episodes finish, so a caller that is
    interrupted still holds the finished ones. ``on_episode(n)`` reports progress.
    ``max_steps`` cuts episodes (counted as finished, truncated).
    """
    if episodes < 1 or envs < 1:
        raise ValueError(f"need episodes >= 1 and envs >= 1, got {episodes} and {envs}")
    n_envs = min(envs, episodes)
    if result is None:
        result = TaskResult(spec.name, [], [], [], episodes, spec.random_score, spec.expert_score)
    policy = Policy(
        trained.model, trained.tokenizers, spec, sampling, device,
        action_decoding=action_decoding,
    )  # fmt: skip
    vec = make_vector_env(spec.name, n_envs, asynchronous)
    try:
        for first in range(0, episodes, n_envs):
            ks = list(range(first, min(first + n_envs, episodes)))  # this round's episodes
            _play_round(vec, policy, ks, seed, prompts, max_steps, result, on_episode)
    finally:
        vec.close()
    return result


def _play_round(vec, policy, ks, seed, prompts, max_steps, result, on_episode) -> None:
    n = len(ks)
    seeds = [seed + k for k in ks]
    obs, _ = vec.reset(seed=seeds + [seed + ks[-1] + 1 + i for i in range(vec.num_envs - n)])
    policy.reset(
        n,
        seeds=[policy_seed(seed, k) for k in ks],
        prompts=None if prompts is None else [prompts.prompt(seed, k) for k in ks],
    )
    returns = np.zeros(vec.num_envs, np.float64)
    steps = np.zeros(vec.num_envs, np.int64)
    active = list(range(n))  # env indices still playing, in policy row order
    start = len(result.returns)
    idle = _idle_actions(vec.single_action_space, vec.num_envs)
    while active:
        actions = idle.copy()
        actions[active] = policy.act({k: v[active] for k, v in obs.items()})
        obs, reward, terminated, truncated, _ = vec.step(actions)
        returns[active] += reward[active]
        steps[active] += 1
        done = terminated | truncated
        if max_steps is not None:
            done |= steps >= max_steps
        still = [row for row, j in enumerate(active) if not done[j]]
        for j in active:
            if done[j]:  # recorded at once, so an interrupt keeps it
                result.returns.append(float(returns[j]))
                result.lengths.append(int(steps[j]))
                result.seeds.append(seeds[j])
                if on_episode is not None:
                    on_episode(1)
        if len(still) < len(active) and still:
            policy.keep(still)
        active = [active[row] for row in still]
    # Episode order (not finishing order), so the result never depends on N.
    order = sorted(range(start, len(result.returns)), key=lambda i: result.seeds[i])
    for name in ("returns", "lengths", "seeds"):
        values = getattr(result, name)
        values[start:] = [values[i] for i in order]


def evaluate(
    trained: Trained,
    specs: Sequence[TaskSpec],
    episodes: int,
    envs: int = 8,
    seed: int = 0,
    sampling: SamplingConfig = GREEDY,
    device: str = "cpu",
    prompt_store: str | os.PathLike | None = None,
    max_steps: int | None = None,
    asynchronous: bool = False,
    progress: bool = True,
    action_decoding: ActionDecoding = ActionDecoding.MODE,
) -> EvalReport:
    """Evaluate every task in ``specs``; Ctrl-C stops early with ``report.interrupted``.

    With ``prompt_store``, tasks are prompted from that store (one task only) — a
    directory of stores named by task (``DIR/<task>``) serves several tasks.
    """
    report = EvalReport(
        checkpoint=str(trained.path or ""),
        seed=seed,
        envs=envs,
        sampling=sampling,
        prompt_store=None if prompt_store is None else str(prompt_store),
        action_decoding=action_decoding,
    )
    context = trained.config.context
    try:
        for spec in specs:
            prompts = None
            if prompt_store is not None:
                prompts = PromptSource(
                    trained.tokenizers, spec, _store_for(Path(prompt_store), spec.name), context
                )
            result = TaskResult(
                spec.name, [], [], [], episodes, spec.random_score, spec.expert_score
            )
            report.tasks.append(result)
            bar = _bar(progress, episodes, spec.name)
            try:
                evaluate_task(
                    trained, spec, episodes, envs, seed, sampling, device, prompts,
                    max_steps, asynchronous, on_episode=bar.update if bar else None,
                    result=result, action_decoding=action_decoding,
                )  # fmt: skip
            finally:
                if bar is not None:
                    bar.close()
    except KeyboardInterrupt:
        report.interrupted = True
    return report


def _store_for(root: Path, task: str) -> Path:
    """``root`` itself if it is a store, else ``root/<task>``."""
    if (root / "manifest.json").is_file():
        return root
    sub = root / task
    if (sub / "manifest.json").is_file():
        return sub
    raise FileNotFoundError(f"no episode store for {task!r} at {root} or {sub}")


def _bar(progress: bool, total: int, task: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=task, unit="ep", dynamic_ncols=True, leave=False)
