"""Data loading: the mixture sampler's tokens/s vs the training step's consumption.

The sampler (``gato.data.mixture.Mixture.train_batch``: draw rows, tokenize, fill to
the context, collate) runs in one process, as one background data worker does; a
timed repeat draws several batches (their mix of sources varies from step to step).
The baseline is a training step of the ``cpu-small`` preset on a batch of the same
shape (forward, loss, backward, AdamW; bf16 autocast and the preset's dropout, as
``configs/cpu-small.toml`` trains), timed interleaved with the sampler.
``ratio`` > 1: one data worker keeps up with training. Both sides count the same
tokens (rows x context, padding included); ``real_token_fraction`` is the share of
non-padding tokens. The mixture is the ``configs/debug.toml`` one (fake-task episodes,
scene captions, scene dialogues, weights 2:1:1), built in a temporary directory; one
figure per source kind too (full mode; rows of that source only, same step baseline).
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import harness
import numpy as np
import torch

from gato import precision
from gato.config import load_run_config
from gato.data.mixture import Mixture, Split
from gato.loss import sequence_loss
from gato.model import Gato
from gato.sequence import TokenBatch, collate
from gato.tokenizers.text import TextTokenizer

TEXT_SIZE = 768


def source_batch(mixture: Mixture, k: int, draw: int) -> TokenBatch:
    """A batch of rows of source ``k`` only (seeded by ``draw``), padded to the context."""
    rows = []
    for r in range(mixture.batch_size):
        rng = np.random.default_rng([mixture.seed, int(Split.TRAIN), draw, r, k])
        rows.append(mixture.sources[k].row(Split.TRAIN, rng, mixture.context))
    return collate(rows, mixture.vocab, context=mixture.context)


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("data", __doc__.splitlines()[0])
    p.add_argument("--preset", default=None, help="model preset (default cpu-small; quick: debug)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = args.preset or ("debug" if args.quick else "cpu-small")
    repeats = 3 if args.quick else 10
    draws = 2 if args.quick else 4  # batches drawn per timed sampler repeat
    batch_size = 4 if args.quick else 8
    bf16 = not args.quick and precision.native_bf16(args.device)  # as dtype "auto" picks
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        items, episodes = (16, 4) if args.quick else (128, 16)
        root = harness.build_data_dir(Path(tmp), items, TEXT_SIZE, episodes=episodes)
        cfg = load_run_config(
            harness.REPO / "configs" / "debug.toml",
            [f"data.dir={root}", f"train.model={preset}", f"model.text_size={TEXT_SIZE}",
             "train.context=0", f"train.batch_size={batch_size}"],
        )  # fmt: skip
        mixture = Mixture(cfg, TextTokenizer.load(root / "text.model"))

    torch.manual_seed(0)
    model = Gato(cfg.model).to(args.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dev_type = torch.device(args.device).type
    fixed = mixture.train_batch(0, 0, batch_size).to(args.device)

    def train_step() -> None:
        with torch.autocast(dev_type, dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = sequence_loss(model(fixed), fixed).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    tokens = fixed.tokens.numel()  # rows x context, the same for every batch
    samplers: dict[str, int | None] = {"mixture": None}  # quick: the mixture only
    if not args.quick:
        samplers.update({f"{s.task}_only": k for k, s in enumerate(mixture.sources)})
    for name, k in samplers.items():
        drawn: list[TokenBatch] = []

        def sample(k: int | None = k, drawn: list[TokenBatch] = drawn) -> None:
            for _ in range(draws):
                step = len(drawn) + 1
                b = mixture.train_batch(step, 0, batch_size) if k is None else source_batch(
                    mixture, k, step
                )  # fmt: skip
                drawn.append(b)

        sync = harness.synchronizer(args.device)
        t = harness.interleaved({"sampler": sample, "train": train_step}, repeats, sync=sync)
        real = float(np.mean([(b.tokens != mixture.vocab.pad).float().mean() for b in drawn]))
        figures[name] = harness.compare(
            harness.Timed.of("sampler, 1 process", "tokens/s", draws * tokens, t["sampler"]),
            harness.Timed.of(f"{preset} training step", "tokens/s", tokens, t["train"]),
            real_token_fraction=real,
        )
    config = {
        "preset": preset,
        "batch_size": batch_size,
        "context": mixture.context,
        "tokens_per_batch": tokens,
        "dtype": "bf16" if bf16 else "fp32",
        "mixture_weights": [float(w) for w in mixture.weights],
        "mixture_tasks": [src.task for src in mixture.sources],
        "batches_per_sampler_repeat": draws,
        "text_size": TEXT_SIZE,
        "repeats": repeats,
        "sampler": "in the benchmark process, interleaved with the training steps",
        "train_threads": args.threads,
    }
    return harness.write_result(
        args.out, "data", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
