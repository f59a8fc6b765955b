"""Draw one metric from several training runs on one plot, for findings that compare runs.

    python scripts/compare_curves.py --key eval/pong --out docs/results/x/heldout-loss.png \\
        --curve "action dropout 0.5=runs/a/metrics.jsonl" \\
        --curve "action dropout 0=runs/b/metrics.jsonl" \\
        --hline "CNN probe (0.416)=0.416" --title "Gato on pong-ppo demonstrations"

Each ``--curve LABEL=FILE`` reads a ``metrics.jsonl`` (or a copy of its held-out rows, such
as the ``heldout.jsonl`` files under ``docs/results``); rows without ``--key`` are skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gato import plots
from gato.data.jsonl import iter_jsonl


def labelled(text: str) -> tuple[str, str]:
    """``"LABEL=VALUE"`` -> ``(LABEL, VALUE)``; the label may not be empty."""
    label, sep, value = text.rpartition("=")
    if not sep or not label or not value:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    return label, value


def read_rows(path: Path, label: str, key: str, x: str, x_from: float = 0.0) -> list[dict]:
    """``{x: .., label: ..}`` rows from the ``key`` column of the JSON-lines file ``path``,
    from ``x >= x_from`` on."""
    rows = [
        {x: row[x], label: row[key]}
        for _, row in iter_jsonl(path)
        if key in row and x in row and row[x] >= x_from
    ]
    if not rows:
        raise ValueError(f"{path}: no row has {key!r} and {x!r} >= {x_from:g}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--curve",
        type=labelled,
        action="append",
        required=True,
        metavar="LABEL=FILE",
        help="a run's metrics (repeatable, drawn in order)",
    )
    p.add_argument("--key", required=True, help="the metric to draw, e.g. eval/pong")
    p.add_argument("--x", default="step", help="the x column (default: step)")
    p.add_argument(
        "--hline",
        type=labelled,
        action="append",
        default=[],
        metavar="LABEL=Y",
        help="a labelled horizontal line (repeatable)",
    )
    p.add_argument(
        "--x-from",
        type=float,
        default=0.0,
        help="skip rows before this x (step 0's untrained loss squeezes the rest)",
    )
    p.add_argument("--title", default="")
    p.add_argument("--y-label", default="", help="y-axis label (default: none)")
    p.add_argument("--log-y", action="store_true", help="logarithmic y axis")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)
    labels = [label for label, _ in args.curve]
    if len(set(labels)) != len(labels):
        p.error("each --curve needs its own label")
    try:
        hlines = {label: float(y) for label, y in args.hline}
    except ValueError as e:
        p.error(f"--hline: {e}")
    rows: list[dict] = []
    for label, file in args.curve:
        try:
            rows += read_rows(Path(file), label, args.key, args.x, args.x_from)
        except (OSError, ValueError) as e:
            print(f"compare_curves: {e}", file=sys.stderr)
            return 2
    out = plots.curves(rows, labels, args.out, x=args.x, title=args.title,
                       log_y=args.log_y, y_label=args.y_label, hlines=hlines)  # fmt: skip
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
