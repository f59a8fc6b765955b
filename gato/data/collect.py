"""Record expert demonstrations of a task into an episode store (``gato data collect``).

Attempt ``a`` plays the task's expert from env seed ``seed + a``; an episode
whose return is below the filter threshold is rejected (recorded in the
manifest, no shard), otherwise its shard ``ep_{a:07d}.npz`` is kept. Attempts
are consumed in order until ``episodes`` are kept, so the store is the same
for any number of workers and for an interrupted-then-resumed run: re-running
the same command continues from the manifest's next attempt (``--episodes`` is
the total wanted, raise it to append more).

Filter threshold (the paper keeps episodes with at least 80% of the expert's
return): with measured scores, ``min_return = random + frac * (expert - random)``,
i.e. an expert-normalised score of at least ``frac``, which also makes sense for
tasks whose returns are negative. ``frac = 0`` keeps everything.

DAgger (Ross et al. 2011; ``dagger=CHECKPOINT``): a policy cloned from demonstrations
errs, drifts into states the expert never visits, and has learned nothing there
(covariate shift). So the *checkpoint* plays (greedy, unprompted, as ``gato eval``
plays by default) and each episode records the expert's action in every state the
checkpoint visited; training on demonstrations plus such a store teaches the way back.
Rewards are the checkpoint's own, so the manifest's returns score the learner that
made the store; no episode is filtered. The checkpoint plays ``envs`` episodes at
once (8 by default), one batched forward a step for all of them, and records the same
episodes it would record one at a time. One store per checkpoint (its resolved path is
part of the manifest): the full algorithm trains on demonstrations + store 1, collects
store 2 with the new checkpoint, and so on. The recorded sequence is not a trajectory
of its recorded actions (the env was stepped with the learner's); action dropout
(``train.action_dropout``) keeps the model from leaning on those action tokens.

A trained expert (``expert_file``, a RAM policy from ``gato data train-expert``, or the
name of one shipped with the package) can play or label instead of the task's scripted
one; the manifest records its path and sha256, and a resume needs the same weights (by
content: the shipped policy by name or the same file under another path both continue).
So can another scripted expert of the task, by name (``breakout-tracker``; the registry's
``other_experts``), recorded by that name.
The score filter still measures against the registry's expert score, so a weaker
expert needs a lower ``--min-score-frac`` (0 keeps all).

Noise injection (DART, Laskey et al. 2017; ``explore=(p, hold)``) needs no checkpoint:
the expert plays, but on each step with probability ``p`` a uniform random action is
held for 1..``hold`` steps (:class:`gato.envs.perturb.Perturbed`), and a clean expert
labels every state visited. The detours lead to states near those a cloned policy
drifts into, and the labels show the way back. Every episode is kept, as with DAgger.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import gymnasium as gym

from gato.data.store import ShardRecord, StoreWriter, shard_name, write_shard
from gato.digest import file_sha256
from gato.envs import expert, make, spec
from gato.envs.experts.base import Expert
from gato.envs.perturb import Perturbed
from gato.envs.registry import other_experts, task_names
from gato.envs.rollout import labelled_rollouts, rollout
from gato.envs.spec import Episode

if TYPE_CHECKING:
    from gato.policy import Policy

FLUSH_SECONDS = 1.0  # rewrite the manifest at most this often (and at the end)
DAGGER_ENVS = 8  # episodes a DAgger learner plays at once (one batched forward a step)


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt: a kept shard (``record``) or a rejected return."""

    attempt: int
    seed: int
    score: float
    steps: int
    record: ShardRecord | None
    episode: Episode | None  # observations emptied: only carries the array specs


@dataclass(frozen=True)
class CollectSummary:
    episodes: int  # kept in the store, in total
    new_episodes: int
    rejected: int  # in this run
    steps: int  # env steps played in this run (kept and rejected)
    seconds: float
    min_return: float | None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def min_return_for(task: str, min_score_frac: float) -> float | None:
    """The filter threshold for ``task`` (None when ``min_score_frac`` is 0)."""
    if min_score_frac <= 0:
        return None
    s = spec(task)
    if s.random_score is None or s.expert_score is None:
        raise ValueError(
            f"task {task!r} has no measured scores to filter by: run "
            f"`gato scores --tasks {task} --write` or pass --min-score-frac 0"
        )
    return s.random_score + min_score_frac * (s.expert_score - s.random_score)


Explore = tuple[float, int]  # (probability a detour starts on a step, its longest hold)

# One env, expert (and perturbed expert) per worker process, reused across its
# episodes. Key: (task, explore, expert_file).
_Key = tuple[str, Explore | None, str | None]
_CACHE: dict[_Key, tuple[gym.Env, Expert, Expert | None]] = {}


def task_expert(task: str, expert_file: str | None = None) -> Expert:
    """The task's scripted expert; with ``expert_file``, the task's other scripted expert of
    that name (``gato.envs.registry.other_experts``) or else the RAM policy in that file."""
    if expert_file is None:
        return expert(task)
    if expert_file in other_experts(task):
        return expert(task, expert_file)
    from gato.envs.experts.ram_policy import RamPolicyExpert

    return RamPolicyExpert(expert_file)


def model_policy(checkpoint: str | Path, task: str) -> Policy:
    """The checkpoint acting greedily in envs of ``task`` (the DAgger learner), batched."""
    from gato.loading import load_trained
    from gato.policy import Policy

    trained = load_trained(checkpoint)
    return Policy(trained.model, trained.tokenizers, trained.task_spec(task))


def model_player(checkpoint: str | Path, task: str) -> Expert:
    """The checkpoint acting greedily in one env of ``task``, as an :class:`Expert`."""
    from gato.policy import ModelPlayer

    return ModelPlayer(model_policy(checkpoint, task))


# The DAgger learner and its envs and labelling experts, per process. Keys:
# (task, checkpoint) and (task, expert_file); the env list grows to the largest group.
_LEARNERS: dict[tuple[str, str], Policy] = {}
_LABELLED_ENVS: dict[tuple[str, str | None], list[tuple[gym.Env, Expert]]] = {}


class _Job(NamedTuple):
    """One attempt, as a worker process receives it."""

    task: str
    out: str
    attempt: int
    seed: int
    min_return: float | None
    chunk_steps: int
    dagger: str | None
    explore: Explore | None
    expert_file: str | None


def _attempt(args: _Job) -> Attempt:
    """Attempt ``args[2]``: the expert plays (perturbed with ``explore``; labelled then)."""
    task, out, attempt, seed, min_return, chunk_steps, _, explore, expert_file = args
    key = (task, explore, expert_file)
    if key not in _CACHE:
        player = None if explore is None else Perturbed(task_expert(task, expert_file), *explore)
        _CACHE[key] = (make(task), task_expert(task, expert_file), player)
    env, policy, player = _CACHE[key]
    if player is None:
        episode = rollout(env, policy, seed, task)
    else:  # the perturbed expert plays, the clean expert labels
        episode = rollout(env, player, seed, task, labeler=policy)
    return _record(task, out, attempt, seed, episode, min_return, chunk_steps)


def _dagger_group(jobs: list[_Job]) -> list[Attempt]:
    """Attempts ``jobs`` (consecutive, one DAgger checkpoint) played at once, in order."""
    task, out, _, _, _, chunk_steps, dagger, _, expert_file = jobs[0]
    assert dagger is not None
    if (task, dagger) not in _LEARNERS:  # threads: the caller's, or _one_thread's
        _LEARNERS[task, dagger] = model_policy(dagger, task)
    pairs = _LABELLED_ENVS.setdefault((task, expert_file), [])
    while len(pairs) < len(jobs):
        pairs.append((make(task), task_expert(task, expert_file)))
    pairs = pairs[: len(jobs)]
    seeds = [job.seed for job in jobs]
    episodes = labelled_rollouts(
        [env for env, _ in pairs], _LEARNERS[task, dagger], [e for _, e in pairs], seeds, task
    )
    return [
        _record(task, out, job.attempt, job.seed, episode, None, chunk_steps)
        for job, episode in zip(jobs, episodes, strict=True)
    ]


def _record(
    task: str,
    out: str,
    attempt: int,
    seed: int,
    episode: Episode,
    min_return: float | None,
    chunk_steps: int,
) -> Attempt:
    """Write ``episode``'s shard if it passes ``min_return``; the attempt's outcome."""
    record = None
    if min_return is None or episode.score >= min_return:
        record = write_shard(Path(out), shard_name(attempt), episode, chunk_steps)
    specs = Episode(
        task,
        {k: v[:0] for k, v in episode.observations.items()},
        episode.actions[:0],
        episode.rewards[:0],
    )
    return Attempt(attempt, seed, episode.score, len(episode), record, specs)


def collect(
    task: str,
    episodes: int,
    out: str | Path,
    *,
    workers: int = 1,
    seed: int = 0,
    min_score_frac: float | None = None,
    min_return: float | None = None,
    progress: bool = True,
    max_attempts: int | None = None,
    dagger: str | Path | None = None,
    explore: Explore | None = None,
    expert_file: str | Path | None = None,
    envs: int | None = None,
) -> CollectSummary:
    """Collect until the store at ``out`` holds ``episodes`` kept expert episodes of ``task``.

    ``min_score_frac`` defaults to 0.8 (the paper's filter); ``min_return`` overrides
    the threshold derived from it. ``max_attempts`` bounds the attempts of this run (an
    expert that never passes the filter is an error, not an endless loop; default
    ``10 * episodes + 100``). ``dagger``: a checkpoint (or run directory) that plays
    while the expert labels (see the module docstring); every episode is kept.
    ``explore``: ``(p, hold)``, the expert plays with random detours while a clean
    expert labels (noise injection, see the module docstring); every episode is kept.
    ``expert_file``: a trained RAM policy, or the name of one of the task's other
    scripted experts, that plays (or labels) instead of the task's own expert. ``envs``:
    with ``dagger``, episodes the checkpoint plays at once (default 8; the store is the
    same for any value).
    """
    from tqdm import tqdm

    if episodes < 0 or workers < 1:
        raise ValueError("--episodes must be >= 0 and --workers >= 1")
    spec(task)  # unknown task -> ValueError
    if explore is not None and dagger is not None:
        raise ValueError("--explore and --dagger are two ways to pick who plays: use one")
    if envs is not None and (dagger is None or envs < 1):
        raise ValueError("--envs is the number of episodes a --dagger checkpoint plays at "
                         f"once: it needs --dagger and a value >= 1, got {envs}")  # fmt: skip
    # another scripted expert of the task is kept (and identified) by its name
    scripted = expert_file is not None and expert_file in other_experts(task)
    if expert_file is not None:
        import numpy as np

        from gato.envs.experts.ram_policy import policy_file

        if not scripted:
            owner = next((t for t in task_names() if expert_file in other_experts(t)), None)
            if owner is not None and not Path(expert_file).is_file():
                raise ValueError(f"{expert_file} is a scripted expert of {owner}, not of {task}")
            expert_file = str(policy_file(expert_file))  # a file, or a shipped policy's name
        player = task_expert(task, expert_file)  # not a RAM policy -> ValueError
        env = make(task)
        try:  # another game's -> ValueError, before any write
            player.reset(env, np.random.default_rng(0))
        finally:
            env.close()
    labelled = "--explore" if explore is not None else "--dagger" if dagger is not None else None
    if labelled and ((min_score_frac or 0) > 0 or min_return is not None):
        raise ValueError(f"{labelled} keeps every episode (the returns are not the expert's): "
                         "drop --min-score-frac")  # fmt: skip
    if explore is not None:
        explore = (float(explore[0]), int(explore[1]))
        # bad p or hold -> ValueError, before any write
        Perturbed(task_expert(task, expert_file), *explore)
    elif dagger is not None:
        from gato.checkpoint import resolve_checkpoint

        dagger = str(resolve_checkpoint(dagger))  # a run directory: its newest, recorded
        if workers == 1:  # load (and check) it here once; workers load their own
            _LEARNERS[task, dagger] = model_policy(dagger, task)
    elif min_return is None:
        min_return = min_return_for(task, 0.8 if min_score_frac is None else min_score_frac)
    writer = StoreWriter(out, task)
    params = {
        "seed_base": seed,
        "min_return": min_return,
        "dagger": dagger,
        "explore": None if explore is None else list(explore),
        "expert_file": expert_file,
        "expert_sha256": None if expert_file is None or scripted else file_sha256(expert_file),
    }
    if writer.manifest is not None:
        before = {k: writer.manifest.collection.get(k) for k in params}
        if _identity(before) != _identity(params):
            raise ValueError(
                f"{out} was collected with {before}, not {params}: "
                "pass the same --seed/--min-score-frac/--dagger/--expert/--explore to continue, "
                "or use another --out"
            )
        # (a store from before expert_sha256 was recorded gets it now)
        collection = {**writer.manifest.collection, "expert_sha256": params["expert_sha256"]}
    else:
        collection = {**params, "next_attempt": 0, "rejected": []}
    writer.remove_orphans()  # shards of attempts a previous run never recorded
    start_kept, start = len(writer), time.perf_counter()
    first_attempt = next_attempt = collection["next_attempt"]
    budget = max_attempts if max_attempts is not None else 10 * episodes + 100
    steps = rejected = 0
    last_flush = time.perf_counter()
    bar = tqdm(
        total=episodes, initial=min(start_kept, episodes), desc=f"collect {task}",
        unit="ep", disable=not progress,
    )  # fmt: skip
    group = 1 if dagger is None else DAGGER_ENVS if envs is None else envs
    end = next_attempt + max(episodes - start_kept, 0)  # no DAgger episode is filtered
    results = _attempts(
        task, out, seed, next_attempt, min_return, writer, workers, dagger, explore, expert_file,
        group=group, end=end if dagger is not None else None,
    )  # fmt: skip
    try:
        while len(writer) < episodes:
            if next_attempt - first_attempt >= budget:
                raise RuntimeError(
                    f"{task}: only {len(writer) - start_kept} of {episodes - start_kept} "
                    f"episodes passed min_return={min_return} in {budget} attempts"
                )
            result = next(results)
            steps += result.steps
            if result.record is None:
                rejected += 1
                collection["rejected"].append({"seed": result.seed, "score": result.score})
            else:
                writer.append(result.record, result.episode, flush=False)
                bar.update(1)
            next_attempt = result.attempt + 1
            if writer.manifest is not None:  # None until the first episode is kept
                writer.manifest.collection = {**collection, "next_attempt": next_attempt}
            bar.set_postfix(steps=steps, rejected=rejected)
            if time.perf_counter() - last_flush > FLUSH_SECONDS:
                writer.flush()
                last_flush = time.perf_counter()
    finally:
        results.close()  # stops the worker pool before orphans are cleaned up
        # Whatever happened, the manifest lists every episode finished so far.
        writer.flush()
        bar.close()
        writer.remove_orphans()
    return CollectSummary(
        episodes=len(writer),
        new_episodes=len(writer) - start_kept,
        rejected=rejected,
        steps=steps,
        seconds=time.perf_counter() - start,
        min_return=min_return,
    )


def _identity(collection: dict) -> dict:
    """What a resume must match: the settings, and the expert by content, not by path.

    A store recorded before ``expert_sha256`` existed is identified by its recorded
    file's current content when that file is still there (else by its path).
    """
    digest, path = collection.get("expert_sha256"), collection.get("expert_file")
    if digest is None and path is not None:
        digest = file_sha256(path) if Path(path).is_file() else path
    settings = {k: v for k, v in collection.items() if k not in ("expert_file", "expert_sha256")}
    return {**settings, "expert": digest}


def _attempts(
    task: str,
    out: str | Path,
    seed: int,
    first: int,
    min_return: float | None,
    writer: StoreWriter,
    workers: int,
    dagger: str | None,
    explore: Explore | None,
    expert_file: str | None,
    group: int = 1,
    end: int | None = None,
) -> Iterator[Attempt]:
    """Attempts ``first, first + 1, ...`` (up to ``end``) in order, by ``workers`` processes.

    A DAgger checkpoint plays ``group`` consecutive attempts at once; the expert plays
    one at a time.
    """
    chunk = writer.chunk_steps

    def job(a: int) -> _Job:
        return _Job(task, str(out), a, seed + a, min_return, chunk, dagger, explore, expert_file)

    def groups(a: int) -> Iterator[list[_Job]]:
        while end is None or a < end:
            stop = a + group if end is None else min(a + group, end)
            yield [job(i) for i in range(a, stop)]
            a = stop

    if workers == 1:
        for jobs in groups(first):
            yield from _play(jobs)
        return
    # Rounds of a few jobs per worker: Pool.imap would otherwise drain an endless
    # iterator; the pool is terminated when the caller stops.
    with mp.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
        pending = groups(first)
        while batch := list(islice(pending, 4 * workers)):
            for attempts in pool.imap(_play, batch, chunksize=1):
                yield from attempts


def _one_thread() -> None:
    """A pool worker's torch (the learner's or a RAM expert's) runs on one thread.

    The workers already fill the cores; torch's default, a thread per core in each
    worker, would oversubscribe them. The environment variable covers a torch imported
    later in the worker, the call one imported already (with the pickled job's modules).
    """
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _play(jobs: list[_Job]) -> list[Attempt]:
    """The outcomes of ``jobs``: one expert attempt, or a group a DAgger learner plays."""
    return [_attempt(jobs[0])] if jobs[0].dagger is None else _dagger_group(jobs)
