"""Print the README "Results" tables of a generalist run and draw its plots (the last,
one-task models trained with a change, is the table of ``docs/results/findings.md``).

    python scripts/results.py --run runs/cpu-generalist \
        --ablations runs/cpu-generalist-ablations --plots docs/results --prefix generalist

Reads only the JSON the evaluations wrote (see ``gato/results.py``); writes
``PREFIX-heldout-loss.png`` (held-out loss per task over training) and
``PREFIX-scores.png`` (expert-normalised score per control task).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gato import plots
from gato.results import control_rows, heldout_curve_keys, read_json, read_metrics, results_markdown


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run directory (eval.json inside)")
    p.add_argument("--ablations", type=Path, help="folder of the ablation runs")
    p.add_argument("--plots", type=Path, help="folder for the PNGs (default: no plots)")
    p.add_argument("--prefix", default="generalist", help="PNG file name prefix")
    args = p.parse_args()
    if not (args.run / "eval.json").is_file():
        p.error(f"{args.run / 'eval.json'} not found (run `gato eval --json` first)")
    try:
        print(results_markdown(args.run, args.ablations))
    except ValueError as e:  # a file that is not JSON, or an interrupted evaluation
        p.error(str(e))
    if args.plots is not None:
        rows = read_metrics(args.run / "metrics.jsonl")
        keys = heldout_curve_keys(rows)
        if keys:
            out = plots.curves(
                rows, keys, args.plots / f"{args.prefix}-heldout-loss.png",
                title="held-out loss per task (nats per target token)",
            )  # fmt: skip
            print(f"wrote {out}")
        scores = {
            t: r.normalised for t, r in control_rows(read_json(args.run / "eval.json")).items()
        }
        out = plots.score_bars(
            scores, args.plots / f"{args.prefix}-scores.png", title="one checkpoint, every task"
        )
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
