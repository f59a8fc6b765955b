"""Run a policy for one episode and record it as an :class:`~gato.envs.spec.Episode`.

A policy is either an :class:`~gato.envs.experts.base.Expert` (which sees the
env) or any callable ``obs -> action``. Randomness is derived from the seed
alone: the env is reset with ``seed``, an expert's rng and the random policy's
action sampler are seeded from ``(seed, stream)``, so one seed is one episode.

With a ``labeler`` (DAgger, ``gato data collect --dagger``) the policy still chooses
the actions the env is stepped with, but the episode records the labeler's action in
each visited state instead: the expert's answer on the learner's own states.
:func:`labelled_rollouts` does the same for N envs at once, with a learner that acts
in all of them in one call (a model's forwards are batched), and records the same
episodes as N calls of :func:`rollout` with that learner alone in each env.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from gato.envs.experts.base import Expert
from gato.envs.spec import Episode

Policy = Expert | Callable[[Any], Any]

# Separate generator streams for the expert and the random policy, both derived
# from the episode seed, so they never share draws with the env's own generator.
EXPERT_STREAM = 1
RANDOM_STREAM = 2
LEARNER_STREAM = 3  # the behaviour policy when an expert labels (so the two never share draws)


def rollout(
    env: gym.Env,
    policy: Policy,
    seed: int,
    task: str = "",
    max_steps: int | None = None,
    labeler: Expert | None = None,
) -> Episode:
    """Play one episode of ``policy`` on ``env`` from ``env.reset(seed=seed)``.

    Returns an Episode whose ``observations[key]`` is ``(T, ...)`` (the observation
    each action was taken on; the final observation is not kept), ``actions`` is
    ``(T,)`` int64 or ``(T, A)`` float32 and ``rewards`` is ``(T,)`` float32.
    ``max_steps`` stops early and marks the episode truncated.

    With ``labeler``, ``actions`` holds the labeler's choice on each observation (asked
    before the env steps, so it sees the same state), while ``policy``'s actions are the
    ones played and ``rewards`` are what they earned.
    """
    act = _actor(env, policy, seed, EXPERT_STREAM if labeler is None else LEARNER_STREAM)
    label = None if labeler is None else _actor(env, labeler, seed, EXPERT_STREAM)
    obs, _ = env.reset(seed=seed)
    observations: list[Any] = []
    actions: list[Any] = []
    rewards: list[float] = []
    terminated = truncated = False
    while not (terminated or truncated):
        if max_steps is not None and len(actions) >= max_steps:
            truncated = True
            break
        action = act(obs)
        observations.append(obs)
        actions.append(action if label is None else label(obs))
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
    return _episode(env, task, seed, observations, actions, rewards, terminated, truncated)


class BatchLearner(Protocol):
    """Acts in N envs at once, one row per env (``gato.policy.Policy`` is one)."""

    def reset(self, batch_size: int, seeds: Sequence[int] | None = None) -> None:
        """Start N episodes; ``seeds`` seed each row's sampling."""

    def act(self, observations: Mapping[str, np.ndarray]) -> np.ndarray:
        """``key -> (N, ...)`` observations -> ``(N,)`` or ``(N, A)`` actions."""

    def keep(self, rows: Sequence[int]) -> None:
        """Continue only the envs at ``rows`` (the others' episodes ended)."""


def sampling_seed(rng: np.random.Generator) -> int:
    """The seed a model player (:class:`gato.policy.ModelPlayer`) draws from an episode's
    rng for its sampling generator."""
    return int(rng.integers(2**63))


def learner_seed(seed: int) -> int:
    """The sampling seed a learner gets for episode ``seed`` (its ``LEARNER_STREAM``): the
    draw a one-env model player makes from the rng :func:`rollout` gives it, so a batched
    learner samples as the one-env learner does."""
    return sampling_seed(np.random.default_rng([seed, LEARNER_STREAM]))


def labelled_rollouts(
    envs: Sequence[gym.Env],
    learner: BatchLearner,
    labelers: Sequence[Expert],
    seeds: Sequence[int],
    task: str = "",
) -> list[Episode]:
    """Play one episode in each of ``envs`` at once; the learner acts, the labelers label.

    Env ``i`` is reset with ``seeds[i]`` and labelled by ``labelers[i]``; the learner
    chooses every env's action in one :meth:`BatchLearner.act` call per step and drops
    the rows of finished episodes. Episode ``i`` is what ``rollout(envs[i], learner
    alone, seeds[i], labeler=labelers[i])`` records: the learner's states and
    rewards, the labeler's actions.
    """
    n = len(envs)
    if not n or len(labelers) != n or len(seeds) != n:
        raise ValueError(f"need as many labelers and seeds as envs, got {n}, "
                         f"{len(labelers)}, {len(seeds)}")  # fmt: skip
    learner.reset(n, seeds=[learner_seed(s) for s in seeds])
    label = [
        _actor(e, lab, s, EXPERT_STREAM) for e, lab, s in zip(envs, labelers, seeds, strict=True)
    ]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
    observations: list[list[Any]] = [[] for _ in range(n)]
    actions: list[list[Any]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    ended = [(False, False)] * n  # (terminated, truncated) per env
    live = list(range(n))  # envs still playing; row j of the learner is env live[j]
    while live:
        batch = {k: np.stack([obs[i][k] for i in live]) for k in obs[live[0]]}  # (N', ...)
        chosen = learner.act(batch)  # (N',) or (N', A)
        going = []
        for j, i in enumerate(live):
            observations[i].append(obs[i])
            actions[i].append(label[i](obs[i]))  # asked before the step: the same state
            action = chosen[j].item() if chosen[j].ndim == 0 else chosen[j]
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            rewards[i].append(float(reward))
            if terminated or truncated:
                ended[i] = (bool(terminated), bool(truncated))
            else:
                going.append(j)
        if going and len(going) < len(live):
            learner.keep(going)
        live = [live[j] for j in going]
    return [
        _episode(envs[i], task, seeds[i], observations[i], actions[i], rewards[i], *ended[i])
        for i in range(n)
    ]


def _episode(
    env: gym.Env,
    task: str,
    seed: int,
    observations: list[Any],
    actions: list[Any],
    rewards: list[float],
    terminated: bool,
    truncated: bool,
) -> Episode:
    """The recorded lists of one episode of ``env``, stacked into an :class:`Episode`."""
    return Episode(
        task=task,
        observations=_stack_observations(observations, env.observation_space),
        actions=_stack_actions(actions, env.action_space),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=bool(terminated),
        truncated=bool(truncated),
        seed=seed,
    )


def _actor(env: gym.Env, policy: Policy, seed: int, stream: int) -> Callable[[Any], Any]:
    """``obs -> action`` for one episode; an expert is reset with its ``(seed, stream)`` rng."""
    if isinstance(policy, Expert):
        policy.reset(env, np.random.default_rng([seed, stream]))
        return lambda obs: policy.act(env, obs)
    return policy


def random_policy(env: gym.Env, seed: int) -> Callable[[Any], Any]:
    """A uniform random policy over ``env.action_space``, seeded from ``(seed, RANDOM_STREAM)``."""
    space = env.action_space
    space.seed(int(np.random.SeedSequence([seed, RANDOM_STREAM]).generate_state(1)[0]))
    return lambda obs: space.sample()


def random_rollout(env: gym.Env, seed: int, task: str = "") -> Episode:
    """One episode of uniformly random actions."""
    return rollout(env, random_policy(env, seed), seed, task)


def _stack_observations(observations: list[Any], space: gym.Space) -> dict[str, np.ndarray]:
    if not isinstance(space, gym.spaces.Dict):
        raise ValueError(f"rollout needs a Dict observation space (gato.envs.make), got {space}")
    out = {}
    for key, sub in space.spaces.items():
        values = [o[key] for o in observations]
        if isinstance(sub, gym.spaces.Text):
            out[key] = np.asarray(values, dtype=np.str_)  # (T,) strings
        else:
            empty = np.zeros((0, *sub.shape), dtype=sub.dtype)
            out[key] = np.stack(values).astype(sub.dtype, copy=False) if values else empty
    return out


def _stack_actions(actions: list[Any], space: gym.Space) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return np.asarray(actions, dtype=np.int64).reshape(len(actions))  # (T,)
    if isinstance(space, gym.spaces.Box):
        flat = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)  # (T, A)
        return flat
    raise ValueError(f"unsupported action space {space}")
