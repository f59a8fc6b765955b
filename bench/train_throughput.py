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


def matmul_flops(cfg: ModelConfig, seq: int) -> tuple[int, int]:
    """``(N, flops per token)`` of a training step (forward + backward), nanoGPT/PaLM style.

    ``flops = 6 N + 12 L d T`` per token: each of the ``N`` weights of a matrix multiply
    costs 2 FLOPs per token forward and 4 backward; attention scores and the weighted
    sum add ``2 * 2 * T * d`` per layer forward (x3 with backward) at sequence length
    ``T`` (counted over the full ``T x T`` square, as PaLM does, though causal masking
    could skip half). ``N`` = the decoder blocks and the head, i.e. the token embedding
    matrix when tied; lookup tables (positions) and Gato's ResNet patch embedding are
    not counted, so MFU on image-heavy rows is an underestimate (see
    ``flops_per_token_counted`` for what torch counts).
    """
    d, L = cfg.d_model, cfg.n_layer
    block = 4 * d * d + 4 * d + 2 * d * cfg.d_ff + cfg.d_ff + d + 4 * d  # attn, MLP, norms
    n = L * block + cfg.vocab.size * d  # + the (tied) head
    return n, 6 * n + 12 * L * d * seq


def counted_flops_per_token(model: nn.Module, batch: TokenBatch, loss_fn, autocast) -> float:
    """FLOPs of one forward + backward as torch's FlopCounterMode counts them, per token.

    Counts matrix multiplies and convolutions; the CPU attention kernel is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        with autocast:
            loss = loss_fn()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch.tokens.numel()


def measure(
    cfg: ModelConfig, batch: TokenBatch, repeats: int, bf16: bool, device: str, matmul_n: int
) -> dict:
    torch.manual_seed(0)
    gato, gpt = Gato(cfg).to(device).train(), PlainGPT(cfg).to(device).train()
    opt_gato = torch.optim.AdamW(gato.parameters(), lr=1e-4)
    opt_gpt = torch.optim.AdamW(gpt.parameters(), lr=1e-4)
    dev_type = torch.device(device).type
    dtype = torch.bfloat16 if bf16 else torch.float32

    def autocast():
        return torch.autocast(dev_type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def gato_loss() -> torch.Tensor:
        return sequence_loss(gato(batch), batch).loss

    def gpt_loss() -> torch.Tensor:
        return plain_loss(gpt(batch.tokens), batch)

    def step(model_loss, opt) -> None:
        with autocast():
            loss = model_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # the machine's matmul peak in the step's dtype, timed between the steps
    a = torch.randn(matmul_n, matmul_n, device=device).to(dtype)
    b = torch.randn(matmul_n, matmul_n, device=device).to(dtype)
    counted = counted_flops_per_token(gato, batch, gato_loss, autocast())
    times = harness.interleaved(
        {
            "gato": lambda: step(gato_loss, opt_gato),
            "gpt": lambda: step(gpt_loss, opt_gpt),
            "matmul": lambda: a @ b,
        },
        repeats,
        sync=harness.synchronizer(device),
    )
    n_tokens = batch.tokens.numel()
    g = harness.Timed.of("gato", "tokens/s", n_tokens, times["gato"])
    p = harness.Timed.of("plain GPT", "tokens/s", n_tokens, times["gpt"])
    peak = harness.Timed.of(f"matmul {matmul_n}", "FLOP/s", 2 * matmul_n**3, times["matmul"])
    n_params, per_token = matmul_flops(cfg, batch.tokens.shape[1])
    return harness.compare(
        g,
        p,
        mfu=per_token * g.median_rate / peak.median_rate,
        gpt_mfu=per_token * p.median_rate / peak.median_rate,
        matmul_peak_gflops=peak.median_rate / 1e9,
        flops_per_token=per_token,
        flops_per_token_counted=counted,
        matmul_params=n_params,
        matmul_peak=peak.summary(),
    )


QUICK = [("text", "fp32"), ("images", "bf16")]  # both dtypes, both batches, in seconds


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("train_throughput", __doc__.splitlines()[0])
    p.add_argument("--presets", default="cpu-small,cpu-base", help="model presets (comma list)")
    p.add_argument("--rows", type=int, default=4, help="rows per batch")
    p.add_argument("--no-bf16", action="store_true", help="measure fp32 only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    presets = ["debug"] if args.quick else args.presets.split(",")
    repeats = 2 if args.quick else 4
    matmul_n = 256 if args.quick else 2048
    dtypes = ["fp32"] if args.no_bf16 else ["fp32", "bf16"]
    figures = {}
    for preset in presets:
        cfg = load_preset(preset)
        if args.quick:
            cfg = dataclasses.replace(cfg, context=64)
        cfg = dataclasses.replace(cfg, dropout=0.0)  # the baseline has none either
        g = torch.Generator().manual_seed(0)
        batches = {"text": text_batch(cfg, args.rows, g), "images": image_batch(cfg, args.rows, g)}
        for dtype in dtypes:
            for name, batch in batches.items():
                if args.quick and (name, dtype) not in QUICK:
                    continue
                figures[f"{preset}_{name}_{dtype}"] = measure(
                    cfg, batch.to(args.device), repeats, dtype == "bf16", args.device, matmul_n
                )
    config = {
        "presets": presets,
        "contexts": {p: (64 if args.quick else load_preset(p).context) for p in presets},
        "rows": args.rows,
        "image_batch": "timesteps of 25 patches (5x5) + 4 values + separator + 1 action",
        "repeats": repeats,
        "dtypes": dtypes,
        "step": "forward + masked cross-entropy + backward + AdamW",
        "mfu": "(6 N + 12 L d T) * tokens/s / matmul peak; peak = median FLOP/s of a "
        f"{matmul_n}x{matmul_n} matmul in the step's dtype, timed between the steps",
    }
    return harness.write_result(
        args.out, "train_throughput", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
