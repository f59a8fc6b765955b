"""Average the weights of saved checkpoints into a new checkpoint (gato.averaging).

    python scripts/average_checkpoints.py runs/pong --out runs/pong-avg
    python scripts/average_checkpoints.py runs/a/step_00012000 runs/a/step_00012500 --out runs/a-avg

A run directory stands for all the checkpoints it keeps (``train.keep``, 3 by default);
a ``step_*`` directory for itself. The average is written as OUT/step_N, N the newest
input's step, with that input's config, optimizer and data position, so ``gato eval``,
``gato play`` and ``gato train --resume`` take it as they take any checkpoint. An
existing OUT/step_N is kept unless --force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gato.averaging import average_checkpoints
from gato.checkpoint import checkpoint_step, list_checkpoints, load_checkpoint, save_checkpoint


def fail(message: str) -> int:
    """One line on stderr; the exit code of a bad input."""
    print(f"average_checkpoints: {message}", file=sys.stderr)
    return 2


def expand(paths: list[Path]) -> list[Path]:
    """Checkpoint directories: a run directory becomes its kept checkpoints, oldest first;
    any other path is taken as a checkpoint, which :func:`load_checkpoint` then checks."""
    found = [p for path in paths for p in list_checkpoints(path) or [path]]
    if len(set(p.resolve() for p in found)) != len(found):
        raise ValueError("a checkpoint is given twice (a run directory stands for all of its)")
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or run directories")
    p.add_argument("--out", type=Path, required=True, help="run directory to write into")
    p.add_argument("--force", action="store_true", help="replace an existing OUT/step_N")
    args = p.parse_args()
    try:
        paths = expand(args.checkpoints)
        # the output's step is the newest input's: refuse an existing OUT/step_N from the
        # manifests, before minutes of loading weights
        step = max(checkpoint_step(path) for path in paths)
        target = args.out / f"step_{step:08d}"
        if target.exists() and not args.force:
            return fail(f"{target} exists; pass --force to replace it")
        averaged = average_checkpoints([load_checkpoint(path) for path in paths])
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    if averaged.state["step"] != step:
        return fail(f"the inputs' manifests say step {step}, their state.json files do not")
    # keep=0: never prune, so nothing already in OUT is deleted
    written = save_checkpoint(args.out, step, averaged, keep=0)
    print(f"{written}: the mean of {len(paths)} checkpoints' weights")
    for path in paths:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
