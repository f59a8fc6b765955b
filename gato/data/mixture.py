"""Training batches from a weighted mixture of episodes, captions and dialogues.

Every row is a pure function of ``(seed, split, step, row index)``: a numpy
Generator seeded with those numbers picks the source (by weight) and everything
the source draws (episode, window start, prompt, images, dialogues). Hence:

- the data position of a run is its step number: resuming needs no sampler state;
- a global batch is the same rows however it is split: rank ``r`` of ``W``, micro-batch
  ``m`` of ``A`` reads rows ``[(r*A + m)*B, (r*A + m + 1)*B)`` of the step;
- background workers can build any batch in any order and the result is identical.

Rows are filled to the context: a source keeps appending examples (episode windows,
each maybe prompted; caption examples; dialogues) while the next one fits, then the
row is padded. Examples in one row share a causal stream, each example's first token
is no target (``gato.sequence.pack``'s convention).

Held-out split: the last ``heldout_fraction`` of each source's items (episodes,
images, dialogues; at least one when the source has two or more) never appear in
training rows; held-out batches draw from them with their own seeds. A source with a
single item cannot be split and is evaluated on that item (its held-out loss is then a
training loss; ``Mixture.shared_heldout`` names such sources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import torch

from gato.config import MixtureEntry, RunConfig, SourceKind
from gato.data.captions import load_caption_set
from gato.data.dialogues import read_chat_jsonl
from gato.envs.spec import Episode, TaskSpec
from gato.sequence import (
    Row,
    TokenBatch,
    Tokenizers,
    caption_row,
    collate,
    dialogue_row,
    draw_row,
    draw_window,
    timestep_lengths,
)
from gato.tokenizers.image import ImageTokenizer
from gato.tokenizers.text import TextTokenizer

MAX_EXAMPLES_PER_ROW = 512  # bound on the fill loop (tiny examples in a long context)


class Split(IntEnum):
    TRAIN = 0
    HELDOUT = 1


def split_items(n: int, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, heldout)`` of ``n`` items: held-out = the last ones."""
    if n < 2 or heldout_fraction <= 0:
        every = np.arange(n)
        return every, every
    k = min(n - 1, max(1, int(round(n * heldout_fraction))))
    return np.arange(n - k), np.arange(n - k, n)


class Source:
    """One mixture entry: draws filled rows of its task."""

    task: str
    items: dict[Split, np.ndarray]

    def example(self, split: Split, rng: np.random.Generator, budget: int) -> Row | None:
        """One example fitting ``budget`` tokens, or None if none fits."""
        raise NotImplementedError

    def row(self, split: Split, rng: np.random.Generator, context: int) -> Row:
        """Examples appended while they fit ``context`` (at least one)."""
        parts: list[Row] = []
        used = 0
        while len(parts) < MAX_EXAMPLES_PER_ROW:
            ex = self.example(split, rng, context - used)
            if ex is None or len(ex) > context - used or len(ex) == 0:
                break
            parts.append(ex)
            used += len(ex)
        if not parts:
            raise ValueError(f"{self.task}: no example fits a context of {context} tokens")
        row = Row.concat(parts, task=self.task)
        for_first = row.loss_mask.copy()
        for_first[0] = False  # nothing precedes the row's first token
        row.loss_mask = for_first
        return row


class EpisodeSource(Source):
    """Windows of recorded episodes of one task, prompted per ``prompt_fraction``."""

    def __init__(
        self,
        tok: Tokenizers,
        spec: TaskSpec,
        episodes: list[Episode],
        task: str,
        prompt_fraction: float,
        heldout_fraction: float,
    ) -> None:
        episodes = [e for e in episodes if len(e) > 0]
        if not episodes:
            raise ValueError(f"{task}: the episode store holds no non-empty episodes")
        self.tok, self.spec, self.task = tok, spec, task
        self.prompt_fraction = prompt_fraction
        train, held = split_items(len(episodes), heldout_fraction)
        self.pools = {
            Split.TRAIN: [episodes[i] for i in train],
            Split.HELDOUT: [episodes[i] for i in held],
        }
        self.lengths = {
            s: [timestep_lengths(tok, spec, e) for e in pool] for s, pool in self.pools.items()
        }
        self.items = {Split.TRAIN: train, Split.HELDOUT: held}
        self.shortest_step = min(int(x.min()) for x in self.lengths[Split.TRAIN])

    def example(self, split: Split, rng: np.random.Generator, budget: int) -> Row | None:
        pool, lengths = self.pools[split], self.lengths[split]
        i = int(rng.integers(len(pool)))
        if int(lengths[i].max()) > budget:
            return None
        tasks = [self.spec.name] * len(pool)
        draw = draw_window(lengths, tasks, i, rng, budget, self.prompt_fraction)
        return draw_row(self.tok, {self.spec.name: self.spec}, pool, draw)


class CaptionSource(Source):
    """Image, then caption (``gato.sequence.caption_row``), from a caption set ``.npz``."""

    def __init__(self, tok: Tokenizers, path: Path, task: str, heldout_fraction: float) -> None:
        data = load_caption_set(path)
        if len(data["images"]) == 0:
            raise ValueError(f"{path}: the caption set is empty")
        self.tok, self.task = tok, task
        self.images, self.captions = data["images"], data["captions"]
        train, held = split_items(len(self.images), heldout_fraction)
        self.items = {Split.TRAIN: train, Split.HELDOUT: held}

    def example(self, split: Split, rng: np.random.Generator, budget: int) -> Row | None:
        idx = self.items[split]
        i = int(idx[rng.integers(len(idx))])
        image = self.images[i]
        h, w = self.tok.image.fitted_shape(image.shape[0], image.shape[1])
        patches = (h // self.tok.image.patch_size) * (w // self.tok.image.patch_size)
        if patches + 2 > budget:  # the image and at least one caption id
            return None
        return caption_row(self.tok, image, str(self.captions[i]), self.task, context=budget)


class DialogueSource(Source):
    """Dialogues of a chat JSONL file in the one chat format (cut to the context)."""

    def __init__(self, tok: Tokenizers, path: Path, task: str, heldout_fraction: float) -> None:
        self.dialogues = read_chat_jsonl(path)
        if not self.dialogues:
            raise ValueError(f"{path}: no dialogues")
        self.tok, self.task = tok, task
        train, held = split_items(len(self.dialogues), heldout_fraction)
        self.items = {Split.TRAIN: train, Split.HELDOUT: held}

    def example(self, split: Split, rng: np.random.Generator, budget: int) -> Row | None:
        if budget < 2:
            return None
        idx = self.items[split]
        i = int(idx[rng.integers(len(idx))])
        return dialogue_row(self.tok, self.dialogues[i], self.task, context=budget)


def read_episodes(path: Path) -> list[Episode]:
    """Every episode of an episode store directory (``gato data collect``)."""
    from gato.data.store import EpisodeStore

    return list(EpisodeStore(path))


@dataclass(frozen=True)
class _SourceInfo:
    task: str
    weight: float


class Mixture:
    """The run's sources and the batches drawn from them (see the module docstring).

    Args:
        cfg: the run config (mixture, context, seed, prompting, held-out share).
        text: the SentencePiece model (captions, dialogues, text observations).
        specs: task name -> spec for episode sources; default: ``gato.envs.registry``.
    """

    def __init__(
        self,
        cfg: RunConfig,
        text: TextTokenizer | None,
        specs: Callable[[str], TaskSpec] | None = None,
    ) -> None:
        m = cfg.model
        self.vocab = m.vocab
        self.tok = Tokenizers(
            vocab=m.vocab,
            text=text,
            image=ImageTokenizer(patch_size=m.patch_size),
            image_channels=m.image_channels,
            patch_resolution=m.patch_resolution,
        )
        self.context = cfg.context
        self.seed = cfg.train.seed
        self.batch_size = cfg.train.batch_size
        self.sources = [self._open(e, cfg, specs, i) for i, e in enumerate(cfg.data.mixture)]
        w = np.array([e.weight for e in cfg.data.mixture], np.float64)
        self.weights = w / w.sum()
        self.tasks = list(dict.fromkeys(s.task for s in self.sources))
        # task -> action space of every episode source's rows (action dropout draws from it)
        self.actions = {
            s.spec.name: s.spec.action for s in self.sources if isinstance(s, EpisodeSource)
        }
        # (H, W) of the first caption set's images: what `gato caption` resizes user images to
        self.image_size = next(
            (tuple(s.images.shape[1:3]) for s in self.sources if isinstance(s, CaptionSource)),
            None,
        )
        self.shared_heldout = [
            s.task
            for s in self.sources
            if np.array_equal(s.items[Split.TRAIN], s.items[Split.HELDOUT])
        ]

    def _open(self, entry: MixtureEntry, cfg: RunConfig, specs, i: int) -> Source:
        path = cfg.data.resolve(entry.path)
        where = f"data.mixture[{i}] ({path})"
        hf = cfg.data.heldout_fraction
        try:
            if entry.kind == SourceKind.CAPTIONS:
                return CaptionSource(self.tok, path, entry.task_name, hf)
            if entry.kind == SourceKind.DIALOGUES:
                return DialogueSource(self.tok, path, entry.task_name, hf)
            episodes = read_episodes(path)
            if not episodes:
                raise ValueError("the episode store is empty")
            names = sorted({e.task for e in episodes})
            if len(names) != 1:
                raise ValueError(f"one task per episode entry, found {names}")
            if specs is None:
                from gato.envs.registry import spec as specs
            return EpisodeSource(
                self.tok,
                specs(names[0]),
                episodes,
                entry.task or names[0],
                cfg.data.prompt_fraction,
                hf,
            )
        except (ValueError, FileNotFoundError) as exc:
            raise type(exc)(f"{where}: {exc}") from None

    # -- rows and batches --

    def train_row(self, step: int, row: int) -> Row:
        """Row ``row`` of the global batch of optimiser step ``step``."""
        rng = np.random.default_rng([self.seed, int(Split.TRAIN), step, row])
        k = int(rng.choice(len(self.sources), p=self.weights))
        return self.sources[k].row(Split.TRAIN, rng, self.context)

    def train_batch(self, step: int, first_row: int, rows: int) -> TokenBatch:
        """Rows ``[first_row, first_row + rows)`` of step ``step``, padded to the context."""
        out = [self.train_row(step, first_row + i) for i in range(rows)]
        return collate(out, self.vocab, context=self.context)

    def heldout_batch(self, source: int, index: int) -> TokenBatch:
        """Held-out batch ``index`` of task ``self.tasks[source]``.

        Each row comes from one of the task's sources, drawn by the mixture's weights (a
        task with several sources - chat's scene and WordNet dialogues, Pendulum's
        demonstrations and explore stores - is measured on all of them, as it trains).
        """
        task = self.tasks[source]
        ks = [i for i, s in enumerate(self.sources) if s.task == task]
        p = self.weights[ks] / self.weights[ks].sum()
        rows = []
        for r in range(self.batch_size):
            rng = np.random.default_rng([self.seed, int(Split.HELDOUT), ks[0], index, r])
            # one source: no draw, so its rows (and logged curves) stay as they always were
            k = ks[int(rng.choice(len(ks), p=p))] if len(ks) > 1 else ks[0]
            rows.append(self.sources[k].row(Split.HELDOUT, rng, self.context))
        return collate(rows, self.vocab, context=self.context)


# -- background loading ------------------------------------------------------------------


class MicroBatches(torch.utils.data.Dataset):
    """Item ``i`` = micro-batch ``i % accum`` of step ``i // accum`` for one rank."""

    def __init__(self, mixture: Mixture, accum: int, rank: int, world: int) -> None:
        self.mixture, self.accum, self.rank, self.world = mixture, accum, rank, world

    def __len__(self) -> int:  # indices are steps * accum; the sampler bounds them
        return 2**62

    def __getitem__(self, i: int) -> TokenBatch:
        step, micro = divmod(int(i), self.accum)
        b = self.mixture.batch_size
        first = (self.rank * self.accum + micro) * b
        return self.mixture.train_batch(step, first, b)


def _worker_init(_: int) -> None:
    # Ctrl-C reaches the whole process group, and `pkill -f "gato train"` matches the
    # workers' command line too; the trainer handles both (finishes the step, saves).
    # Workers ignore them so they are not torn down under the trainer's feet: the
    # trainer's shutdown stops them, and they exit by themselves if it dies.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)


def micro_batch_loader(
    mixture: Mixture, start_step: int, end_step: int, accum: int, rank: int, world: int,
    workers: int,
) -> torch.utils.data.DataLoader:  # fmt: skip
    """Micro-batches of steps ``[start_step, end_step)``, built by ``workers`` processes.

    Batches arrive in order; with workers, up to ``4 * workers`` are prepared ahead.
    """
    indices = range(start_step * accum, end_step * accum)
    return torch.utils.data.DataLoader(
        MicroBatches(mixture, accum, rank, world),
        batch_size=None,
        sampler=indices,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        worker_init_fn=_worker_init if workers else None,
        collate_fn=_identity,
    )


def _identity(x):
    return x
