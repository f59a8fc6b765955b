"""Held-out loss per task of trained checkpoints, measured on the same windows.

    python scripts/heldout_loss.py runs/a/step_00010000 runs/b --batches 20
    python scripts/heldout_loss.py runs/a runs/b --seed 1 --json heldout.json

Training logs each task's held-out loss on ``train.eval_batches`` batches whose windows
are drawn from the run's ``train.seed``: runs trained with different seeds are measured
on different windows, and two batches of a Pong run hold about 230 action targets (a
standard error near 0.05 nats). This script measures every checkpoint on the windows one seed draws
(``--seed``; default: the first checkpoint's ``train.seed``) and as many batches as asked,
each through its own run's data config (so two checkpoints share windows when their runs
share data, context and batch size). It prints one markdown row per checkpoint and task:
the pooled loss (as training logs it), the standard error of the per-batch means, and
the frequency loss of the same targets (their entropy: the loss of a model that learned
only how often each token occurs, as training logs ``freq/<task>`` at step 0).
A checkpoint is a ``step_*`` directory, or a run directory for its newest one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import torch

from gato import precision
from gato.atomic import write_atomic
from gato.config import RunConfig
from gato.data.mixture import Mixture
from gato.loading import load_trained
from gato.train import heldout_batch_losses, heldout_frequency_losses, pooled_loss


@dataclasses.dataclass(frozen=True)
class HeldoutLoss:
    """One task's held-out loss in one checkpoint."""

    checkpoint: str
    step: int | None
    task: str
    loss: float  # pooled: summed cross-entropy / targets, as training logs it
    stderr: float  # of the per-batch mean losses (nan with one batch)
    frequency: float  # the same targets' entropy: predicting them without the context
    batches: int
    targets: int
    seed: int


def fail(message: str) -> int:
    """One line on stderr; the exit code of a bad input."""
    print(f"heldout_loss: {message}", file=sys.stderr)
    return 2


def pooled(sums: list[tuple[float, int]]) -> tuple[float, float]:
    """``(pooled loss, standard error of the per-batch means)`` of ``(sum, count)`` pairs."""
    loss = pooled_loss(sums)
    means = [s / n for s, n in sums if n]
    if len(means) < 2:
        return loss, math.nan
    mu = sum(means) / len(means)
    var = sum((m - mu) ** 2 for m in means) / (len(means) - 1)
    return loss, math.sqrt(var / len(means))


def measure(path: Path, batches: int, seed: int | None, data_dir: str | None) -> list[HeldoutLoss]:
    """Every task's held-out loss in the checkpoint at ``path`` (see the module docstring)."""
    trained = load_trained(path)
    run: RunConfig | None = trained.run
    if run is None:
        raise ValueError(f"{trained.path} holds no run config (no data to draw windows from)")
    seed = run.train.seed if seed is None else seed
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, seed=seed))
    if data_dir is not None:
        run = dataclasses.replace(run, data=dataclasses.replace(run.data, dir=data_dir))
    try:
        mixture = Mixture(run, trained.tokenizers.text)
    except FileNotFoundError as exc:  # it names the entry and path
        raise FileNotFoundError(
            f"{trained.path}: data not found: {exc} "
            "(run from the training directory or pass --data-dir)"
        ) from None
    autocast = precision.autocast(precision.resolve(run.train.dtype, "cpu"), "cpu")
    sums = heldout_batch_losses(trained.model, mixture, batches, autocast, torch.device("cpu"))
    freq = heldout_frequency_losses(mixture, batches)
    step = trained.path.name.removeprefix("step_") if trained.path else ""
    rows = []
    for task, per_batch in sums.items():
        loss, stderr = pooled(per_batch)
        rows.append(HeldoutLoss(
            checkpoint=str(path), step=int(step) if step.isdigit() else None, task=task,
            loss=loss, stderr=stderr, frequency=freq[task], batches=batches,
            targets=sum(n for _, n in per_batch), seed=seed,
        ))  # fmt: skip
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or run directories")
    p.add_argument("--batches", type=int, default=20, help="held-out batches per task (20)")
    p.add_argument(
        "--seed", type=int, help="the seed that draws the windows (the first run's train.seed)"
    )
    p.add_argument("--data-dir", help="read every run's data from here, not its data.dir")
    p.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    p.add_argument("--json", type=Path, help="also write the rows as a JSON list here")
    args = p.parse_args()
    if args.batches < 1:
        return fail(f"--batches must be at least 1, got {args.batches}")
    torch.set_num_threads(args.threads)
    rows: list[HeldoutLoss] = []
    seed = args.seed
    try:
        for path in args.checkpoints:
            rows += measure(path, args.batches, seed, args.data_dir)
            seed = rows[-1].seed if rows else seed  # the first run's seed for all
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    print(
        "| checkpoint | step | task | held-out loss (nats) | standard error "
        "| frequency loss (nats) | targets |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r.checkpoint} | {r.step if r.step is not None else '-'} | {r.task} "
              f"| {r.loss:.4f} | {r.stderr:.4f} | {r.frequency:.4f} | {r.targets:,} |")  # fmt: skip
    print(f"\n{args.batches} batches per task, windows drawn with seed {seed}")
    if args.json:
        text = json.dumps([dataclasses.asdict(r) for r in rows], indent=1) + "\n"
        write_atomic(args.json, text.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
