"""Compare how distinct the text pieces' embedding rows stay in trained checkpoints.

    python scripts/embedding_spread.py runs/cpu-generalist runs/cpu-generalist-ablations/text-only
    python scripts/embedding_spread.py --rows output RUN...   # the output head's rows

Counts how often each text piece occurs in the training split of the FIRST checkpoint's
dialogue sources (as training encodes them), buckets the pieces by that count, and prints
one markdown table: per bucket and checkpoint, the mean norm of the pieces' rows, of
their own parts (row minus the bucket's mean row) and their mean pairwise cosine
similarity (see ``gato/embedding_spread.py`` for why rows of rarely seen pieces can drift
together). ``--rows input`` (default) reads the token embedding, ``--rows output`` the
output head (the same matrix when the head is tied). ``--adam`` adds a table from each
checkpoint's optimizer state: how large the token embedding's gradients are per bucket
and how large a step Adam makes of them. Every checkpoint must use the same
SentencePiece model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gato.checkpoint import load_checkpoint
from gato.embedding_spread import (
    Bucket,
    adam_steps_by_count,
    embedding_adam_state,
    piece_counts,
    spread_by_count,
)
from gato.loading import load_trained
from gato.model import Gato
from gato.vl_metrics import training_dialogues


def fail(message: str) -> int:
    """One line on stderr; the exit code of a bad input."""
    print(f"embedding_spread: {message}", file=sys.stderr)
    return 2


def rows_of(model: Gato, which: str) -> torch.Tensor:
    """``(V, d)``: the token embedding (``input``) or the output head (``output``; the
    embedding itself when the head is tied)."""
    if which == "output" and model.head is not None:
        return model.head.weight
    return model.tok_emb.weight


def print_table(
    names: Sequence[str],
    columns: Sequence[str],
    tables: Sequence[Sequence[Bucket]],
    cells: Callable[[Bucket], str],
) -> None:
    """One markdown row per count bucket: its label and size, then ``cells`` of that
    bucket for each checkpoint (``tables[i]`` is checkpoint ``names[i]``'s buckets)."""
    heads = " | ".join(f"{n}: {c}" for n in names for c in columns)
    print(f"| times seen | pieces | {heads} |")
    print("| --- | --- | " + " | ".join("---" for _ in names for _ in columns) + " |")
    for k, row in enumerate(tables[0]):
        print(f"| {row.label} | {row.pieces:,} | " + " | ".join(cells(t[k]) for t in tables) + " |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or run directories")
    p.add_argument(
        "--rows",
        choices=("input", "output"),
        default="input",
        help="the token embedding's rows (input) or the output head's (output)",
    )
    p.add_argument(
        "--adam",
        action="store_true",
        help="then a second table from each checkpoint's optimizer state: per bucket the\n"
        "token embedding's gradient RMS sqrt(v) and Adam's step |m| / (sqrt(v) + eps)",
    )
    args = p.parse_args()
    try:
        trained = [load_trained(path) for path in args.checkpoints]
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    first = trained[0]
    text = first.tokenizers.text
    if text is None or first.run is None:
        return fail(f"{first.path} has no text model or run config")
    for t in trained[1:]:
        other = t.tokenizers.text
        if other is None or other.model_bytes != text.model_bytes:
            return fail(f"{t.path} uses another text model than {first.path}")
    sources = training_dialogues(first.run)
    if not sources:
        return fail(f"{first.path}'s run has no dialogue source on disk")
    counts = piece_counts((d for ds in sources.values() for d in ds), text)
    tables = [spread_by_count(rows_of(t.model, args.rows), counts) for t in trained]

    names = [path.name for path in args.checkpoints]  # the run (or step) directory's name
    print(f"{args.rows} rows; pieces counted in the training dialogues of {first.path} "
          f"({', '.join(sources)})\n")  # fmt: skip
    spread_cells = lambda r: f"{r.mean_norm:.2f} | {r.own_norm:.2f} | {r.mean_cosine:.2f}"  # noqa: E731
    print_table(names, ("norm", "own", "cosine"), tables, spread_cells)
    if not args.adam:
        return 0

    adam = []
    for t in trained:
        try:
            ckpt = load_checkpoint(t.path)
            if ckpt.optimizer is None or t.run is None:
                raise ValueError(f"{t.path} has no optimizer state or run config")
            m, v, eps = embedding_adam_state(ckpt.optimizer, t.model, t.run.optim)
        except (FileNotFoundError, ValueError) as exc:
            return fail(str(exc))
        adam.append(adam_steps_by_count(m, v, eps, counts))
    print(
        "\nAdam's state for the token embedding: gradient RMS sqrt(v), step |m| / (sqrt(v) + eps)\n"
    )
    print_table(names, ("gradient RMS", "step"), adam, lambda r: f"{r.grad_rms:.1e} | {r.step:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
