"""Compare how distinct the text pieces' input embeddings stay in trained checkpoints.

    python scripts/embedding_spread.py runs/cpu-generalist runs/cpu-generalist-ablations/text-only

Counts how often each text piece occurs in the training split of the FIRST checkpoint's
dialogue sources (as training encodes them), buckets the pieces by that count, and prints
one markdown table: per bucket and checkpoint, the mean norm of the pieces' input
embedding rows and their mean pairwise cosine similarity (see ``gato/embedding_spread.py``
for why rows of rarely seen pieces can drift together). Every checkpoint must use the
same SentencePiece model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gato.embedding_spread import piece_counts, spread_by_count
from gato.loading import load_trained
from gato.vl_metrics import training_dialogues


def fail(message: str) -> int:
    """One line on stderr; the exit code of a bad input."""
    print(f"embedding_spread: {message}", file=sys.stderr)
    return 2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or run directories")
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
    tables = [spread_by_count(t.model.tok_emb.weight, counts) for t in trained]

    names = [path.name for path in args.checkpoints]  # the run (or step) directory's name
    print(f"pieces counted in the training dialogues of {first.path} ({', '.join(sources)})\n")
    print("| times seen | pieces | " + " | ".join(f"{n}: norm | {n}: cosine" for n in names) + " |")
    print("| --- | --- | " + " | ".join("--- | ---" for _ in names) + " |")
    for k, row in enumerate(tables[0]):
        cells = " | ".join(f"{t[k].mean_norm:.2f} | {t[k].mean_cosine:.2f}" for t in tables)
        print(f"| {row.label} | {row.pieces:,} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
