"""Act-step latency: KV cache vs full recompute of the context window, side by side.

A step is what the policy does per env step: append one timestep's observation
(``--obs`` value tokens) and the separator, read the logits of the last position,
pick the action, then append the action token. With the cache that is two cached
calls (``obs + separator``, then the action). Without it, one forward over the last
``context`` tokens of the stream. Both paths run the head on the last position only,
in eval mode under ``torch.no_grad``, batch 1, fp32."""

from __future__ import annotations

import dataclasses
import sys
import time

import harness
import torch

from gato.config import load_preset
from gato.model import Gato
from gato.sequence import Kind, TokenBatch


def stream(cfg, steps: int, obs: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and kinds ``(1, steps * (obs + 2))`` of a random episode stream."""
    v = cfg.vocab
    per = [Kind.OBS_VALUE] * obs + [Kind.SEPARATOR, Kind.ACTION]
    kinds = torch.tensor([int(k) for k in per] * steps)[None]
    tokens = v.bin_offset + torch.randint(v.bins, kinds.shape, generator=g)
    tokens[kinds == Kind.SEPARATOR] = v.separator
    return tokens, kinds


def window(tokens: torch.Tensor, kinds: torch.Tensor, obs: int) -> TokenBatch:
    """The stream as a TokenBatch; every timestep is ``obs`` values, ``|``, an action."""
    inside = torch.arange(tokens.shape[1]) % (obs + 2)  # index inside the timestep
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=torch.where(kinds == Kind.OBS_VALUE, inside, 0),
        loss_mask=torch.zeros_like(tokens, dtype=torch.bool),
        patches=torch.zeros(0, 3, 16, 16),
        patch_pos=torch.zeros(0, 4, dtype=torch.long),
    )


def measure(cfg, obs: int, steps: int, device: str) -> dict:
    torch.manual_seed(0)
    model = Gato(cfg).to(device).eval()
    sync = harness.synchronizer(device) or (lambda: None)
    g = torch.Generator().manual_seed(0)
    per = obs + 2
    history = cfg.context // per + 2  # timesteps before timing: the window is full
    tokens, kinds = stream(cfg, history + steps + 2, obs, g)
    batch = window(tokens, kinds, obs).to(device)
    cache = model.new_cache(1)
    cached_times, full_times = [], []
    with torch.no_grad():
        model(_cols(batch, 0, history * per), cache=cache)  # prefill
        for s in range(history, history + steps):  # paths interleaved step by step
            t0 = s * per
            sync()
            t = time.perf_counter()
            h = model.features(_cols(batch, t0, t0 + obs + 1), cache=cache)
            model.logits(h[:, -1]).argmax(-1)  # the policy samples here
            # append the action (the stream's own, so both paths see the same tokens)
            model.features(_cols(batch, t0 + obs + 1, t0 + per), cache=cache)
            sync()
            cached_times.append(time.perf_counter() - t)

            t = time.perf_counter()
            end = t0 + obs + 1
            h = model.features(_cols(batch, max(0, end - cfg.context), end))
            model.logits(h[:, -1]).argmax(-1)
            sync()
            full_times.append(time.perf_counter() - t)
    cached = harness.Timed.of("KV cache", "steps/s", 1, cached_times[1:])  # first: warm-up
    full = harness.Timed.of("full recompute", "steps/s", 1, full_times[1:])
    return harness.compare(
        cached,
        full,
        cached_ms=1e3 * harness.stats(cached.seconds)["median"],
        recompute_ms=1e3 * harness.stats(full.seconds)["median"],
    )


def _cols(batch: TokenBatch, lo: int, hi: int) -> TokenBatch:
    return TokenBatch(
        tokens=batch.tokens[:, lo:hi],
        kinds=batch.kinds[:, lo:hi],
        obs_pos=batch.obs_pos[:, lo:hi],
        loss_mask=batch.loss_mask[:, lo:hi],
        patches=batch.patches,
        patch_pos=batch.patch_pos,
    )


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("kv_cache", __doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu-base", help="model preset (default cpu-base)")
    p.add_argument("--obs", type=int, default=36, help="observation tokens per timestep")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = "debug" if args.quick else args.preset
    contexts = [64, 128] if args.quick else [256, 512, 1024]
    steps = 4 if args.quick else 21
    base = load_preset(preset)
    figures = {}
    for ctx in contexts:
        cfg = dataclasses.replace(base, context=ctx, dropout=0.0)
        figures[f"context_{ctx}"] = measure(cfg, args.obs, steps, args.device)
    config = {
        "preset": preset,
        "contexts": contexts,
        "obs_tokens_per_step": args.obs,
        "step": "append obs + separator (cached call), argmax, append action (cached call)",
        "recompute": "forward over the last `context` tokens, head on the last position",
        "batch": 1,
        "dtype": "float32",
        "steps_timed": steps - 1,
    }
    return harness.write_result(
        args.out, "kv_cache", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
