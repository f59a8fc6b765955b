"""Tokenizer throughput: continuous values/s, discrete values/s, image patches/s, text chars/s.

Each figure is also given relative to a plain numpy baseline over the same data
in the same run (a float->int cast, an int add, a float conversion of the same pixels,
and ``str.encode`` of the same text), so the ratio survives a noisy machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import harness
import numpy as np

from gato.tokenizers import Vocab
from gato.tokenizers.continuous import ContinuousTokenizer
from gato.tokenizers.discrete import DiscreteTokenizer
from gato.tokenizers.image import ImageTokenizer
from gato.tokenizers.text import TextTokenizer

DESIGN = Path(__file__).resolve().parents[1] / "DESIGN.md"


def main(argv: list[str] | None = None) -> dict:
    args = harness.parser("tokenization", __doc__.splitlines()[0]).parse_args(argv)
    n_values = 20_000 if args.quick else 2_000_000
    n_images = 16 if args.quick else 512
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    vocab = Vocab()
    figures: dict[str, dict] = {}

    def figure(unit: str, count: int, fn, baseline, base_label: str) -> dict:
        t = harness.interleaved({"tok": fn, "base": baseline}, repeats)
        return harness.compare(
            harness.Timed.of("tokenizer", unit, count, t["tok"]),
            harness.Timed.of(base_label, unit, count, t["base"]),
        )

    values = rng.standard_normal(n_values) * 10
    cont = ContinuousTokenizer(vocab)
    figures["continuous_encode"] = figure(
        "values/s", n_values, lambda: cont.encode(values), lambda: values.astype(np.int64),
        "numpy float->int cast",
    )  # fmt: skip

    ints = rng.integers(0, 1024, n_values)
    disc = DiscreteTokenizer(vocab)
    figures["discrete_encode"] = figure(
        "values/s", n_values, lambda: disc.encode(ints), lambda: ints + vocab.bin_offset,
        "numpy int add",
    )  # fmt: skip

    frames = rng.integers(0, 256, (n_images, 84, 84, 1), dtype=np.uint8)  # Atari-sized
    image = ImageTokenizer(patch_size=16)
    rows, cols = image.grid(84, 84)
    figures["image_encode_84x84"] = figure(
        "patches/s", n_images * rows * cols,
        lambda: [image.encode(f) for f in frames],
        lambda: [f.astype(np.float32) / 255.0 for f in frames],
        "numpy uint8->float of the frames",
    )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        text = DESIGN.read_text(encoding="utf-8")
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text * 3, encoding="utf-8")
        tok = TextTokenizer.train([corpus], Path(tmp) / "t.model", vocab_size=800)
    body = text * (1 if args.quick else 20)
    figures["text_encode"] = figure(
        "chars/s", len(body), lambda: tok.encode(body), lambda: body.encode("utf-8"),
        "str.encode(utf-8)",
    )  # fmt: skip

    config = {
        "values": n_values,
        "images": n_images,
        "image": "84x84x1, patch 16 (resize to 80)",
        "text_chars": len(body),
        "text_vocab": 800,
        "repeats": repeats,
        "ratio": "tokenizer rate / rate of the cheapest numpy pass over the same data",
    }
    return harness.write_result(
        args.out, "tokenization", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
