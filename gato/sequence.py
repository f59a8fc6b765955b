"""One token stream: episodes, captions and dialogues become the rows the model reads.

This module owns the representation every model input takes, :class:`TokenBatch`,
and (below) the builders that produce it.

Conventions (fixed here, relied on by the model, the loss, the policy and generation):

- Rows are right-padded with ``vocab.pad``; padding only ever follows real tokens,
  so causal attention alone keeps real tokens from seeing padding.
- ``loss_mask[b, t]`` is true when token ``t`` of row ``b`` is a *target*: the logits
  at position ``t - 1`` are trained to predict it. Position 0 is never a target.
- Image patches are not ids: their token id is ``vocab.patch`` and their pixels sit
  in ``patches``, one entry per ``Kind.IMAGE`` position, in row-major order over
  ``(B, T)`` (row 0's patches first, left to right, then row 1's, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import torch

from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec
from gato.tokenizers.chat import encode_dialogue
from gato.tokenizers.continuous import ContinuousTokenizer
from gato.tokenizers.discrete import DiscreteTokenizer
from gato.tokenizers.image import ImageTokenizer, patch_intervals
from gato.tokenizers.text import TextTokenizer
from gato.tokenizers.vocab import Vocab


class Kind(IntEnum):
    """What a position of a row holds."""

    PAD = 0
    TEXT = 1  # SentencePiece ids: caption, dialogue, or a text observation
    IMAGE = 2  # an image patch (id == vocab.patch; pixels in TokenBatch.patches)
    OBS_VALUE = 3  # a discrete or continuous observation value (a bin id)
    SEPARATOR = 4  # the `|` between a timestep's observation and its action
    ACTION = 5  # an action value (a bin id)


@dataclass
class TokenBatch:
    """A batch of token rows, as the model consumes it.

    Attributes:
        tokens: ``(B, T)`` int64 ids of the shared vocabulary.
        kinds: ``(B, T)`` int64 :class:`Kind` of every position.
        obs_pos: ``(B, T)`` int64 local observation position (index of the token inside
            its timestep's observation, 0-based); 0 where the token is no observation.
        loss_mask: ``(B, T)`` bool, true where the token is a training target
            (text targets and action tokens only).
        patches: ``(N, C, p, p)`` float32 pixels of the ``N`` image positions, in the
            order they appear scanning rows then positions; values in ``[-1/sqrt(p), 1/sqrt(p)]``.
        patch_pos: ``(N, 4)`` int64 quantised ``row_lo, row_hi, col_lo, col_hi``
            (``hi`` exclusive) of each patch, from ``gato.tokenizers.image.patch_intervals``.
        tasks: ``B`` task names, for per-task metrics ("captions", "chat", "pong", ...).
    """

    tokens: torch.Tensor
    kinds: torch.Tensor
    obs_pos: torch.Tensor
    loss_mask: torch.Tensor
    patches: torch.Tensor
    patch_pos: torch.Tensor
    tasks: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.tokens.shape)  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(
            tokens=self.tokens.to(device),
            kinds=self.kinds.to(device),
            obs_pos=self.obs_pos.to(device),
            loss_mask=self.loss_mask.to(device),
            patches=self.patches.to(device),
            patch_pos=self.patch_pos.to(device),
            tasks=list(self.tasks),
        )


# ---------------------------------------------------------------------------------------
# Builders: numpy on the way in, one Row per example, torch tensors out (collate).
#
# Choices where DESIGN.md is silent (paper where it speaks):
#
# - Timestep: observation tokens, ``|``, action tokens. Observation keys: text fields,
#   then image fields, then tensor fields (continuous and discrete together), each group
#   in sorted key order. An image contributes its patches in raster order.
# - ``obs_pos`` counts observation tokens inside the timestep from 0 (patches, values and
#   text pieces alike); the separator and the action tokens get 0 ("no observation"), as
#   do caption and dialogue text. A caption's image is the example's observation, so its
#   patches count 0..N-1 like a timestep's image.
# - Grey images (C == 1) are broadcast to ``image_channels`` (default 3) so the model's
#   patch embedding has one input width for Atari frames and RGB captions alike; an image
#   with any other channel count than 1 or ``image_channels`` is an error.
# - Loss (``loss_mask``): action tokens and text tokens (captions, dialogues and text
#   observations: the paper masks in "text or logged action"), never image patches,
#   observation values, the separator or padding. The first token of every example is
#   never a target: nothing of the example precedes it (this holds inside packed rows too).
# - Dialogues: loss on all of their text, user turns included (paper: all text), except
#   the first token. Captions: loss on the caption ids and the closing EOS, the first
#   caption id included (it is predicted from the last patch).
# - Prompting: a demonstration from another episode of the same task, tokenized like any
#   window but with no loss (the prompt conditions; its actions were not taken in the
#   target episode). The prompt gets at most ``prompt_share`` (default 1/2) of the
#   context, the window the rest (whole timesteps each).
# ---------------------------------------------------------------------------------------


@dataclass
class Tokenizers:
    """Every tokenizer a row needs, configured once and shared by training and the policy.

    Args:
        vocab: the shared id layout.
        text: the SentencePiece model (required for captions, dialogues, text observations).
        image: the image tokenizer (patch size, fit policy).
        image_channels: channels every patch has (grey images are broadcast to it).
        patch_resolution: intervals of the patch position encoding (paper: 128).
    """

    vocab: Vocab
    text: TextTokenizer | None = None
    image: ImageTokenizer = field(default_factory=ImageTokenizer)
    image_channels: int = 3
    patch_resolution: int = 128
    discrete: DiscreteTokenizer = field(init=False, repr=False)
    continuous: ContinuousTokenizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.text is not None and self.text.vocab_size > self.vocab.text_size:
            raise ValueError(
                f"the text model has {self.text.vocab_size} pieces but the vocabulary "
                f"reserves only {self.vocab.text_size} text ids"
            )
        if self.image_channels < 1:
            raise ValueError(f"image_channels must be >= 1, got {self.image_channels}")
        self.discrete = DiscreteTokenizer(self.vocab)
        self.continuous = ContinuousTokenizer(self.vocab)

    def text_model(self) -> TextTokenizer:
        if self.text is None:
            raise ValueError("this example has text but no SentencePiece model was given")
        return self.text

    def empty_patches(self) -> np.ndarray:
        p = self.image.patch_size
        return np.zeros((0, self.image_channels, p, p), np.float32)


@dataclass
class Row:
    """One example (or a packed run of examples) as numpy arrays, before batching.

    Attributes:
        tokens, kinds, obs_pos: ``(L,)`` int64, as in :class:`TokenBatch`.
        loss_mask: ``(L,)`` bool, true on targets.
        patches: ``(N, C, p, p)`` float32, one per ``Kind.IMAGE`` position, in order.
        patch_pos: ``(N, 4)`` int64 ``row_lo, row_hi, col_lo, col_hi``.
        task: task name for metrics.
    """

    tokens: np.ndarray
    kinds: np.ndarray
    obs_pos: np.ndarray
    loss_mask: np.ndarray
    patches: np.ndarray
    patch_pos: np.ndarray
    task: str = ""

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if not (len(self.kinds) == len(self.obs_pos) == len(self.loss_mask) == n):
            raise ValueError("Row arrays must all have the same length")
        n_img = int(np.count_nonzero(self.kinds == Kind.IMAGE))
        if not (self.patches.shape[0] == self.patch_pos.shape[0] == n_img):
            raise ValueError(
                f"Row has {n_img} image positions but {self.patches.shape[0]} patches "
                f"and {self.patch_pos.shape[0]} patch positions"
            )

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def concat(cls, rows: Sequence[Row], task: str | None = None, empty_patches=None) -> Row:
        """Rows end to end (patches concatenated in the same order)."""
        if not rows:
            if empty_patches is None:
                raise ValueError("cannot concatenate zero rows without a patch shape")
            return _empty_row(empty_patches, task or "")
        shapes = {r.patches.shape[1:] for r in rows}
        if len(shapes) > 1:
            raise ValueError(f"rows have different patch shapes {sorted(shapes)}")
        return cls(
            tokens=np.concatenate([r.tokens for r in rows]),
            kinds=np.concatenate([r.kinds for r in rows]),
            obs_pos=np.concatenate([r.obs_pos for r in rows]),
            loss_mask=np.concatenate([r.loss_mask for r in rows]),
            patches=np.concatenate([r.patches for r in rows]),
            patch_pos=np.concatenate([r.patch_pos for r in rows]),
            task=rows[0].task if task is None else task,
        )

    def slice(self, start: int, stop: int) -> Row:
        """Positions ``[start, stop)``, with exactly the patches that fall inside."""
        is_img = self.kinds == Kind.IMAGE
        p0 = int(np.count_nonzero(is_img[:start]))
        p1 = p0 + int(np.count_nonzero(is_img[start:stop]))
        return Row(
            tokens=self.tokens[start:stop],
            kinds=self.kinds[start:stop],
            obs_pos=self.obs_pos[start:stop],
            loss_mask=self.loss_mask[start:stop],
            patches=self.patches[p0:p1],
            patch_pos=self.patch_pos[p0:p1],
            task=self.task,
        )

    def without_loss(self) -> Row:
        return Row(
            self.tokens, self.kinds, self.obs_pos, np.zeros_like(self.loss_mask),
            self.patches, self.patch_pos, self.task,
        )  # fmt: skip


def _empty_row(empty_patches: np.ndarray, task: str) -> Row:
    z = np.zeros(0, np.int64)
    return Row(z, z, z, np.zeros(0, bool), empty_patches, np.zeros((0, 4), np.int64), task)


def _plain_row(tok: Tokenizers, ids, kind: Kind, loss: bool, task: str, obs_pos=None) -> Row:
    """A row of non-image tokens of one kind."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = len(ids)
    pos = np.zeros(n, np.int64) if obs_pos is None else np.asarray(obs_pos, np.int64)
    return Row(
        tokens=ids,
        kinds=np.full(n, int(kind), np.int64),
        obs_pos=pos,
        loss_mask=np.full(n, loss, bool),
        patches=tok.empty_patches(),
        patch_pos=np.zeros((0, 4), np.int64),
        task=task,
    )


def image_row(tok: Tokenizers, image: np.ndarray, task: str, first_obs_pos: int = 0) -> Row:
    """An image -> its patches in raster order (``Kind.IMAGE``, no loss).

    ``image`` is ``(H, W)`` or ``(H, W, C)``, uint8 or float in [0, 1]; ``obs_pos`` counts
    up from ``first_obs_pos``.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    patches = tok.image.encode(image)  # (N, c, p, p)
    c = patches.shape[1]
    if c != tok.image_channels:
        if c != 1:
            raise ValueError(f"image has {c} channels; expected 1 (grey) or {tok.image_channels}")
        patches = np.repeat(patches, tok.image_channels, axis=1)  # grey -> (N, C, p, p)
    rows, cols = tok.image.grid(image.shape[0], image.shape[1])
    pos = np.stack(patch_intervals(rows, cols, tok.patch_resolution), axis=1)  # (N, 4)
    n = patches.shape[0]
    return Row(
        tokens=np.full(n, tok.vocab.patch, np.int64),
        kinds=np.full(n, int(Kind.IMAGE), np.int64),
        obs_pos=np.arange(first_obs_pos, first_obs_pos + n, dtype=np.int64),
        loss_mask=np.zeros(n, bool),
        patches=np.ascontiguousarray(patches, dtype=np.float32),
        patch_pos=pos.astype(np.int64),
        task=task,
    )


# -- timesteps ------------------------------------------------------------------------------
_GROUP = {ObsKind.TEXT: 0, ObsKind.IMAGE: 1, ObsKind.CONTINUOUS: 2, ObsKind.DISCRETE: 2}


def observation_keys(spec: TaskSpec) -> list[str]:
    """Observation keys in token order: text, then images, then tensors; sorted in a group."""
    return sorted(spec.observation, key=lambda k: (_GROUP[spec.observation[k].kind], k))


def observation_row(tok: Tokenizers, spec: TaskSpec, obs: Mapping[str, object]) -> Row:
    """ONE timestep's observation dict -> observation tokens then the separator.

    This is the path both training (through :func:`episode_row`) and the policy at act
    time take. ``obs`` must hold exactly the task's observation keys, each shaped like its
    :class:`ObsField` (text: a ``str``).
    """
    if set(obs) != set(spec.observation):
        raise ValueError(
            f"task {spec.name!r} observes keys {sorted(spec.observation)}, got {sorted(obs)}"
        )
    parts: list[Row] = []
    n_obs = 0
    for key in observation_keys(spec):
        part = _field_row(tok, spec, key, spec.observation[key], obs[key], n_obs)
        parts.append(part)
        n_obs += len(part)
    parts.append(_plain_row(tok, [tok.vocab.separator], Kind.SEPARATOR, False, spec.name))
    return Row.concat(parts, task=spec.name)


def _field_row(
    tok: Tokenizers, spec: TaskSpec, key: str, f: ObsField, value: object, first: int
) -> Row:
    where = f"observation {key!r} of task {spec.name!r}"
    if f.kind is ObsKind.TEXT:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a str, got {type(value).__name__}")
        ids = tok.text_model().encode(value)
        pos = np.arange(first, first + len(ids))
        return _plain_row(tok, ids, Kind.TEXT, True, spec.name, obs_pos=pos)
    arr = np.asarray(value)
    if arr.shape != tuple(f.shape):
        raise ValueError(f"{where} has shape {arr.shape}, expected {tuple(f.shape)}")
    if f.kind is ObsKind.IMAGE:
        return image_row(tok, arr, spec.name, first_obs_pos=first)
    try:
        if f.kind is ObsKind.CONTINUOUS:
            ids = tok.continuous.encode(arr.reshape(-1))
        else:
            ids = tok.discrete.encode(arr.reshape(-1))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    pos = np.arange(first, first + ids.size)
    return _plain_row(tok, ids, Kind.OBS_VALUE, False, spec.name, obs_pos=pos)


def action_ids(tok: Tokenizers, action: ActionSpec, value: object) -> np.ndarray:
    """An env action -> ``(dims,)`` int64 action token ids."""
    if action.is_discrete:
        a = np.asarray(value)
        if a.shape not in ((), (1,)):
            raise ValueError(f"a discrete action is one integer, got shape {a.shape}")
        ids = tok.discrete.encode(a.reshape(1))
        if not 0 <= int(ids[0]) - tok.vocab.bin_offset < action.n:
            raise ValueError(f"discrete action {a.item()} is outside [0, {action.n})")
        return ids
    a = np.asarray(value, dtype=np.float64)
    if a.shape != (action.dims,):
        raise ValueError(f"a continuous action has shape ({action.dims},), got {a.shape}")
    return tok.continuous.encode_bounded(a, action.low, action.high)


def action_row(tok: Tokenizers, spec: TaskSpec, value: object) -> Row:
    """An env action -> action tokens (``Kind.ACTION``, all targets)."""
    return _plain_row(tok, action_ids(tok, spec.action, value), Kind.ACTION, True, spec.name)


def decode_action(tok: Tokenizers, action: ActionSpec, ids: object) -> int | np.ndarray:
    """``(dims,)`` action token ids -> an env action: ``int`` (discrete) or float32 ``(A,)``.

    Continuous bins decode to their centres, which always lie inside ``[low, high]``.
    """
    arr = np.asarray(ids)
    if arr.shape != (action.dims,):
        raise ValueError(f"expected {action.dims} action token(s), got shape {arr.shape}")
    if action.is_discrete:
        a = int(tok.discrete.decode(arr)[0])
        if a >= action.n:
            raise ValueError(f"token {int(arr[0])} decodes to action {a}, outside [0, {action.n})")
        return a
    return tok.continuous.decode_bounded(arr, action.low, action.high)


def legal_action_ids(vocab: Vocab, action: ActionSpec) -> list[np.ndarray]:
    """Legal token ids of each action dimension: ``[bin_offset, +n)`` or all bins."""
    n = action.n if action.is_discrete else vocab.bins
    ids = np.arange(vocab.bin_offset, vocab.bin_offset + n, dtype=np.int64)
    return [ids] * action.dims


def observation_length(tok: Tokenizers, spec: TaskSpec) -> int:
    """Observation tokens per timestep, not counting text fields (their length varies)."""
    n = 0
    for f in spec.observation.values():
        if f.kind is ObsKind.IMAGE:
            rows, cols = tok.image.grid(f.shape[0], f.shape[1])
            n += rows * cols
        elif f.kind is not ObsKind.TEXT:
            n += math.prod(f.shape)
    return n


def timestep_lengths(tok: Tokenizers, spec: TaskSpec, episode: Episode) -> np.ndarray:
    """``(T,)`` int64 tokens of each timestep: observation, separator, action.

    Constant for a task without text observations; text fields add their piece count.
    """
    t = len(episode)
    lengths = np.full(t, observation_length(tok, spec) + 1 + spec.action.dims, np.int64)
    for key, f in spec.observation.items():
        if f.kind is ObsKind.TEXT:
            text = tok.text_model()
            lengths += np.array([len(text.encode(s)) for s in episode.observations[key]], np.int64)
    return lengths


def episode_row(
    tok: Tokenizers,
    spec: TaskSpec,
    episode: Episode,
    start: int = 0,
    stop: int | None = None,
    loss: bool = True,
) -> Row:
    """Timesteps ``[start, stop)`` of an episode -> ``obs | action`` per timestep.

    ``start == stop`` (e.g. a zero-length episode) gives an empty row. ``loss=False``
    clears the targets (a prompt).
    """
    t = len(episode)
    stop = t if stop is None else stop
    if not 0 <= start <= stop <= t:
        raise ValueError(f"timesteps [{start}, {stop}) are outside the episode's [0, {t})")
    if episode.task != spec.name:
        raise ValueError(f"episode of task {episode.task!r} tokenized with spec {spec.name!r}")
    missing = set(spec.observation) - set(episode.observations)
    if missing:
        raise ValueError(f"episode lacks observation key(s) {sorted(missing)}")
    parts: list[Row] = []
    for i in range(start, stop):
        obs = {k: episode.observations[k][i] for k in spec.observation}
        parts += [observation_row(tok, spec, obs), action_row(tok, spec, episode.actions[i])]
    row = Row.concat(parts, task=spec.name, empty_patches=tok.empty_patches())
    return row if loss else row.without_loss()


# -- windows --------------------------------------------------------------------------------
def _fit_end(lengths: np.ndarray, start: int, budget: int) -> int:
    """The largest ``stop`` such that timesteps ``[start, stop)`` fit in ``budget`` tokens."""
    cum = np.concatenate([[0], np.cumsum(lengths[start:])])  # cum[k]: tokens of k steps
    return start + int(np.searchsorted(cum, budget, side="right")) - 1


def _last_start(lengths: np.ndarray, budget: int) -> int:
    """The smallest start whose whole suffix fits in ``budget`` (the window at the end)."""
    suffix = np.cumsum(lengths[::-1])[::-1]  # suffix[s]: tokens of [s, T)
    fits = np.nonzero(suffix <= budget)[0]
    return int(fits[0]) if len(fits) else len(lengths)


def episode_windows(lengths: np.ndarray, context: int) -> list[tuple[int, int]]:
    """Cut an episode into consecutive windows ``[start, stop)`` of whole timesteps.

    ``lengths`` is :func:`timestep_lengths`; every window holds at most ``context``
    tokens. A zero-length episode has no windows; a timestep longer than the context
    is an error.
    """
    _check_steps_fit(lengths, context)
    spans, start = [], 0
    while start < len(lengths):
        stop = _fit_end(lengths, start, context)
        spans.append((start, stop))
        start = stop
    return spans


def window_at(lengths: np.ndarray, start: int, context: int) -> tuple[int, int]:
    """The window starting at timestep ``start``: as many whole timesteps as fit."""
    _check_steps_fit(lengths, context)
    if not 0 <= start < len(lengths):
        raise ValueError(f"start {start} is outside the episode's [0, {len(lengths)})")
    return start, _fit_end(lengths, start, context)


def _check_steps_fit(lengths: np.ndarray, context: int) -> None:
    if len(lengths) and int(lengths.max()) > context:
        raise ValueError(
            f"a timestep has {int(lengths.max())} tokens, more than the context {context}"
        )


@dataclass(frozen=True)
class Span:
    """Timesteps ``[start, stop)`` of ``episodes[episode]``."""

    episode: int
    start: int
    stop: int


@dataclass(frozen=True)
class WindowDraw:
    """Which timesteps a training sequence is made of: an optional prompt, then a window.

    ``prompt_from_end`` says how the prompt was placed (the demonstration's end, or a
    uniform position); None without a prompt.
    """

    window: Span
    prompt: Span | None = None
    prompt_from_end: bool | None = None


def draw_window(
    lengths: Sequence[np.ndarray],
    tasks: Sequence[str],
    index: int,
    rng: np.random.Generator,
    context: int,
    prompt_fraction: float = 0.25,
    prompt_share: float = 0.5,
) -> WindowDraw:
    """Choose a training window of episode ``index``, prompted with probability ``prompt_fraction``.

    Args:
        lengths: :func:`timestep_lengths` of every episode in the pool.
        tasks: task of every episode; a prompt comes from another episode of the same task.
        rng: the only source of randomness (same generator state -> same draw).
        context: total token budget of prompt + window.
        prompt_fraction: probability of a prompt (paper: 0.25). Without another episode of
            the task that has a timestep fitting the prompt budget, there is no prompt.
        prompt_share: the prompt's share of the context (whole timesteps); the window gets
            the rest of the context, i.e. what the prompt left over.

    The prompt is taken from the demonstration's end with probability 1/2, otherwise from a
    uniform start (among starts whose window is full). The window's start is uniform among
    starts whose window is full (or 0 when the episode fits whole).
    """
    if not 0.0 <= prompt_fraction <= 1.0 or not 0.0 < prompt_share < 1.0:
        raise ValueError("need 0 <= prompt_fraction <= 1 and 0 < prompt_share < 1")
    own = np.asarray(lengths[index])
    if len(own) == 0:
        raise ValueError(f"episode {index} has no timesteps")
    _check_steps_fit(own, context)
    p_budget = int(context * prompt_share)
    # Drawn every time, so that one generator state always gives the same sequence of draws.
    want_prompt = rng.random() < prompt_fraction
    pool = [
        j
        for j, lj in enumerate(lengths)
        if j != index and tasks[j] == tasks[index] and len(lj) and int(np.max(lj)) <= p_budget
    ]
    if not (want_prompt and pool and int(own.max()) <= context - p_budget):
        return WindowDraw(window=_draw_span(index, own, context, rng, from_end=False))
    j = pool[int(rng.integers(len(pool)))]
    lj = np.asarray(lengths[j])
    from_end = bool(rng.random() < 0.5)
    prompt = _draw_span(j, lj, p_budget, rng, from_end)
    used = int(lj[prompt.start : prompt.stop].sum())
    window = _draw_span(index, own, context - used, rng, from_end=False)
    return WindowDraw(window=window, prompt=prompt, prompt_from_end=from_end)


def _draw_span(
    episode: int, lengths: np.ndarray, budget: int, rng: np.random.Generator, from_end: bool
) -> Span:
    """A full window of whole timesteps: the episode's end, or a uniform start.

    Every timestep must fit ``budget``; starts range over ``[0, last]`` where ``last`` is
    the start of the window that ends with the episode, so no window runs short.
    """
    last = _last_start(lengths, budget)
    start = last if from_end else int(rng.integers(last + 1))
    return Span(episode, start, _fit_end(lengths, start, budget))


def draw_row(
    tok: Tokenizers, specs: Mapping[str, TaskSpec], episodes: Sequence[Episode], draw: WindowDraw
) -> Row:
    """Tokenize a :class:`WindowDraw`: the prompt (no loss), then the window."""
    w = draw.window
    ep = episodes[w.episode]
    row = episode_row(tok, specs[ep.task], ep, w.start, w.stop)
    if draw.prompt is None:
        return row
    p = draw.prompt
    prompt = episode_row(tok, specs[ep.task], episodes[p.episode], p.start, p.stop, loss=False)
    return Row.concat([prompt, row], task=ep.task)


def demonstration_prompt(
    tok: Tokenizers, spec: TaskSpec, demo: Episode, budget: int, from_end: bool = True
) -> Row:
    """A prompt for evaluation: the demonstration's last timesteps fitting ``budget`` (no loss)."""
    lengths = timestep_lengths(tok, spec, demo)
    if len(lengths) == 0:
        raise ValueError("the demonstration episode has no timesteps")
    start = _last_start(lengths, budget) if from_end else 0
    return episode_row(tok, spec, demo, start, _fit_end(lengths, start, budget), loss=False)


# -- captions and dialogues -----------------------------------------------------------------
def caption_row(
    tok: Tokenizers,
    image: np.ndarray,
    caption: str,
    task: str = "captions",
    context: int | None = None,
) -> Row:
    """Image patches, then the caption's ids and EOS (all of them targets).

    With ``context``, the caption is cut to fit (the image never is: an image with as many
    patches as the context is an error).
    """
    text = tok.text_model()
    img = image_row(tok, image, task)
    ids = text.encode(caption) + [text.eos_id]
    if context is not None:
        room = context - len(img)
        if room < 1:
            raise ValueError(f"an image of {len(img)} patches leaves no room in context {context}")
        ids = ids[:room]
    return Row.concat([img, _plain_row(tok, ids, Kind.TEXT, True, task)], task=task)


def dialogue_row(
    tok: Tokenizers,
    messages: Sequence[Mapping[str, str]],
    task: str = "chat",
    context: int | None = None,
) -> Row:
    """A dialogue in the one chat format (:func:`encode_dialogue`), cut to ``context``.

    Every token is a target except the first (nothing precedes it).
    """
    ids = encode_dialogue(messages, tok.text_model())
    if context is not None:
        ids = ids[:context]
    row = _plain_row(tok, ids, Kind.TEXT, True, task)
    row.loss_mask[:1] = False
    return row


# -- batches --------------------------------------------------------------------------------
def pack(rows: Sequence[Row], context: int) -> list[Row]:
    """Concatenate consecutive rows (in order) while they fit in ``context`` tokens.

    Packed examples share one causal row: a later example can attend to the earlier
    ones (as in the paper, which does not mask across examples); each example's first
    token is no target, so no loss is taken on predicting one example from another.
    The row's task is the tasks joined with "+" when they differ.
    """
    out: list[Row] = []
    run: list[Row] = []
    used = 0
    for r in rows:
        if len(r) > context:
            raise ValueError(f"a row of {len(r)} tokens does not fit the context {context}")
        if run and used + len(r) > context:
            out.append(_join(run))
            run, used = [], 0
        run.append(r)
        used += len(r)
    if run:
        out.append(_join(run))
    return out


def _join(run: list[Row]) -> Row:
    names = list(dict.fromkeys(r.task for r in run))
    return Row.concat(run, task="+".join(names))


def collate(
    rows: Sequence[Row], vocab: Vocab, context: int | None = None, pack_rows: bool = False
) -> TokenBatch:
    """Rows -> a right-padded :class:`TokenBatch`.

    Args:
        rows: the examples; with ``pack_rows`` they are first packed (:func:`pack`).
        vocab: for the pad id.
        context: pad every row to this length (and reject longer rows); None pads to the
            longest row. Required with ``pack_rows``.
        pack_rows: fill rows to ``context`` with several examples each.
    """
    if not rows:
        raise ValueError("cannot collate an empty list of rows")
    if pack_rows:
        if context is None:
            raise ValueError("packing needs a context length")
        rows = pack(rows, context)
    longest = max(len(r) for r in rows)
    width = longest if context is None else context
    if longest > width:
        raise ValueError(f"a row of {longest} tokens is longer than the context {width}")
    b = len(rows)
    tokens = np.full((b, width), vocab.pad, np.int64)
    kinds = np.full((b, width), int(Kind.PAD), np.int64)
    obs_pos = np.zeros((b, width), np.int64)
    loss = np.zeros((b, width), bool)
    for i, r in enumerate(rows):
        n = len(r)
        tokens[i, :n], kinds[i, :n], obs_pos[i, :n], loss[i, :n] = (
            r.tokens, r.kinds, r.obs_pos, r.loss_mask,
        )  # fmt: skip
    loss[:, 0] = False  # position 0 is never a target (nothing predicts it)
    shapes = {r.patches.shape[1:] for r in rows}
    if len(shapes) > 1:
        raise ValueError(f"rows have different patch shapes {sorted(shapes)}")
    return TokenBatch(
        tokens=torch.from_numpy(tokens),
        kinds=torch.from_numpy(kinds),
        obs_pos=torch.from_numpy(obs_pos),
        loss_mask=torch.from_numpy(loss),
        patches=torch.from_numpy(np.concatenate([r.patches for r in rows]).astype(np.float32)),
        patch_pos=torch.from_numpy(np.concatenate([r.patch_pos for r in rows]).astype(np.int64)),
        tasks=[r.task for r in rows],
    )


def sample_row(
    tok: Tokenizers,
    specs: Mapping[str, TaskSpec],
    episodes: Sequence[Episode],
    index: int,
    rng: np.random.Generator,
    context: int,
    prompt_fraction: float = 0.25,
    prompt_share: float = 0.5,
) -> Row:
    """:func:`draw_window` then :func:`draw_row`, for a pool of episodes (lengths recomputed)."""
    lengths = [timestep_lengths(tok, specs[e.task], e) for e in episodes]
    draw = draw_window(
        lengths, [e.task for e in episodes], index, rng, context, prompt_fraction, prompt_share
    )
    return draw_row(tok, specs, episodes, draw)
