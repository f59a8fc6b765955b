"""Training throughput: tokens/s and the share of step time spent waiting for data.

For each CPU preset: one process with background data workers, one process loading
data in the training process (workers = 0; the ratio shows what the workers buy), and
(full mode) `torchrun --nproc_per_node=2` with the same per-process batch (tokens/s are
global, over both processes). Data: procedural scene captions and scene dialogues built
in a temporary directory, with a small SentencePiece model; the preset's text size is
set to that model's size (noted in the config).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

from gato import precision
from gato.config import Precision

REPO = Path(__file__).resolve().parents[1]
TEXT_SIZE = 768


def overrides(
    root: Path, preset: str, steps: int, batch: int, workers: int, dtype: str
) -> list[str]:
    return [
        f"data.dir={root}",
        f"train.model={preset}",
        f"model.text_size={TEXT_SIZE}",
        "train.context=0",
        f"train.steps={steps}",
        f"train.batch_size={batch}",
        f"train.dtype={dtype}",
        "train.eval_interval=0",
        "train.checkpoint_interval=0",
        "train.log_interval=1",
        f"data.workers={workers}",
        "data.mixture.0.kind=captions",
        "data.mixture.0.path=captions.npz",
        "data.mixture.0.task=captions2",
    ]


def timed_steps(run: Path, label: str, skip: int) -> tuple[harness.Timed, float]:
    """Tokens and seconds of each logged step after the first ``skip`` (warm-up), and the
    share of that time spent waiting for data."""
    from gato.metrics import read_metrics

    rows = [r for r in read_metrics(run / "metrics.jsonl") if "tokens_per_s" in r][skip:]
    seconds = tuple(r["step_time_s"] for r in rows)
    tokens = tuple(r["tokens_per_s"] * r["step_time_s"] for r in rows)
    wait = sum(r["data_wait_fraction"] * r["step_time_s"] for r in rows) / sum(seconds)
    return harness.Timed(label, "tokens/s", tokens, seconds), wait


def run_single(
    root: Path, out: Path, sets: list[str], threads: int, label: str, skip: int
) -> tuple[harness.Timed, float]:
    from gato.config import load_run_config
    from gato.train import train

    cfg = load_run_config(REPO / "configs" / "debug.toml", [*sets, f"train.threads={threads}"])
    train(cfg, out, progress=False)
    return timed_steps(out, label, skip)


def run_torchrun(out: Path, sets: list[str], skip: int) -> tuple[harness.Timed, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gato", "train", "--config", str(REPO / "configs" / "debug.toml"),
           "--out", str(out), "--no-progress", "--set", "train.threads=1"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"torchrun failed: {p.stderr[-2000:]}")
    return timed_steps(out, "torchrun, 2 processes", skip)


def main(argv: list[str] | None = None) -> dict:
    args = harness.parser("train", __doc__.splitlines()[0]).parse_args(argv)
    presets = ["debug"] if args.quick else ["cpu-small", "cpu-base"]
    steps, skip = (4, 1) if args.quick else (12, 2)
    batch = 4 if args.quick else 8
    # the dtype a real run would pick here ("auto"): emulated bf16 would measure nothing useful
    dtype = "fp32" if args.quick else precision.resolve(Precision.AUTO, args.device).value
    device = [] if args.device == "cpu" else [f"train.device={args.device}"]
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = harness.build_data_dir(Path(tmp), 16 if args.quick else 256, TEXT_SIZE)
        for preset in presets:
            with_workers = overrides(root, preset, steps, batch, 1, dtype) + device
            no_workers = overrides(root, preset, steps, batch, 0, dtype) + device
            w1, wait1 = run_single(
                root, root / f"{preset}-w1", with_workers, args.threads, "1 data worker", skip
            )
            w0, wait0 = run_single(
                root, root / f"{preset}-w0", no_workers, args.threads, "data in-process", skip
            )
            figures[f"{preset}_workers1_vs_workers0"] = harness.compare(
                w1, w0, data_wait_fraction=wait1, baseline_data_wait_fraction=wait0
            )
            if not args.quick:
                ddp, wait2 = run_torchrun(root / f"{preset}-ddp", with_workers, skip)
                figures[f"{preset}_torchrun2_vs_single"] = harness.compare(
                    ddp, w1, data_wait_fraction=wait2, baseline_data_wait_fraction=wait1
                )
    config = {"presets": presets, "steps": steps, "warmup_steps_skipped": skip,
              "batch_size_per_process": batch, "dtype": dtype, "text_size": TEXT_SIZE,
              "data": "scene captions", "threads_single": args.threads,
              "threads_per_rank_torchrun": 1,
              "tokens": "global (all processes) per optimiser step"}  # fmt: skip
    return harness.write_result(
        args.out, "train", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
