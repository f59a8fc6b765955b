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

    values = rng.standard_normal(n_values) * 10
    cont = ContinuousTokenizer(vocab)
    t = harness.repeat(lambda: cont.encode(values), repeats)
    base = harness.repeat(lambda: values.astype(np.int64), repeats)
    figures["continuous_encode"] = _rate(t, n_values, "values/s", base)

    ints = rng.integers(0, 1024, n_values)
    disc = DiscreteTokenizer(vocab)
    t = harness.repeat(lambda: disc.encode(ints), repeats)
    base = harness.repeat(lambda: ints + vocab.bin_offset, repeats)
    figures["discrete_encode"] = _rate(t, n_values, "values/s", base)

    frames = rng.integers(0, 256, (n_images, 84, 84, 1), dtype=np.uint8)  # Atari-sized
    image = ImageTokenizer(patch_size=16)
    t = harness.repeat(lambda: [image.encode(f) for f in frames], repeats)
    base = harness.repeat(lambda: [f.astype(np.float32) / 255.0 for f in frames], repeats)
    patches = n_images * image.grid(84, 84)[0] * image.grid(84, 84)[1]
    figures["image_encode_84x84"] = _rate(t, patches, "patches/s", base, n_images, "frames/s")

    with tempfile.TemporaryDirectory() as tmp:
        text = DESIGN.read_text(encoding="utf-8")
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text * 3, encoding="utf-8")
        tok = TextTokenizer.train([corpus], Path(tmp) / "t.model", vocab_size=800)
    body = text * (1 if args.quick else 20)
    t = harness.repeat(lambda: tok.encode(body), repeats)
    base = harness.repeat(lambda: body.encode("utf-8"), repeats)
    figures["text_encode"] = _rate(t, len(body), "chars/s", base)

    config = {
        "values": n_values,
        "images": n_images,
        "image": "84x84x1, patch 16 (resize to 80)",
        "text_chars": len(body),
        "text_vocab": 800,
        "repeats": repeats,
    }
    result = harness.write_result(args.out, "tokenization", config, figures, args.device)
    for name, fig in figures.items():
        print(
            f"{name:22s} {fig['rate']:>14,.0f} {fig['unit']:10s} "
            f"({fig['vs_numpy_baseline']:.3f}x of a bare numpy pass)"
        )
    return result


def _rate(t: dict, n: int, unit: str, base: dict, n2: int | None = None, unit2: str = "") -> dict:
    fig = {
        "rate": n / t["median"],
        "unit": unit,
        "seconds": t,
        "baseline_seconds": base,
        # < 1: how much slower than the cheapest numpy pass over the same data.
        "vs_numpy_baseline": base["median"] / t["median"],
    }
    if n2 is not None:
        fig[unit2.replace("/", "_per_")] = n2 / t["median"]
    return fig


if __name__ == "__main__":
    main(sys.argv[1:])
