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

REPO = Path(__file__).resolve().parents[1]
TEXT_SIZE = 768


def build_data(root: Path, n: int) -> None:
    from gato.data.captions import save_caption_set, scene_arrays
    from gato.data.dialogues import scene_dialogues, write_chat_jsonl
    from gato.tokenizers.text import TextTokenizer

    caps = scene_arrays("train", n, seed=0, image_size=64)
    save_caption_set(root / "captions.npz", caps)
    dialogues = scene_dialogues(n, seed=0)
    write_chat_jsonl(root / "chat.jsonl", dialogues)
    lines = [str(c) for c in caps["captions"]] + [m["content"] for d in dialogues for m in d]
    lines += (REPO / "DESIGN.md").read_text(encoding="utf-8").splitlines()
    (root / "corpus.txt").write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    TextTokenizer.train([root / "corpus.txt"], root / "text.model", vocab_size=TEXT_SIZE)


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


def figures_from(run: Path, skip: int) -> dict:
    from gato.metrics import read_metrics

    rows = [r for r in read_metrics(run / "metrics.jsonl") if "tokens_per_s" in r][skip:]
    t = sum(r["step_time_s"] for r in rows)
    tokens = sum(r["tokens_per_s"] * r["step_time_s"] for r in rows)
    wait = sum(r["data_wait_fraction"] * r["step_time_s"] for r in rows)
    return {"tokens_per_s": tokens / t, "data_wait_fraction": wait / t, "steps": len(rows)}


def run_single(root: Path, out: Path, sets: list[str], threads: int) -> dict:
    from gato.config import load_run_config
    from gato.train import train

    cfg = load_run_config(REPO / "configs" / "debug.toml", [*sets, f"train.threads={threads}"])
    train(cfg, out, progress=False)
    return figures_from(out, skip=2)


def run_torchrun(out: Path, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gato", "train", "--config", str(REPO / "configs" / "debug.toml"),
           "--out", str(out), "--no-progress", "--set", "train.threads=1"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"torchrun failed: {p.stderr[-2000:]}")
    return figures_from(out, skip=2)


def main(argv: list[str] | None = None) -> dict:
    args = harness.parser("train", __doc__.splitlines()[0]).parse_args(argv)
    presets = ["debug"] if args.quick else ["cpu-small", "cpu-base"]
    steps = 6 if args.quick else 30
    batch = 4 if args.quick else 8
    dtype = "fp32" if args.quick else "bf16"
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_data(root, 32 if args.quick else 256)
        for preset in presets:
            f: dict = {}
            with_workers = overrides(root, preset, steps, batch, 1, dtype)
            f["single_workers1"] = run_single(
                root, root / f"{preset}-w1", with_workers, args.threads
            )
            no_workers = overrides(root, preset, steps, batch, 0, dtype)
            f["single_workers0"] = run_single(root, root / f"{preset}-w0", no_workers, args.threads)
            f["workers1_vs_workers0_tokens_ratio"] = (
                f["single_workers1"]["tokens_per_s"] / f["single_workers0"]["tokens_per_s"]
            )
            if not args.quick:
                f["torchrun2"] = run_torchrun(root / f"{preset}-ddp", with_workers)
                f["torchrun2_vs_single_tokens_ratio"] = (
                    f["torchrun2"]["tokens_per_s"] / f["single_workers1"]["tokens_per_s"]
                )
            figures[preset] = f
            print(preset, f, flush=True)
    config = {"presets": presets, "steps": steps, "batch_size_per_process": batch,
              "dtype": dtype, "text_size": TEXT_SIZE, "data": "scene captions + scene dialogues",
              "threads_single": args.threads, "threads_per_rank_torchrun": 1}  # fmt: skip
    return harness.write_result(args.out, "train", config, figures, args.device)


if __name__ == "__main__":
    main()
