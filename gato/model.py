"""The Gato model: one decoder-only transformer over the shared token stream.

Reads a :class:`gato.sequence.TokenBatch`, returns next-token logits over the whole
vocabulary. Choices (paper = Reed et al. 2022, DESIGN.md "Model"):

- **Token embedding** over the whole vocabulary (text pieces, value bins, separator,
  pad), used at every position that is not an image patch.
- **Image patches** (``Kind.IMAGE`` positions) are embedded from their pixels by
  :class:`PatchEmbedding`: a stride-``patch_stem`` stem convolution, one
  pre-activation (ResNet-v2) residual block with GroupNorm and GELU, GroupNorm+GELU,
  then a linear map of the flattened feature grid to ``d_model``. Learned row and
  column position embeddings (``patch_resolution`` entries each, paper: 128) are
  added: in training mode at a position drawn uniformly from the patch's quantised
  interval ``[lo, hi)`` (``patch_jitter``, the paper's choice), in eval mode at the
  interval's lower middle ``(lo + hi - 1) // 2`` (deterministic and always inside the
  interval). Without jitter training reads the eval entry too.
  Grey patches (1 channel) are repeated to ``image_channels``.
- **Local observation positions**: a learned table indexed by ``TokenBatch.obs_pos``,
  added only at observation positions. Rule: ``Kind.IMAGE`` and ``Kind.OBS_VALUE``
  positions always; ``Kind.TEXT`` positions when ``obs_pos > 0``. The batch contract
  writes 0 both for "no observation" and for the first token of an observation, so the
  first token of a text observation cannot be told from caption/dialogue text from
  the batch alone and gets no local embedding; every later token of it does. The rule
  looks only at each position itself, so it gives the same result however a row is
  split into KV-cache chunks.
- Each modality is embedded only where it occurs: positions of each kind are gathered
  and their embeddings scattered into the ``(B, T, d)`` input.
- **Decoder**: pre-norm blocks (LayerNorm), causal ``scaled_dot_product_attention``
  with rotary position embeddings (RoPE) on queries and keys, GELU MLP; final
  LayerNorm.
- **Head**: tied to the token embedding by default (``tie_head``). The input and output
  share one id space, the paper's nominal sizes are matched by counting the embedding
  once, and at a CPU model's size the vocabulary matrix would otherwise be most of the
  parameters. ``tie_head = false`` gives a separate output matrix.

KV cache: episode state stays outside the model. :meth:`Gato.new_cache` returns a
:class:`KVCache` the caller owns; ``model(batch, cache=cache)`` appends the batch's
tokens (a prompt, one timestep, or one token) and returns logits for those tokens
only. Sliding window: a query at absolute position ``t`` attends to the keys at
positions ``(t - context, t]`` (in every layer, cached or not), so the cache never
holds more than ``2 * context`` keys and decoding continues past ``context``. RoPE
encodes absolute positions, so kept keys need no re-encoding. All rows of a cached batch advance
together (no padding in cached calls); reset means a new cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gato.config import ModelConfig
from gato.sequence import Kind, TokenBatch

# --- KV cache ------------------------------------------------------------------------


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, one buffer per layer.

    Attributes:
        k, v: per layer ``(B, n_head, capacity, head_size)`` buffers; entries
            ``[:length]`` are valid and hold absolute positions ``[pos - length, pos)``.
        length: number of valid entries.
        pos: absolute position of the next token to append.
        window: ``context`` of the model: a query sees at most this many keys.
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    window: int
    length: int = 0
    pos: int = 0
    # How many old entries to keep when the buffer is full: a new chunk's first query
    # needs the window - 1 keys before it.
    _keep: int = field(init=False)

    def __post_init__(self) -> None:
        self._keep = self.window - 1

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def make_room(self, n: int) -> None:
        """Ensure ``n`` new entries fit after ``length``, dropping the oldest if needed."""
        if self.length + n <= self.capacity:
            return
        keep = min(self.length, self._keep)
        start = self.length - keep
        need = keep + n
        for i in range(len(self.k)):
            for buf in (self.k, self.v):
                old = buf[i]
                if need > old.shape[2]:  # a chunk longer than the spare room: grow
                    new = old.new_empty(*old.shape[:2], need, old.shape[3])
                else:
                    new = old
                # clone: source and destination ranges may overlap
                new[:, :, :keep] = old[:, :, start : self.length].clone()
                buf[i] = new
        self.length = keep


# --- building blocks -----------------------------------------------------------------


def rope_tables(
    positions: torch.Tensor, head_size: int, base: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``(T, head_size / 2)`` for absolute ``positions`` ``(T,)``.

    Angles are computed in float64 and rounded once, so large absolute positions (long
    episodes) keep their precision.
    """
    inv_freq = base ** (
        -torch.arange(0, head_size, 2, device=positions.device, dtype=torch.float64) / head_size
    )
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # (T, hs/2)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(x[..., :h], x[..., h:])`` of ``x`` ``(B, H, T, hs)``."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # autocast: q/k may be bf16
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_size = cfg.head_size
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.attn_dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
        layer: int,
    ) -> torch.Tensor:
        """``x`` ``(B, T, C)`` -> ``(B, T, C)``.

        ``mask`` is None for plain causal attention over ``x``, else a bool
        ``(T, S)`` "may attend" mask over the keys (cached history + new tokens).
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            start = cache.length
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            first = max(0, start - (cache.window - 1))  # oldest key any new query sees
            # (B, H, S, hs); .to is a no-op unless the cache dtype differs (autocast)
            k = cache.k[layer][:, :, first : start + T].to(q.dtype)
            v = cache.v[layer][:, :, first : start + T].to(q.dtype)
        drop = self.dropout if self.training else 0.0
        if mask is None and cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm decoder block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, cache, layer):  # shapes as Attention.forward
        x = x + self.attn(self.ln_1(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.ln_2(x))


def last_positions(batch: TokenBatch) -> torch.Tensor:
    """Bool ``(B, T)``, true at every row's last position: ``model(batch, at=...)`` gives
    the ``(B, V)`` logits that predict each row's next token (rows without padding)."""
    at = torch.zeros_like(batch.tokens, dtype=torch.bool)
    at[:, -1] = True
    return at


class PatchEmbedding(nn.Module):
    """Image patches ``(N, C, p, p)`` -> ``(N, d_model)``: one ResNet-v2 block.

    stem conv (kernel = stride = ``patch_stem``) to a ``g x g`` grid of
    ``patch_channels``, ``x + conv(gelu(gn(conv(gelu(gn(x))))))`` with 3x3 convs,
    GroupNorm + GELU, flatten, linear. Learned row/column position embeddings are
    added by :class:`Gato`, not here.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch, g = cfg.patch_channels, cfg.patch_groups
        self.channels = cfg.image_channels
        self.stem = nn.Conv2d(cfg.image_channels, ch, cfg.patch_stem, stride=cfg.patch_stem)
        self.norm_1 = nn.GroupNorm(g, ch)
        self.conv_1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm_2 = nn.GroupNorm(g, ch)
        self.conv_2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm_out = nn.GroupNorm(g, ch)
        grid = cfg.patch_size // cfg.patch_stem
        self.out = nn.Linear(ch * grid * grid, cfg.d_model)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.shape[1] == 1 and self.channels > 1:
            patches = patches.expand(-1, self.channels, -1, -1)  # grey -> repeated channels
        x = self.stem(patches)  # (N, ch, g, g)
        h = self.conv_1(F.gelu(self.norm_1(x)))
        h = self.conv_2(F.gelu(self.norm_2(h)))
        x = F.gelu(self.norm_out(x + h))
        return self.out(x.flatten(1))  # (N, d_model)


# --- the model -----------------------------------------------------------------------


class Gato(nn.Module):
    """Decoder-only transformer over token batches; see the module docstring."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab = cfg.vocab
        d = cfg.d_model
        self.tok_emb = nn.Embedding(self.vocab.size, d)
        self.patch_emb = PatchEmbedding(cfg)
        self.patch_row = nn.Embedding(cfg.patch_resolution, d)
        self.patch_col = nn.Embedding(cfg.patch_resolution, d)
        self.obs_emb = nn.Embedding(cfg.max_obs_tokens, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = None if cfg.tie_head else nn.Linear(d, self.vocab.size, bias=False)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections down with depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # -- embeddings --

    def embed(self, batch: TokenBatch) -> torch.Tensor:
        """Input vectors ``(B, T, d)``: each modality embedded only where it occurs."""
        tokens, kinds = batch.tokens, batch.kinds
        is_image = kinds == Kind.IMAGE  # (B, T)
        is_obs = is_image | (kinds == Kind.OBS_VALUE)
        is_obs |= (kinds == Kind.TEXT) & (batch.obs_pos > 0)
        # Embeddings land in place by masked_scatter (row-major order, as x[mask] reads),
        # not ``x[mask] = ...``: torch.compile (2.13, CPU inductor) miscompiles that 2-D
        # boolean-mask index_put into (B, T, d) - NaN or wrong values (test_model.py).
        if batch.patches.shape[0] == 0:
            x = self.tok_emb(tokens)  # (B, T, d): every position is an id
        else:
            x = self.tok_emb.weight.new_zeros(*tokens.shape, self.cfg.d_model)
            ids = self.tok_emb(tokens[~is_image])  # (M, d)
            x = x.masked_scatter(~is_image.unsqueeze(-1), ids)
            patches = self.embed_patches(batch.patches, batch.patch_pos)  # (N, d)
            x = x.masked_scatter(is_image.unsqueeze(-1), patches.to(x.dtype))
        obs = self.obs_emb(batch.obs_pos[is_obs])  # (K, d)
        x = x + torch.zeros_like(x).masked_scatter(is_obs.unsqueeze(-1), obs.to(x.dtype))
        return self.drop(x)

    def embed_patches(self, patches: torch.Tensor, patch_pos: torch.Tensor) -> torch.Tensor:
        """``patches`` ``(N, C, p, p)``, ``patch_pos`` ``(N, 4)`` -> ``(N, d)``."""
        pos = self.patch_positions(patch_pos)  # (N, 2)
        x = self.patch_emb(patches.to(self.tok_emb.weight.dtype))
        return x + self.patch_row(pos[:, 0]) + self.patch_col(pos[:, 1])

    def patch_positions(self, patch_pos: torch.Tensor) -> torch.Tensor:
        """Row and column table indices ``(N, 2)`` from intervals ``(N, 4)``.

        Training with ``patch_jitter``: uniform in ``[lo, hi)``; otherwise
        ``(lo + hi - 1) // 2``.
        """
        lo = patch_pos[:, 0::2]  # (N, 2): row_lo, col_lo
        hi = patch_pos[:, 1::2]  # (N, 2): row_hi, col_hi
        if self.training and self.cfg.patch_jitter:
            u = torch.rand(lo.shape, device=lo.device)
            return lo + (u * (hi - lo)).long().clamp_max(hi - lo - 1)
        return (lo + hi - 1) // 2

    # -- forward --

    def features(
        self, batch: TokenBatch, cache: KVCache | None = None, start_pos: int = 0
    ) -> torch.Tensor:
        """Final-normed hidden states ``(B, T, d)`` of the batch's tokens.

        Attention is causal over a sliding window: the query at absolute position ``t``
        sees the keys at ``(t - context, t]``. For rows of at most ``context`` tokens
        (training) that is plain causal attention.

        Without a cache the rows start at absolute position ``start_pos`` (RoPE). With a
        cache the tokens are appended after the cached ones (``start_pos`` must stay 0).
        Cached decoding equals the uncached forward over the whole stream (with its
        sliding window) at every layer; past ``context`` it differs from recomputing only
        the last ``context`` tokens when there is more than one layer, because there the
        kept keys of layer 2+ were computed when their own windows reached further back.
        """
        B, T = batch.tokens.shape
        device = batch.tokens.device
        x = self.embed(batch)  # (B, T, d)
        mask = None
        if cache is None:
            first = start_pos
            if T > self.cfg.context:  # sliding-window attention, as the cache does
                i = torch.arange(T, device=device)
                mask = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - self.cfg.context)
        else:
            if start_pos:
                raise ValueError("start_pos is for uncached calls; a cache knows its position")
            if cache.batch_size != B:
                raise ValueError(f"cache holds {cache.batch_size} rows, batch has {B}")
            cache.make_room(T)
            first = cache.pos
            mask = self._cache_mask(cache, T, device)
        positions = torch.arange(first, first + T, device=device)
        cos, sin = rope_tables(positions, self.cfg.head_size, self.cfg.rope_base, x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length += T
            cache.pos += T
        return self.ln_f(x)

    @staticmethod
    def _cache_mask(cache: KVCache, T: int, device: torch.device) -> torch.Tensor | None:
        """Bool ``(T, S)`` mask for ``T`` new queries over the visible keys, or None."""
        first = max(0, cache.length - (cache.window - 1))
        S = cache.length + T - first
        if T == 1:
            return None  # one query sees all S <= window visible keys
        q_pos = cache.pos + torch.arange(T, device=device)[:, None]  # (T, 1) absolute
        k_pos = cache.pos - (cache.length - first) + torch.arange(S, device=device)[None, :]
        return (k_pos <= q_pos) & (k_pos > q_pos - cache.window)  # (T, S)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(..., d)`` -> logits ``(..., vocab.size)``."""
        if self.head is None:
            return F.linear(h, self.tok_emb.weight)
        return self.head(h)

    def forward(
        self,
        batch: TokenBatch,
        cache: KVCache | None = None,
        start_pos: int = 0,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, T, vocab.size)`` for the batch's tokens (see :meth:`features`).

        ``at``: optional bool ``(B, T)``; then only the logits at those positions are
        computed, ``(M, vocab.size)`` in row-major order. The head is a ``d x vocab``
        matrix per position, as much as the rest of a small model: training needs it
        only where a target is predicted (``gato.loss.predicting``: a few % of an Atari
        row), a policy only at the last position.
        """
        h = self.features(batch, cache=cache, start_pos=start_pos)  # (B, T, d)
        if at is not None:
            h = h[at]  # (M, d)
        return self.logits(h)

    def new_cache(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> KVCache:
        """An empty :class:`KVCache` for ``batch_size`` rows advancing together.

        Room for ``2 * context`` entries: old entries are shifted out once per
        ``context`` appended tokens, not on every step.
        """
        w = self.tok_emb.weight
        device = w.device if device is None else device
        dtype = w.dtype if dtype is None else dtype
        shape = (batch_size, self.cfg.n_head, 2 * self.cfg.context, self.cfg.head_size)
        return KVCache(
            k=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
            v=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
            window=self.cfg.context,
        )

    # -- parameter counts --

    def param_counts(self) -> ParamCounts:
        """Parameters by part (the tied head is counted once, in the token embedding)."""

        def n(module: nn.Module | None) -> int:
            return 0 if module is None else sum(p.numel() for p in module.parameters())

        return ParamCounts(
            token_embedding=n(self.tok_emb),
            patch_embedding=n(self.patch_emb) + n(self.patch_row) + n(self.patch_col),
            other_embeddings=n(self.obs_emb),
            blocks=n(self.blocks) + n(self.ln_f),
            head=n(self.head),
        )


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a :class:`Gato` by part."""

    token_embedding: int
    patch_embedding: int  # ResNet block + row/column position tables
    other_embeddings: int  # local observation positions
    blocks: int  # decoder blocks + final norm
    head: int  # 0 when tied to the token embedding

    @property
    def total(self) -> int:
        return (
            self.token_embedding
            + self.patch_embedding
            + self.other_embeddings
            + self.blocks
            + self.head
        )
