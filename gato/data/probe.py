"""How predictable are a store's actions from its frames? A behaviour-cloning probe.

Imitation can only copy what the demonstrations' observations show. An expert that
acts on hidden state (a simulator's look-ahead, a controller the screen does not
show) leaves a gap no learner closes, however large. This probe measures that gap
for an image task, apart from the Gato model: a small convolutional network (the
DQN shape, padded so any frame size works) is trained for a fixed budget to predict
the recorded action from the last ``frames`` frames, and its held-out cross-entropy
is set against the best frame-blind guess, the training set's action frequencies.

- probe CE well below the baseline: the frames carry the expert's decisions; a pixel
  learner that fails on this data is under-trained or mis-built;
- probe CE near the baseline: the actions are (at this budget) not a function of the
  recent frames, and cloning them yields the majority action.

Held-out data are the last ``heldout`` episodes of the store (whole episodes, so
neighbouring frames never straddle the split). Extra stores of the same task (DAgger
or ``--explore`` stores: the expert's labels in states off its own course) only add
training episodes, so a probe with and without them is scored on the same held-out
demonstrations. Frames are kept once in memory (uint8) and stacked by index per batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gato.data.store import EpisodeStore
from gato.envs.spec import ObsKind


@dataclass(frozen=True)
class ProbeConfig:
    """Budget and shape of the probe.

    Attributes:
        frames: frames stacked as channels (the current one and ``frames - 1`` before it).
        steps: optimiser steps at most.
        seconds: wall-clock budget at most (whichever of the two ends first).
        batch_size: samples per step.
        lr: Adam learning rate.
        heldout: episodes at the end of the store kept for evaluation.
        eval_samples: held-out samples scored at each report (all at the end).
        report_every: steps between progress reports.
        seed: torch and sampling seed.
        last_action: also give the probe the action taken at the previous step (one-hot,
            zeros at an episode's first step), as Gato's context holds its past actions.
            Experts whose move depends on their last one (a paddle's momentum) need it.
        full_map: flatten the convolutions' whole map instead of pooling it to 6x6
            (:class:`FrameProbe`), so a 1-2 pixel ball's place within a cell survives.
    """

    frames: int = 4
    steps: int = 100_000
    seconds: float = 300.0
    batch_size: int = 128
    lr: float = 3e-4
    heldout: int = 3
    eval_samples: int = 4000
    report_every: int = 500
    seed: int = 0
    last_action: bool = False
    full_map: bool = False


@dataclass
class ProbeReport:
    """Held-out cross-entropy (nats) and accuracy of the probe and of the baseline."""

    task: str
    store: str
    frames: int
    train_samples: int
    heldout_samples: int
    action_counts: dict[int, int]
    baseline_ce: float  # training-set action frequencies, scored on the held-out actions
    majority_accuracy: float  # always the training set's most frequent action
    probe_ce: float
    probe_accuracy: float
    steps: int
    seconds: float
    curve: list[dict] = field(default_factory=list)  # step, train_ce, heldout_ce, accuracy
    extra: list[str] = field(default_factory=list)  # stores that only added training episodes
    last_action: bool = False  # the probe also saw the previous action
    full_map: bool = False  # the convolutions' whole map, not pooled to 6x6

    @property
    def gap_closed(self) -> float:
        """Share of the baseline's cross-entropy the frames explain (0: none, 1: all)."""
        return 1.0 - self.probe_ce / self.baseline_ce if self.baseline_ce > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "gap_closed": self.gap_closed}


class FrameProbe(nn.Module):
    """``(B, frames, H, W)`` floats in [-1, 1] -> ``(B, n_actions)`` logits.

    With ``last_action`` the previous action ``(B, n_actions)`` one-hot (zeros at an
    episode's first step) joins the image features before the two dense layers. The
    convolutions' map is average-pooled to 6x6 (any frame size works), unless
    ``full_map`` gives the frame size ``(H, W)``: then the whole map is flattened (10x10
    at 80x80), which keeps where in a cell a small object is.
    """

    def __init__(
        self,
        frames: int,
        n_actions: int,
        last_action: bool = False,
        full_map: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.frames, self.n_actions, self.last_action = frames, n_actions, last_action
        readout = nn.AdaptiveAvgPool2d(6) if full_map is None else nn.Identity()
        self.conv = nn.Sequential(
            nn.Conv2d(frames, 32, 8, stride=4, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1, padding=1),
            nn.ReLU(),
            readout,  # pooled: (B, 64, 6, 6), coarse position; full map: (B, 64, h, w)
            nn.Flatten(),  # (B, F)
        )
        if full_map is None:
            width = 64 * 6 * 6
        else:  # the map's size, read off the convolutions themselves
            with torch.no_grad():
                width = self.conv(torch.zeros(1, frames, *full_map)).shape[1]
        extra = n_actions if last_action else 0
        self.head = nn.Sequential(
            nn.Linear(width + extra, 256), nn.ReLU(), nn.Linear(256, n_actions)
        )

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv(x)  # (B, F): 2304 pooled
        if self.last_action:
            if previous is None:
                raise ValueError("this probe also reads the previous action: pass `previous`")
            h = torch.cat([h, previous], dim=1)  # (B, F + n_actions)
        return self.head(h)


def frequency_baseline(counts: torch.Tensor, y_test: torch.Tensor) -> tuple[float, float]:
    """The best input-blind guess, scored on held-out actions.

    Args:
        counts: ``(n_actions,)`` how often each action occurs in the training set.
        y_test: ``(N,)`` held-out actions.

    Returns:
        The cross-entropy (nats) of the training frequencies and the accuracy of always
        playing the most frequent action.
    """
    freq = counts.double() / counts.sum()
    ce = float(-(freq[y_test] + 1e-12).log().mean())
    return ce, float((y_test == int(freq.argmax())).double().mean())


def stack_indices(lengths: np.ndarray, frames: int) -> np.ndarray:
    """Row indices of each step's frame stack into the concatenated frames of all episodes.

    Args:
        lengths: ``(E,)`` episode lengths.
        frames: frames per stack.

    Returns:
        ``(sum(lengths), frames)`` int64; row ``t`` of episode ``e`` lists the frames
        ``t - frames + 1 .. t`` of that episode, oldest first, with the episode's first
        frame repeated where the episode has not gone back that far.
    """
    rows = []
    start = 0
    for n in lengths:
        t = np.arange(n)[:, None] - np.arange(frames - 1, -1, -1)[None, :]  # (n, frames)
        rows.append(start + np.maximum(t, 0))
        start += int(n)
    return np.concatenate(rows) if rows else np.zeros((0, frames), dtype=np.int64)


def _image_key(store: EpisodeStore) -> str:
    """The store's only image observation key; a clear error unless there is exactly one
    and the actions are discrete."""
    spec = store.manifest
    images = [k for k, s in spec.observation.items() if len(s.shape) == 3]
    if len(images) != 1:
        raise ValueError(
            f"{store.path}: the probe needs exactly one image observation, found {images or 'none'}"
        )
    if spec.action.shape != () or not np.issubdtype(np.dtype(spec.action.dtype), np.integer):
        raise ValueError(f"{store.path}: the probe needs a discrete (integer) action space")
    return images[0]


def _grey(x: np.ndarray) -> np.ndarray:
    """Frames ``(..., H, W, C)`` uint8 -> ``(..., H, W)`` uint8 (channel mean if C > 1)."""
    return x.mean(axis=-1).astype(np.uint8) if x.shape[-1] > 1 else x[..., 0]


def _as_input(stacks: torch.Tensor) -> torch.Tensor:
    """uint8 frame stacks ``(B, frames, H, W)`` -> the probe's float input in [-1, 1]."""
    return stacks.float() / 127.5 - 1.0


def _load(store: EpisodeStore, key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each episode's grey frames ``(T, H, W)`` uint8 and actions ``(T,)``."""
    frames, actions = [], []
    for episode in store:
        frames.append(_grey(episode.observations[key]))  # (T, H, W, C) -> (T, H, W)
        actions.append(episode.actions.astype(np.int64))
    return frames, actions


def probe_store(
    path: str | Path,
    cfg: ProbeConfig = ProbeConfig(),
    progress=None,
    extra: Sequence[str | Path] = (),
) -> ProbeReport:
    """Train and score the probe on the episode store at ``path`` (see the module doc)."""
    return train_probe(path, cfg, progress, extra)[1]


def train_probe(
    path: str | Path,
    cfg: ProbeConfig = ProbeConfig(),
    progress=None,
    extra: Sequence[str | Path] = (),
) -> tuple[FrameProbe, ProbeReport]:
    """Train the probe on the episode store at ``path``; the trained network and its report.

    Args:
        path: an episode store of an image task with discrete actions.
        cfg: budget and shape.
        progress: optional callable taking each curve point (a dict) as it is measured.
        extra: more stores of the same task whose episodes are all training data (the
            held-out episodes still come from ``path`` alone).
    """
    store = EpisodeStore(path)
    key = _image_key(store)
    if len(store) <= cfg.heldout:
        raise ValueError(
            f"{store.path}: {len(store)} episodes; the probe holds out {cfg.heldout} and "
            "needs at least one more to train on"
        )
    if cfg.frames < 1:
        raise ValueError(f"frames must be >= 1, got {cfg.frames}")
    frames, actions = _load(store, key)
    cut = len(frames) - cfg.heldout  # episodes before ``cut`` train, the rest are held out
    extra_paths = []
    for extra_path in extra:
        other = EpisodeStore(extra_path)
        extra_paths.append(str(other.path))
        if other.task != store.task or _image_key(other) != key:
            raise ValueError(
                f"{other.path}: task {other.task!r} cannot extend a probe of {store.task!r} "
                f"({store.path})"
            )
        more_frames, more_actions = _load(other, key)
        frames[cut:cut] = more_frames  # before the held-out episodes
        actions[cut:cut] = more_actions
        cut += len(more_frames)
    lengths = np.array([len(a) for a in actions])
    all_frames = torch.from_numpy(np.concatenate(frames))  # (N, H, W) uint8, kept once
    y = torch.from_numpy(np.concatenate(actions))  # (N,)
    stacks = torch.from_numpy(stack_indices(lengths, cfg.frames))  # (N, frames)
    # The previous step's row; an episode's first step points at itself, masked below.
    before = torch.from_numpy(stack_indices(lengths, 2)[:, 0])  # (N,)
    first = before == torch.arange(len(y))  # (N,) True at each episode's first step
    n_train = int(lengths[: len(lengths) - cfg.heldout].sum())
    n_actions = int(y.max()) + 1

    counts = torch.bincount(y[:n_train], minlength=n_actions)
    y_test = y[n_train:]
    baseline_ce, majority = frequency_baseline(counts, y_test)

    def logits_of(rows: torch.Tensor) -> torch.Tensor:
        x = _as_input(all_frames[stacks[rows]])  # (B, frames, H, W)
        if not cfg.last_action:
            return model(x)
        previous = F.one_hot(y[before[rows]], n_actions).float()  # (B, n_actions)
        previous[first[rows]] = 0.0  # nothing came before an episode's first step
        return model(x, previous)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    full_map = tuple(all_frames.shape[1:]) if cfg.full_map else None  # (H, W)
    model = FrameProbe(cfg.frames, n_actions, cfg.last_action, full_map)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    test_rows = torch.arange(n_train, len(y))
    quick = test_rows[torch.randperm(len(test_rows), generator=gen)[: cfg.eval_samples]]

    @torch.no_grad()
    def score(rows: torch.Tensor) -> tuple[float, float]:
        model.eval()
        loss, correct = 0.0, 0
        for chunk in rows.split(1024):
            logits = logits_of(chunk)
            loss += float(F.cross_entropy(logits, y[chunk], reduction="sum"))
            correct += int((logits.argmax(1) == y[chunk]).sum())
        model.train()
        return loss / len(rows), correct / len(rows)

    curve: list[dict] = []
    start, step, train_loss = time.perf_counter(), 0, float("nan")
    while step < cfg.steps and time.perf_counter() - start < cfg.seconds:
        rows = torch.randint(n_train, (cfg.batch_size,), generator=gen)
        loss = F.cross_entropy(logits_of(rows), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        value = loss.item()
        train_loss = 0.98 * train_loss + 0.02 * value if step > 1 else value  # smoothed
        if step % cfg.report_every == 0:
            ce, acc = score(quick)
            point = {"step": step, "train_ce": train_loss, "heldout_ce": ce, "accuracy": acc}
            curve.append(point)
            if progress is not None:
                progress(point)
    seconds = time.perf_counter() - start
    probe_ce, probe_acc = score(test_rows)
    model.eval()
    return model, ProbeReport(
        task=store.task,
        store=str(store.path),
        frames=cfg.frames,
        train_samples=n_train,
        heldout_samples=len(test_rows),
        action_counts={a: int(c) for a, c in enumerate(counts.tolist()) if c},
        baseline_ce=baseline_ce,
        majority_accuracy=majority,
        probe_ce=probe_ce,
        probe_accuracy=probe_acc,
        steps=step,
        seconds=seconds,
        curve=curve,
        extra=extra_paths,
        last_action=cfg.last_action,
        full_map=cfg.full_map,
    )


@torch.no_grad()
def play_probe(
    model: FrameProbe, task: str, episodes: int, seed: int, temperature: float = 0.0
) -> list[float]:
    """Returns of ``episodes`` episodes of ``task`` (env seeds ``seed``, ``seed + 1``, ...)
    played by the probe: the closed-loop test of what its held-out loss promises.

    Frames are stacked exactly as in training (grey, oldest first, the first frame
    repeated at the start of an episode). ``temperature`` 0 plays the most likely action
    (greedy); above 0 actions are sampled from ``softmax(logits / temperature)``, with
    episode ``i``'s generator seeded by ``seed + i`` (1 samples the learned policy itself).
    """
    from gato.envs import registry  # the env only when playing
    from gato.envs.rollout import rollout

    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    spec = registry.spec(task)
    key = next(k for k, f in spec.observation.items() if f.kind is ObsKind.IMAGE)
    frames = model.frames

    def player(episode_seed: int):  # one episode's ``obs -> action``, with its frame stack
        stack: list[np.ndarray] = []
        previous = torch.zeros(1, model.n_actions)  # (1, A): no action before the first step
        gen = torch.Generator().manual_seed(episode_seed)

        def act(obs: dict) -> int:
            nonlocal stack, previous
            grey = _grey(obs[key])  # (H, W)
            stack = (stack or [grey] * frames)[1:] + [grey]  # (frames) oldest first
            x = _as_input(torch.from_numpy(np.stack(stack)[None]))  # (1, frames, H, W)
            logits = model(x, previous if model.last_action else None)[0]  # (A,)
            if temperature == 0:
                action = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=0)
                action = int(torch.multinomial(probs, 1, generator=gen))
            if model.last_action:  # (1, A), read at the next step
                previous = F.one_hot(torch.tensor([action]), model.n_actions).float()
            return action

        return act

    env = registry.make(task)
    returns = [
        float(rollout(env, player(seed + i), seed + i, task).rewards.sum()) for i in range(episodes)
    ]
    env.close()
    return returns
