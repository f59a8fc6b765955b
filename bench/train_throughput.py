"""Training tokens/s: Gato vs a plain GPT of the same width, depth and vocabulary.

Both models train on the same token rows in the same run, steps interleaved
(forward, masked cross-entropy, backward, AdamW step). The plain GPT is
nanoGPT-style: token + learned absolute position embeddings, pre-norm blocks with
causal ``scaled_dot_product_attention``, GELU MLP, tied head; it reads image
patches as their placeholder id. Gato adds what the token stream needs: the
ResNet patch embedding with patch positions, local observation positions,
rotary embeddings. Two batches: text only (dialogue-like rows) and image-heavy
(episode rows of 25 patches + 4 values + separator + 1 action per timestep).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import nullcontext

import harness
import torch
import torch.nn.functional as F
from torch import nn

from gato.config import ModelConfig, load_preset
from gato.loss import sequence_loss
from gato.model import MLP, Gato
from gato.sequence import Kind, TokenBatch


class PlainBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.mlp = MLP(cfg)
        self.n_head = cfg.n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.n_head, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln_2(x))


class PlainGPT(nn.Module):
    """The baseline: a GPT over token ids only."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab.size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(PlainBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)


def plain_loss(logits: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
    mask = batch.loss_mask[:, 1:]
    return F.cross_entropy(logits[:, :-1][mask].float(), batch.tokens[:, 1:][mask])


def text_batch(cfg: ModelConfig, rows: int, g: torch.Generator) -> TokenBatch:
    T = cfg.context
    tokens = torch.randint(cfg.text_size, (rows, T), generator=g)
    kinds = torch.full((rows, T), int(Kind.TEXT))
    mask = torch.ones(rows, T, dtype=torch.bool)
    mask[:, 0] = False
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=torch.zeros(rows, T, dtype=torch.long),
        loss_mask=mask,
        patches=torch.zeros(0, cfg.image_channels, cfg.patch_size, cfg.patch_size),
        patch_pos=torch.zeros(0, 4, dtype=torch.long),
        tasks=["chat"] * rows,
    )


def image_batch(cfg: ModelConfig, rows: int, g: torch.Generator) -> TokenBatch:
    v, grid, values = cfg.vocab, 5, 4  # an 80x80 frame: 5x5 patches of 16
    per = [Kind.IMAGE] * grid * grid + [Kind.OBS_VALUE] * values + [Kind.SEPARATOR, Kind.ACTION]
    steps = cfg.context // len(per)
    kinds = torch.tensor([int(k) for k in per] * steps).repeat(rows, 1)  # (B, T)
    T = kinds.shape[1]
    tokens = v.bin_offset + torch.randint(v.bins, (rows, T), generator=g)
    tokens[kinds == Kind.IMAGE] = v.patch
    tokens[kinds == Kind.SEPARATOR] = v.separator
    inside = torch.arange(T) % len(per)
    is_obs = (kinds == Kind.IMAGE) | (kinds == Kind.OBS_VALUE)
    n = int((kinds == Kind.IMAGE).sum())
    r = torch.arange(grid).repeat_interleave(grid) * (128 // grid)  # row_lo, raster order
    c = torch.arange(grid).repeat(grid) * (128 // grid)
    pos = torch.stack([r, r + 128 // grid, c, c + 128 // grid], 1).repeat(n // grid**2, 1)
    p = cfg.patch_size
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=torch.where(is_obs, inside.expand(rows, T), 0),
        loss_mask=kinds == Kind.ACTION,
        patches=(torch.rand(n, cfg.image_channels, p, p, generator=g) * 2 - 1) / p**0.5,
        patch_pos=pos,
        tasks=["atari"] * rows,
    )


def measure(cfg: ModelConfig, batch: TokenBatch, repeats: int, bf16: bool) -> dict:
    torch.manual_seed(0)
    gato, gpt = Gato(cfg).train(), PlainGPT(cfg).train()
    opt_gato = torch.optim.AdamW(gato.parameters(), lr=1e-4)
    opt_gpt = torch.optim.AdamW(gpt.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step_gato() -> None:
        with autocast:
            loss = sequence_loss(gato(batch), batch).loss
        opt_gato.zero_grad(set_to_none=True)
        loss.backward()
        opt_gato.step()

    def step_gpt() -> None:
        with autocast:
            loss = plain_loss(gpt(batch.tokens), batch)
        opt_gpt.zero_grad(set_to_none=True)
        loss.backward()
        opt_gpt.step()

    step_gato(), step_gpt()  # warm-up
    times: dict[str, list[float]] = {"gato": [], "gpt": []}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for name, fn in (("gato", step_gato), ("gpt", step_gpt)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    n_tokens = batch.tokens.numel()
    g, p = harness.stats(times["gato"]), harness.stats(times["gpt"])
    return {
        "gato_tokens_per_s": n_tokens / g["median"],
        "gpt_tokens_per_s": n_tokens / p["median"],
        "gato_seconds": g,
        "gpt_seconds": p,
        "ratio": p["median"] / g["median"],  # Gato tokens/s over plain GPT tokens/s
        "tokens_per_step": n_tokens,
    }


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("train_throughput", __doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-small", help="model preset (default cpu-small)")
    p.add_argument("--rows", type=int, default=4, help="rows per batch")
    p.add_argument("--no-bf16", action="store_true", help="measure fp32 only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_preset("debug" if args.quick else args.preset)
    if args.quick:
        cfg = dataclasses.replace(cfg, context=64)
    cfg = dataclasses.replace(cfg, dropout=0.0)  # the baseline has none either
    repeats = 2 if args.quick else 6
    g = torch.Generator().manual_seed(0)
    batches = {"text": text_batch(cfg, args.rows, g), "images": image_batch(cfg, args.rows, g)}
    dtypes = ["fp32"] if args.no_bf16 or args.quick else ["fp32", "bf16"]
    figures = {}
    for dtype in dtypes:
        for name, batch in batches.items():
            fig = measure(cfg, batch, repeats, bf16=dtype == "bf16")
            figures[f"{name}_{dtype}"] = fig
            print(
                f"{name:6s} {dtype}: gato {fig['gato_tokens_per_s']:9,.0f} tok/s, "
                f"plain GPT {fig['gpt_tokens_per_s']:9,.0f} tok/s, ratio {fig['ratio']:.2f}x"
            )
    config = {
        "preset": cfg.name,
        "context": cfg.context,
        "rows": args.rows,
        "image_batch": "timesteps of 25 patches (5x5) + 4 values + separator + 1 action",
        "repeats": repeats,
        "dtypes": dtypes,
        "step": "forward + masked cross-entropy + backward + AdamW",
    }
    return harness.write_result(args.out, "train_throughput", config, figures, args.device)


if __name__ == "__main__":
    main(sys.argv[1:])
