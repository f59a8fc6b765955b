"""Vision-language metrics of a checkpoint: captions, zero-shot labels, chat perplexity.

- **Captions** on procedural scenes (``gato.data.scenes``), greedy decoding:
  exact match (the caption parses to exactly the true scene), token F1 (bag-of-words
  F1 between predicted and true caption, averaged over images; SQuAD-style) and object
  recall. Split ``test``: held-out seeds of the training distribution; split
  ``heldout``: every scene holds a colour-shape pair never seen in training.
- **Zero-shot classification** on Fashion-MNIST's test split: the label whose caption
  ("a photo of a sneaker", the training template) is most likely given the image
  (:func:`gato.generate.rank_labels`); chance is 1 / 10.
- **Chat perplexity**: ``exp`` of the mean next-token cross-entropy over the targets of
  held-out dialogues (the same targets training has: every token but the first); over
  all of them (row ``chat``) and, with two or more dialogue sources, per source (rows
  ``chat/<file stem>``: templated scene dialogues and WordNet definitions differ by 30x).

:func:`vl_rows` gathers them as :class:`VLRow` for ``gato eval-vl`` (and for
``gato eval --task all`` to append next to the control tasks).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gato.data import scenes
from gato.data.captions import FASHION_CLASSES, fashion_caption
from gato.generate import GenerationConfig, caption_images, caption_prompt, score_continuations
from gato.loss import predicting, sequence_loss
from gato.model import Gato
from gato.sequence import Tokenizers, collate, dialogue_row


@dataclass(frozen=True)
class CaptionScore:
    split: str
    n: int
    exact: float
    token_f1: float
    object_recall: float


@dataclass(frozen=True)
class ZeroShotScore:
    n: int
    accuracy: float
    chance: float


@dataclass(frozen=True)
class PerplexityScore:
    dialogues: int
    tokens: int
    nll: float  # mean nats per target token

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)

    @staticmethod
    def pooled(scores: Sequence[PerplexityScore]) -> PerplexityScore:
        """The score of all the scores' dialogues together (token-weighted mean NLL)."""
        tokens = sum(s.tokens for s in scores)
        nll = sum(s.nll * s.tokens for s in scores) / tokens
        return PerplexityScore(sum(s.dialogues for s in scores), tokens, nll)


@dataclass(frozen=True)
class VLRow:
    """One line of the evaluation table.

    Attributes:
        task: "captions/test", "captions/heldout", "fashion-mnist", "chat".
        metric: "exact", "token_f1", "object_recall", "zero_shot_accuracy", "perplexity".
        value: the figure (NaN when the row could not be measured; ``note`` says why).
        n: examples measured (images or dialogues).
        chance: the figure of a random guesser, where there is one.
    """

    task: str
    metric: str
    value: float
    n: int
    chance: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def token_f1(prediction: str, truth: str) -> float:
    """Bag-of-words F1 of two captions (lower-cased, whitespace split)."""
    p, t = prediction.lower().split(), truth.lower().split()
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def caption_score(
    predictions: Sequence[str], examples: Sequence[scenes.SceneExample], split: str
) -> CaptionScore:
    acc = scenes.caption_accuracy(predictions, [e.scene for e in examples])
    f1 = float(
        np.mean([token_f1(p, e.caption) for p, e in zip(predictions, examples, strict=True)])
    )
    return CaptionScore(split, len(examples), acc["exact"], f1, acc["object_recall"])


def scene_caption_scores(
    model: Gato,
    tok: Tokenizers,
    split: str,
    n: int,
    image_size: int,
    seed: int = 0,
    max_new_tokens: int = 64,
    batch_size: int = 32,
) -> CaptionScore:
    """Greedy captions of the first ``n`` scenes of ``split`` (``test`` or ``heldout``)."""
    if n < 1:
        raise ValueError(f"need at least one scene, got n={n}")
    examples = [scenes.example(split, i, seed, image_size) for i in range(n)]
    preds = caption_images(
        model, tok, [e.image for e in examples], GenerationConfig(max_new_tokens), None, batch_size
    )
    return caption_score(preds, examples, split)


@torch.no_grad()
def zero_shot_accuracy(
    model: Gato,
    tok: Tokenizers,
    images: np.ndarray,
    labels: np.ndarray,
    captions: Sequence[str] = tuple(fashion_caption(k) for k in range(len(FASHION_CLASSES))),
) -> ZeroShotScore:
    """Share of images whose most likely caption (of ``captions``) is their label's."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError("need equal, non-zero numbers of images and labels")
    hits = 0
    for image, label in zip(images, labels, strict=True):
        scores = score_continuations(model, tok, caption_prompt(tok, image), captions)
        hits += int(int(scores.argmax()) == int(label))
    return ZeroShotScore(len(images), hits / len(images), 1.0 / len(captions))


@torch.no_grad()
def chat_perplexity(
    model: Gato,
    tok: Tokenizers,
    dialogues: Sequence[Sequence[Mapping[str, str]]],
    batch_size: int = 8,
) -> PerplexityScore:
    """Perplexity over held-out dialogues (each cut to the model's context)."""
    if not dialogues:
        raise ValueError("no dialogues to measure")
    model.eval()
    device = model.tok_emb.weight.device
    total, count = 0.0, 0
    for s in range(0, len(dialogues), batch_size):
        rows = [
            dialogue_row(tok, d, context=model.cfg.context) for d in dialogues[s : s + batch_size]
        ]
        batch = collate(rows, tok.vocab).to(device)
        lo = sequence_loss(model(batch, at=predicting(batch)), batch)
        total += float(lo.loss) * lo.tokens
        count += lo.tokens
    if count == 0:
        raise ValueError("the dialogues have no target tokens")
    return PerplexityScore(len(dialogues), count, total / count)


def caption_rows(score: CaptionScore) -> list[VLRow]:
    task = f"captions/{score.split}"
    return [
        VLRow(task, "exact", score.exact, score.n),
        VLRow(task, "token_f1", score.token_f1, score.n),
        VLRow(task, "object_recall", score.object_recall, score.n),
    ]


@dataclass(frozen=True)
class VLEvalConfig:
    """What :func:`vl_rows` measures.

    Attributes:
        scenes: scenes per caption split.
        scene_seed: seed of the scene streams (the training scenes' seed; splits never
            overlap whatever the seed).
        image_size: scene image side (the checkpoint's caption size).
        fashion_dir: Fashion-MNIST folder (None: skip the row).
        fashion: test images measured (the first ones).
        dialogues: held-out dialogues by source name (None or empty: skip the rows).
    """

    scenes: int = 200
    scene_seed: int = 0
    image_size: int = 64
    fashion_dir: Path | None = None
    fashion: int = 1000
    dialogues: Mapping[str, Sequence[Sequence[Mapping[str, str]]]] | None = None
    max_new_tokens: int = 64


def vl_rows(model: Gato, tok: Tokenizers, cfg: VLEvalConfig) -> list[VLRow]:
    """Every vision-language row; a row that cannot be measured has NaN and a note."""
    rows: list[VLRow] = []
    for split in ("test", "heldout"):
        score = scene_caption_scores(
            model, tok, split, cfg.scenes, cfg.image_size, cfg.scene_seed, cfg.max_new_tokens
        )
        rows += caption_rows(score)
    if cfg.fashion_dir is not None and Path(cfg.fashion_dir).is_dir():
        from gato.data.captions import read_fashion_mnist

        images, labels = read_fashion_mnist(cfg.fashion_dir, "test")
        zs = zero_shot_accuracy(model, tok, images[: cfg.fashion], labels[: cfg.fashion])
        rows.append(VLRow("fashion-mnist", "zero_shot_accuracy", zs.accuracy, zs.n, zs.chance))
    else:
        rows.append(
            VLRow("fashion-mnist", "zero_shot_accuracy", math.nan, 0, 0.1,
                  "Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
        )  # fmt: skip
    sources = {name: d for name, d in (cfg.dialogues or {}).items() if d}
    if sources:
        scores = {name: chat_perplexity(model, tok, d) for name, d in sources.items()}
        pp = PerplexityScore.pooled(list(scores.values()))
        rows.append(VLRow("chat", "perplexity", pp.perplexity, pp.dialogues))
        if len(scores) > 1:
            rows += [
                VLRow(f"chat/{name}", "perplexity", s.perplexity, s.dialogues)
                for name, s in scores.items()
            ]
    else:
        rows.append(VLRow("chat", "perplexity", math.nan, 0, None, "no held-out dialogues"))
    return rows


def heldout_dialogues(run) -> dict[str, list]:
    """The held-out dialogues of a run's dialogue sources (the mixture's held-out rule), by
    source: its file's stem (``dialogues/wordnet.jsonl`` -> ``wordnet``).

    ``run`` is a :class:`gato.config.RunConfig`; sources no longer on disk are skipped.
    """
    return _split_dialogues(run, heldout=True)


def training_dialogues(run) -> dict[str, list]:
    """The training split of a run's dialogue sources, by source, as
    :func:`heldout_dialogues` gives the held-out one."""
    return _split_dialogues(run, heldout=False)


def _split_dialogues(run, heldout: bool) -> dict[str, list]:
    from gato.config import SourceKind
    from gato.data.dialogues import read_chat_jsonl
    from gato.data.mixture import split_items

    out: dict[str, list] = {}
    for entry in run.data.mixture:
        path = run.data.resolve(entry.path)
        if entry.kind != SourceKind.DIALOGUES or not path.is_file():
            continue
        dialogues = read_chat_jsonl(path)
        train, held = split_items(len(dialogues), run.data.heldout_fraction)
        chosen = held if heldout else train
        out.setdefault(path.stem, []).extend(dialogues[int(i)] for i in chosen)
    return out


def checkpoint_vl_rows(
    trained,
    scenes_per_split: int = 200,
    fashion: int = 1000,
    fashion_dir: Path | None = None,
    image_size: int | None = None,
    scene_seed: int = 0,
) -> list[VLRow]:
    """:func:`vl_rows` of a loaded checkpoint (``gato.loading.Trained``), for ``gato eval``.

    Scene size: ``image_size`` or the checkpoint's caption size; Fashion-MNIST: the folder
    given or the Debian package's; dialogues: the run's held-out ones.
    """
    from gato.data.sources import FASHION_MNIST
    from gato.generate import checkpoint_image_size

    tok = trained.tokenizers
    if tok.text is None:
        raise ValueError(
            f"{trained.path}: this checkpoint has no text model (trained without text)"
        )
    if image_size is None:
        image_size = checkpoint_image_size(tok, trained.run, trained.path)[0]
    cfg = VLEvalConfig(
        scenes=scenes_per_split,
        scene_seed=scene_seed,
        image_size=image_size,
        fashion_dir=Path(fashion_dir) if fashion_dir else FASHION_MNIST.locate(),
        fashion=fashion,
        dialogues=heldout_dialogues(trained.run) if trained.run is not None else None,
    )
    return vl_rows(trained.model, tok, cfg)
