"""The agent in an environment: observations in, actions out, batched over N envs.

Per step, for the N envs of one task:

1. each env's observation becomes tokens with :func:`gato.sequence.observation_row`
   (the very function training uses) followed by the separator;
2. one forward appends all N rows to the KV cache (rows of one task have equal
   length, so no padding) and yields the logits after the separator;
3. the action's tokens are sampled one at a time, each restricted to the legal ids
   of its dimension (discrete: the action space's values; continuous: all bins),
   one forward per further dimension;
4. the ids decode back to env actions (:func:`gato.sequence.decode_action`).

The last action token is not fed on its own: it joins the next step's observation
tokens in one forward (same cache contents, one forward per step fewer).

Episode state (KV cache, pending tokens, generators, step count) lives here, never
in the model. The model's cache advances all its rows together, so an env that
finishes early cannot restart its row in place. Instead the evaluation loop plays
*episodes in lockstep*: every env plays one episode per round, and an env that
finishes is removed from the policy with :meth:`Policy.keep` (its cache row is
dropped: rows are independent, so this is exact). The cost: the vector env still
steps finished envs (their results are ignored) until the round's longest episode
ends; no model compute is spent on them. Episodes longer than the context are
fine: the cache slides (see ``gato.model``).

Continuous actions are decoded by ``action_decoding``: ``MODE`` (the default, with
greedy sampling the most likely bin, the paper's rule) or ``MEDIAN`` (the median bin
of the model's distribution, :func:`gato.sampling.median`; greedy only). Discrete
actions always follow ``sampling``.

Randomness: each row has its own ``torch.Generator`` seeded by the caller, and rows
are sampled one by one with it, so row ``i`` of a batch makes the same draws as a
single-env run seeded alike (batched == one at a time, and independent of N).

``cached=False`` is the reference path for tests: every forward recomputes the whole
history of each row without a cache (with the model's sliding window past the
context), so it must choose the same actions as the cached path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import gymnasium as gym
import numpy as np
import torch

from gato.envs.experts.base import Expert
from gato.envs.rollout import sampling_seed
from gato.envs.spec import TaskSpec
from gato.model import Gato, KVCache, last_positions
from gato.sampling import GREEDY, SamplingConfig, median, restrict, sample
from gato.sequence import (
    Kind,
    Row,
    TokenBatch,
    Tokenizers,
    collate,
    decode_action,
    legal_action_ids,
    observation_row,
)


class ActionDecoding(Enum):
    """How a continuous action dimension's token is chosen (discrete ones: ``sampling``)."""

    MODE = "mode"  # as ``sampling`` says: greedy = the most likely bin
    MEDIAN = "median"  # the median bin of the distribution (deterministic)


@dataclass
class StepTimes:
    """Seconds spent per part of :meth:`Policy.act`, summed since the last reset.

    ``model`` includes moving tensors to the device; ``sample`` the restricted
    sampling; ``tokenize`` observation rows, collation and action decoding.
    """

    tokenize: float = 0.0
    model: float = 0.0
    sample: float = 0.0

    @property
    def total(self) -> float:
        return self.tokenize + self.model + self.sample


class Policy:
    """Acts in N envs of one task with a trained model.

    Args:
        model: the Gato model (put in eval mode here).
        tokenizers: configured as in training (``gato.loading.Trained.tokenizers``).
        spec: the task's spec (observation keys, action space).
        sampling: greedy (temperature 0) or temperature / top-k / top-p.
        device: where the forward runs.
        cached: False for the uncached reference path (recompute the history each call).
        action_decoding: how continuous action tokens are chosen (see the module doc).
    """

    def __init__(
        self,
        model: Gato,
        tokenizers: Tokenizers,
        spec: TaskSpec,
        sampling: SamplingConfig = GREEDY,
        device: str | torch.device = "cpu",
        cached: bool = True,
        action_decoding: ActionDecoding = ActionDecoding.MODE,
    ) -> None:
        if action_decoding is ActionDecoding.MEDIAN and sampling.temperature != 0.0:
            raise ValueError("median action decoding is deterministic; use it with temperature 0")
        self.action_decoding = action_decoding
        self.median = action_decoding is ActionDecoding.MEDIAN and not spec.action.is_discrete
        self.model = model.eval()
        self.tok = tokenizers
        self.spec = spec
        self.sampling = sampling
        self.device = torch.device(device)
        self.cached = cached
        self.vocab = tokenizers.vocab
        size = self.vocab.size
        masks = []
        for ids in legal_action_ids(self.vocab, spec.action):  # one per action dimension
            allowed = torch.zeros(size, dtype=torch.bool)
            allowed[torch.from_numpy(ids)] = True
            masks.append(allowed.to(self.device))
        self.legal = masks
        self.times = StepTimes()
        self.reset(1)

    # -- episode state --

    def reset(
        self,
        batch_size: int,
        seeds: Sequence[int] | None = None,
        prompts: Sequence[Row] | None = None,
    ) -> None:
        """Start new episodes in ``batch_size`` envs.

        Args:
            seeds: one per env, seeding that env's sampling generator (default 0..N-1).
            prompts: optional demonstration per env (``sequence.demonstration_prompt``),
                all of the same length; they are prefilled before the first observation.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        seeds = list(range(batch_size)) if seeds is None else list(seeds)
        if len(seeds) != batch_size:
            raise ValueError(f"got {len(seeds)} seeds for {batch_size} envs")
        self.batch_size = batch_size
        self.steps = 0
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.cache: KVCache | None = self.model.new_cache(batch_size) if self.cached else None
        self._history: list[Row] = [self._empty() for _ in range(batch_size)]
        if prompts is not None:
            if len(prompts) != batch_size:
                raise ValueError(f"got {len(prompts)} prompts for {batch_size} envs")
            if len({len(p) for p in prompts}) > 1:
                raise ValueError(
                    f"prompts of one batch must have equal lengths, got {[len(p) for p in prompts]}"
                )
            self._pending: list[Row] | None = [p.without_loss() for p in prompts]
        else:
            self._pending = None
        self.times = StepTimes()

    def keep(self, rows: Sequence[int]) -> None:
        """Continue only the envs at ``rows`` (in that order); the others are dropped.

        Exact: the rows of a cache never interact. Observations passed to later
        :meth:`act` calls are those of the kept envs only.
        """
        idx = [int(r) for r in rows]
        if not idx or any(not 0 <= r < self.batch_size for r in idx):
            raise ValueError(f"rows must be a non-empty subset of [0, {self.batch_size})")
        if self.cache is not None:
            sel = torch.tensor(idx, device=self.device)
            self.cache.k = [k.index_select(0, sel) for k in self.cache.k]  # (B', H, S, hs)
            self.cache.v = [v.index_select(0, sel) for v in self.cache.v]
        self.generators = [self.generators[r] for r in idx]
        self._history = [self._history[r] for r in idx]
        if self._pending is not None:
            self._pending = [self._pending[r] for r in idx]
        self.batch_size = len(idx)

    # -- acting --

    @torch.no_grad()
    def act(self, observations: Mapping[str, np.ndarray]) -> np.ndarray:
        """One action per env.

        Args:
            observations: key -> ``(N, ...)`` array, as a gymnasium vector env of Dict
                spaces returns them (text fields: ``N`` strings).

        Returns:
            ``(N,)`` int64 for a discrete action space, ``(N, A)`` float32 otherwise.
        """
        t0 = time.perf_counter()
        n, action = self.batch_size, self.spec.action
        rows = []
        for i in range(n):
            row = observation_row(
                self.tok, self.spec, {k: observations[k][i] for k in self.spec.observation}
            )
            if self._pending is not None:
                row = Row.concat([self._pending[i], row], task=self.spec.name)
            rows.append(row)
        if len({len(r) for r in rows}) > 1:
            raise ValueError(
                f"observations of task {self.spec.name!r} tokenize to different lengths "
                f"{sorted({len(r) for r in rows})}; batch such envs one at a time"
            )
        batch = collate(rows, self.vocab)  # (N, L), no padding: equal lengths
        self.times.tokenize += time.perf_counter() - t0

        ids = np.empty((n, action.dims), np.int64)
        logits = self._forward(rows, batch)  # (N, V) after the separator
        for d in range(action.dims):
            t0 = time.perf_counter()
            chosen = self._choose(logits, self.legal[d])  # (N,)
            ids[:, d] = chosen.cpu().numpy()
            self.times.sample += time.perf_counter() - t0
            if d + 1 < action.dims:
                t0 = time.perf_counter()
                step_rows = [self._action_row(ids[i, d : d + 1]) for i in range(n)]
                step_batch = collate(step_rows, self.vocab)  # (N, 1)
                self.times.tokenize += time.perf_counter() - t0
                logits = self._forward(step_rows, step_batch)
        t0 = time.perf_counter()
        self._pending = [self._action_row(ids[i, -1:]) for i in range(n)]
        self.steps += 1
        if action.is_discrete:
            out = np.array([decode_action(self.tok, action, ids[i]) for i in range(n)], np.int64)
        else:
            out = np.stack([decode_action(self.tok, action, ids[i]) for i in range(n)])
            out = out.astype(np.float32, copy=False)  # (N, A)
        self.times.tokenize += time.perf_counter() - t0
        return out

    def _forward(self, rows: list[Row], batch: TokenBatch) -> torch.Tensor:
        """Append ``rows`` to every env's history; logits ``(N, V)`` after the last token."""
        t0 = time.perf_counter()
        if self.cache is not None:
            batch = batch.to(self.device)
            logits = self.model(batch, cache=self.cache, at=last_positions(batch))  # (N, V)
        else:
            self._history = [
                Row.concat([h, r], task=self.spec.name)
                for h, r in zip(self._history, rows, strict=True)
            ]
            full = collate(self._history, self.vocab).to(self.device)  # (N, T) the whole history
            logits = self.model(full, at=last_positions(full))  # (N, V)
        logits = logits.float()
        self.times.model += time.perf_counter() - t0
        return logits

    def _choose(self, logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """One legal id per row ``(N,)``; row ``i`` draws from its own generator."""
        if self.median:
            return median(logits, allowed)
        logits = restrict(logits, allowed)
        if self.sampling.temperature == 0.0:
            return sample(logits, self.sampling)
        cpu = logits.cpu()
        return torch.cat(
            [sample(cpu[i : i + 1], self.sampling, g) for i, g in enumerate(self.generators)]
        )

    def _action_row(self, ids: np.ndarray) -> Row:
        n = len(ids)
        return Row(
            tokens=np.asarray(ids, np.int64),
            kinds=np.full(n, int(Kind.ACTION), np.int64),
            obs_pos=np.zeros(n, np.int64),
            loss_mask=np.zeros(n, bool),
            patches=self.tok.empty_patches(),
            patch_pos=np.zeros((0, 4), np.int64),
            task=self.spec.name,
        )

    def _empty(self) -> Row:
        return Row.concat([], task=self.spec.name, empty_patches=self.tok.empty_patches())


class ModelPlayer(Expert):
    """A trained model acting in one env through the :class:`Expert` interface.

    So that :func:`gato.envs.rollout.rollout` can play a checkpoint like any scripted
    policy (``gato data collect --dagger``): ``reset`` starts a one-env episode whose
    sampling generator is seeded from ``rng``; ``act`` returns one env action. Unlike an
    expert it only reads the observation, never the env.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        self.policy.reset(1, seeds=[sampling_seed(rng)])

    def act(self, env: gym.Env, obs: Mapping[str, np.ndarray]) -> np.ndarray | int:
        action = self.policy.act({k: np.asarray(v)[None] for k, v in obs.items()})[0]  # (1, ...)
        return int(action) if self.policy.spec.action.is_discrete else action
