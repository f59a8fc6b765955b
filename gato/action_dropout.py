"""Action dropout: some action tokens of the model's *input* become random legal actions.

Demonstrations repeat actions: a Pendulum expert's torque changes by ~0.1 a step, a
Pong expert holds NOOP 80% of the time. A model trained by next-token prediction on
such data lowers its loss most cheaply by copying the previous action in its context,
and then plays by copying its own actions ("copycat" imitation: the probe in README
"Results" shows Pendulum agents holding +2 torque while the expert brakes).

With ``train.action_dropout = p`` each action token the model reads is, with
probability ``p``, replaced by a uniformly random legal action of its task (the same
id range the policy samples from, so a replaced action looks like a real one). The
*targets* are untouched: :func:`gato.loss.sequence_loss` still scores the true actions
of the original batch, so the model must predict them from the observations whenever
the history may be wrong. Evaluation and held-out losses read unmodified sequences.

The randomness comes from torch's global generator, which ``gato train`` seeds per
step and rank, so runs and resumed runs stay reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gato.envs.spec import ActionSpec
from gato.sequence import Kind, TokenBatch, legal_action_ids
from gato.tokenizers.vocab import Vocab


def legal_ranges(vocab: Vocab, actions: Mapping[str, ActionSpec]) -> dict[str, torch.Tensor]:
    """task -> ``(dims, 2)`` int64 ``[low, high)`` legal token ids of each action dimension."""
    out = {}
    for task, action in actions.items():
        rows = []
        for ids in legal_action_ids(vocab, action):
            lo, hi = int(ids[0]), int(ids[-1]) + 1
            if hi - lo != len(ids):  # the draw below needs one contiguous range
                raise ValueError(f"{task}: legal action ids are not contiguous")
            rows.append((lo, hi))
        out[task] = torch.tensor(rows, dtype=torch.int64)
    return out


def drop_actions(batch: TokenBatch, p: float, ranges: Mapping[str, torch.Tensor]) -> TokenBatch:
    """A copy of ``batch`` whose action tokens are each replaced with probability ``p``.

    Args:
        batch: ``(B, T)`` rows; ``batch.tasks[b]`` names row ``b``'s task.
        p: replacement probability in ``[0, 1)``; 0 returns ``batch`` itself.
        ranges: :func:`legal_ranges` of every task whose rows hold actions.

    Returns:
        A :class:`TokenBatch` sharing every field but ``tokens`` with ``batch``.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"action dropout must be in [0, 1), got {p}")
    is_action = batch.kinds == Kind.ACTION  # (B, T)
    if p == 0.0 or not bool(is_action.any()):
        return batch
    B, T = batch.tokens.shape
    device = batch.tokens.device
    # Dimension of each action token: its offset inside its timestep's run of actions.
    pos = torch.arange(T, device=device).expand(B, T)  # (B, T)
    last_other = torch.where(is_action, torch.full_like(pos, -1), pos).cummax(dim=1).values
    dim = pos - last_other - 1  # (B, T): 0, 1, ... along a run of action tokens, else -1
    dims = max(len(r) for r in ranges.values()) if ranges else 1
    lo = torch.zeros(B, dims, dtype=torch.int64)
    hi = torch.zeros(B, dims, dtype=torch.int64)
    for b, task in enumerate(batch.tasks):
        r = ranges.get(task)
        if r is not None:
            lo[b, : len(r)], hi[b, : len(r)] = r[:, 0], r[:, 1]
    d = dim.clamp(0, dims - 1)  # non-action positions (-1) read dimension 0, unused
    lo_t = lo.to(device).gather(1, d)  # (B, T) the legal range of each position
    hi_t = hi.to(device).gather(1, d)
    unknown = is_action & (hi_t <= lo_t)  # an action of a task (or dimension) not in ranges
    if bool(unknown.any()):
        task = batch.tasks[int(unknown.any(dim=1).nonzero()[0])]
        raise ValueError(f"action dropout: no legal action ids for task {task!r}")
    draw = lo_t + (torch.rand(B, T, device=device) * (hi_t - lo_t)).long()  # (B, T)
    hit = is_action & (torch.rand(B, T, device=device) < p)
    # (minimum: float rounding of rand * width must not reach the exclusive bound)
    tokens = torch.where(hit, torch.minimum(draw, hi_t - 1), batch.tokens)
    return TokenBatch(
        tokens=tokens,
        kinds=batch.kinds,
        obs_pos=batch.obs_pos,
        loss_mask=batch.loss_mask,
        patches=batch.patches,
        patch_pos=batch.patch_pos,
        tasks=batch.tasks,
    )
