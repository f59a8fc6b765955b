"""Text generation and scoring with a Gato model: captions, chat replies, zero-shot labels.

- :func:`generate` samples text after a batch of prompts with a KV cache: the prompt is
  run once, then one token per step is appended to the cache. Every step is restricted
  to the text ids the SentencePiece model has (``[0, text.vocab_size)``, inside
  ``[0, T)``): value bins, the separator, the patch placeholder and pad are never
  emitted. A row stops at EOS (not included in its output) or after
  ``max_new_tokens``; the batch stops when every row has.
- :func:`generate_uncached` does the same by re-running the whole sequence every step:
  the reference the cached path is tested against.
- Batching: the model's cached calls advance all rows together and take no padding,
  so one batch holds prompts of one length (captions of equal-size images are). Text
  prompts of different lengths are grouped by length (:func:`generate_texts`), each
  group a batch; outputs come back in the caller's order.
- :func:`score_continuations` gives the log-likelihood of each candidate text (its ids
  and the closing EOS) after a prefix: ``sum_t log p(c_t | prefix, c_<t)``, with ``p``
  the model's distribution restricted to text ids, the same distribution generation
  samples from. Used for zero-shot classification (candidates = captions,
  :func:`rank_labels`).
- Image size: training fits each image only to a multiple of the patch size (caption
  sets have one size each), so a user's image of any size is first resized to the size
  the checkpoint's captions had (:func:`checkpoint_image_size`, then
  :func:`with_image_size`), giving the same number and layout of patches as training.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gato.config import RunConfig, SourceKind
from gato.model import Gato, last_positions
from gato.sampling import GREEDY, SamplingConfig, restrict, sample
from gato.sequence import Kind, Row, TokenBatch, Tokenizers, collate, image_row
from gato.tokenizers.image import ImageTokenizer


@dataclass(frozen=True)
class GenerationConfig:
    """How much and how to sample.

    Attributes:
        max_new_tokens: most ids sampled per row (EOS counts as one).
        sampling: greedy / temperature / top-k / top-p (``gato.sampling``).
    """

    max_new_tokens: int = 64
    sampling: SamplingConfig = field(default_factory=lambda: GREEDY)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class Generated:
    """One row's sampled text ids (EOS excluded) and whether it ended with EOS."""

    ids: list[int]
    stopped: bool


# -- prompts ------------------------------------------------------------------------------


def text_row(tok: Tokenizers, ids: Sequence[int], task: str = "chat") -> Row:
    """Text ids as a row (``Kind.TEXT``, ``obs_pos`` 0), as dialogues and captions have."""
    arr = np.asarray(list(ids), dtype=np.int64)
    n = len(arr)
    return Row(
        tokens=arr,
        kinds=np.full(n, int(Kind.TEXT), np.int64),
        obs_pos=np.zeros(n, np.int64),
        loss_mask=np.zeros(n, bool),
        patches=tok.empty_patches(),
        patch_pos=np.zeros((0, 4), np.int64),
        task=task,
    )


def caption_prompt(tok: Tokenizers, image: np.ndarray) -> Row:
    """The prompt of a caption: the image's patches, exactly as ``caption_row`` starts."""
    return image_row(tok, image, "captions")


def text_allowed(tok: Tokenizers, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool ``(size,)``: the ids text generation may emit (the SentencePiece pieces)."""
    allowed = torch.zeros(size, dtype=torch.bool, device=device)
    allowed[: tok.text_model().vocab_size] = True
    return allowed


def _step_batch(ids: torch.Tensor, tok: Tokenizers) -> TokenBatch:
    """``(B,)`` text ids -> a ``(B, 1)`` batch to append to the cache."""
    b = ids.shape[0]
    dev = ids.device
    p = tok.image.patch_size
    return TokenBatch(
        tokens=ids[:, None],
        kinds=torch.full((b, 1), int(Kind.TEXT), dtype=torch.int64, device=dev),
        obs_pos=torch.zeros((b, 1), dtype=torch.int64, device=dev),
        loss_mask=torch.zeros((b, 1), dtype=torch.bool, device=dev),
        patches=torch.zeros((0, tok.image_channels, p, p), device=dev),
        patch_pos=torch.zeros((0, 4), dtype=torch.int64, device=dev),
    )


def _check_prompts(prompts: Sequence[Row]) -> None:
    if not prompts:
        raise ValueError("no prompts to generate from")
    lengths = {len(r) for r in prompts}
    if len(lengths) > 1:
        raise ValueError(
            f"a batch of prompts must have one length, got {sorted(lengths)} "
            "(group text prompts by length: generate_texts)"
        )
    if 0 in lengths:
        raise ValueError("a prompt must have at least one token")


# -- sampling -----------------------------------------------------------------------------


def _pick(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    config: SamplingConfig,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One allowed id per row ``(B,)``, on the logits' device.

    A generator draws on its own device (CUDA refuses a CPU generator for CUDA
    tensors), so with a CPU generator the restricted logits are sampled on the CPU:
    then the same seed gives the same text whichever device the model runs on.
    """
    logits = restrict(logits, allowed)  # (B, V)
    if generator is None or config.temperature == 0.0 or generator.device == logits.device:
        return sample(logits, config, generator)
    return sample(logits.to(generator.device), config, generator).to(logits.device)


@torch.no_grad()
def generate(
    model: Gato,
    tok: Tokenizers,
    prompts: Sequence[Row],
    config: GenerationConfig = GenerationConfig(),
    generator: torch.Generator | None = None,
) -> list[Generated]:
    """Sample text after each prompt (rows of equal length), with a KV cache.

    Returns one :class:`Generated` per prompt, in order.
    """
    _check_prompts(prompts)
    model.eval()
    device = model.tok_emb.weight.device
    batch = collate(list(prompts), tok.vocab).to(device)  # (B, L), no padding
    B = batch.tokens.shape[0]
    allowed = text_allowed(tok, model.vocab.size, device)
    eos = tok.text_model().eos_id
    cache = model.new_cache(B)
    logits = model(batch, cache=cache, at=last_positions(batch))  # (B, V): the first new id
    out = torch.zeros((B, config.max_new_tokens), dtype=torch.int64, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    steps = 0
    for t in range(config.max_new_tokens):
        nxt = _pick(logits, allowed, config.sampling, generator)  # (B,)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)  # finished rows stay at EOS
        out[:, t] = nxt
        steps = t + 1
        done |= nxt == eos
        if bool(done.all()) or steps == config.max_new_tokens:
            break
        step = _step_batch(nxt, tok)
        logits = model(step, cache=cache, at=last_positions(step))  # (B, V)
    return _finish(out[:, :steps].tolist(), eos)


@torch.no_grad()
def generate_uncached(
    model: Gato,
    tok: Tokenizers,
    prompts: Sequence[Row],
    config: GenerationConfig = GenerationConfig(),
    generator: torch.Generator | None = None,
) -> list[Generated]:
    """:func:`generate` by re-running the whole sequence at every step (reference path)."""
    _check_prompts(prompts)
    model.eval()
    device = model.tok_emb.weight.device
    eos = tok.text_model().eos_id
    allowed = text_allowed(tok, model.vocab.size, device)
    B = len(prompts)
    new: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for _ in range(config.max_new_tokens):
        rows = [Row.concat([p, text_row(tok, n)]) for p, n in zip(prompts, new, strict=True)]
        batch = collate(rows, tok.vocab).to(device)
        logits = model(batch, at=last_positions(batch))  # (B, V)
        nxt = _pick(logits, allowed, config.sampling, generator)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        for b, i in enumerate(nxt.tolist()):
            new[b].append(i)
        done |= nxt == eos
        if bool(done.all()):
            break
    return _finish(new, eos)


def _finish(rows: list[list[int]], eos: int) -> list[Generated]:
    out = []
    for ids in rows:
        if eos in ids:
            out.append(Generated(ids[: ids.index(eos)], True))
        else:
            out.append(Generated(list(ids), False))
    return out


def generate_texts(
    model: Gato,
    tok: Tokenizers,
    prompts: Sequence[Sequence[int]],
    config: GenerationConfig = GenerationConfig(),
    generator: torch.Generator | None = None,
    batch_size: int = 16,
) -> list[Generated]:
    """Text prompts of any lengths: grouped by length into batches; results in input order."""
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    results: list[Generated | None] = [None] * len(prompts)
    for _, idx in sorted(by_length.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            rows = [text_row(tok, prompts[i]) for i in chunk]
            for i, g in zip(chunk, generate(model, tok, rows, config, generator), strict=True):
                results[i] = g
    return results  # type: ignore[return-value]


def caption_images(
    model: Gato,
    tok: Tokenizers,
    images: Sequence[np.ndarray],
    config: GenerationConfig = GenerationConfig(),
    generator: torch.Generator | None = None,
    batch_size: int = 16,
) -> list[str]:
    """One caption per image; images with the same patch count are batched together."""
    rows = [caption_prompt(tok, im) for im in images]
    by_length: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        by_length.setdefault(len(r), []).append(i)
    text = tok.text_model()
    out: list[str] = [""] * len(rows)
    for _, idx in sorted(by_length.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            gens = generate(model, tok, [rows[i] for i in chunk], config, generator)
            for i, g in zip(chunk, gens, strict=True):
                out[i] = text.decode(g.ids)
    return out


# -- scoring ------------------------------------------------------------------------------


@torch.no_grad()
def score_continuations(
    model: Gato, tok: Tokenizers, prefix: Row, candidates: Sequence[str | Sequence[int]]
) -> torch.Tensor:
    """Log-likelihood of each candidate (text or ids; EOS appended) after ``prefix``.

    All candidates are scored in one batch: rows ``prefix + candidate + EOS``,
    right-padded (causal attention keeps padding out of every real position).

    Returns:
        ``(K,)`` float32 summed log-probabilities under the text-restricted distribution.
    """
    if not candidates:
        raise ValueError("no candidates to score")
    if len(prefix) == 0:
        raise ValueError("the prefix must have at least one token (nothing predicts the first)")
    model.eval()
    text = tok.text_model()
    device = model.tok_emb.weight.device
    cands = [text.encode(c) if isinstance(c, str) else list(c) for c in candidates]
    cands = [c + [text.eos_id] for c in cands]
    rows = [Row.concat([prefix, text_row(tok, c)]) for c in cands]
    batch = collate(rows, tok.vocab).to(device)  # (K, L)
    logits = model(batch)[:, :-1].float()  # (K, L-1): position t predicts token t+1
    logits = logits[..., : text.vocab_size]  # restricted to text ids
    logp = logits.log_softmax(-1)
    n0 = len(prefix)
    scores = torch.zeros(len(cands))
    for k, c in enumerate(cands):
        target = torch.tensor(c, device=device)  # (n,)
        pred = logp[k, n0 - 1 : n0 - 1 + len(c)]  # (n, text vocab)
        scores[k] = pred.gather(-1, target[:, None]).sum().cpu()
    return scores


# -- zero-shot classification -------------------------------------------------------------

DEFAULT_TEMPLATE = "a photo of {a} {label}"  # the Fashion-MNIST caption template


def label_caption(label: str, template: str = DEFAULT_TEMPLATE) -> str:
    """A candidate caption: ``{label}`` is the label, ``{a}`` its article ("a"/"an")."""
    article = "an" if label[:1].lower() in "aeiou" else "a"
    try:
        return template.format(label=label, a=article)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"bad caption template {template!r} ({exc}); use {{label}} and {{a}}"
        ) from None


@dataclass(frozen=True)
class LabelScore:
    """One candidate label: its caption's log-likelihood and its share among candidates."""

    label: str
    caption: str
    log_likelihood: float
    probability: float


def rank_labels(
    model: Gato,
    tok: Tokenizers,
    image: np.ndarray,
    labels: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
) -> list[LabelScore]:
    """Candidates ranked by ``log p(caption | image)``, best first.

    ``probability`` is the softmax of the log-likelihoods over the candidates (the
    posterior under a uniform prior over the labels).
    """
    if len(labels) < 1:
        raise ValueError("give at least one label")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {list(labels)}")
    caps = [label_caption(lb, template) for lb in labels]
    scores = score_continuations(model, tok, caption_prompt(tok, image), caps)  # (K,)
    probs = scores.softmax(-1)
    out = [
        LabelScore(lb, c, float(s), float(p))
        for lb, c, s, p in zip(labels, caps, scores.tolist(), probs.tolist(), strict=True)
    ]
    return sorted(out, key=lambda r: -r.log_likelihood)


# -- image size of a checkpoint -----------------------------------------------------------


def with_image_size(tok: Tokenizers, size: tuple[int, int] | None) -> Tokenizers:
    """The same tokenizers, resizing every image to ``size`` first (None: as is)."""
    if size is None:
        return tok
    image = ImageTokenizer(patch_size=tok.image.patch_size, size=size, fit=tok.image.fit)
    return dataclasses.replace(tok, image=image)


def npz_image_shape(path: Path) -> tuple[int, ...]:
    """Shape of the ``images`` array of a caption set ``.npz`` (reads only its header)."""
    with zipfile.ZipFile(path) as z, z.open("images.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
    return tuple(shape)


def checkpoint_image_size(
    tok: Tokenizers, run: RunConfig | None, checkpoint: Path | None
) -> tuple[int, int]:
    """The ``(H, W)`` (after the patch fit) the checkpoint's caption images had.

    In order: ``image_size`` in the checkpoint's ``state.json`` (if the trainer recorded
    it); else the image shape of the first caption set of the run's mixture that is
    still on disk. ValueError when neither says (pass the size explicitly then).
    """
    if checkpoint is not None:
        state_file = Path(checkpoint) / "state.json"
        if state_file.is_file():
            state = json.loads(state_file.read_text(encoding="utf-8"))
            size = state.get("image_size") if isinstance(state, dict) else None
            if isinstance(size, list) and len(size) == 2:
                return tok.image.fitted_shape(int(size[0]), int(size[1]))
    if run is not None:
        for entry in run.data.mixture:
            path = run.data.resolve(entry.path)
            if entry.kind == SourceKind.CAPTIONS and path.is_file():
                shape = npz_image_shape(path)  # (N, H, W) or (N, H, W, C)
                return tok.image.fitted_shape(int(shape[1]), int(shape[2]))
    raise ValueError(
        "cannot tell the image size this checkpoint was trained on (no image_size in its "
        "state.json and no caption set of its mixture on disk); pass --image-size"
    )
