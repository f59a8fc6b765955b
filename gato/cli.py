"""The ``gato`` command line.

Every subcommand is one ``_add_<name>(subparsers)`` function that declares its
arguments and sets ``func`` to its handler. Errors the user can fix (bad input,
missing files, bad config) end in one line on stderr and exit code 2; anything
else is an internal error (exit 1). ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gato import __version__

# Exceptions that mean "the user's input is wrong": one line, exit 2.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, KeyError)


def _add_tokenize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="show how values, text and images become token ids (and decode them back)",
        description="Tokenize inputs with the project's tokenizers and decode them back, "
        "to see the shared id space at work.",
    )
    p.add_argument("--values", help="comma-separated floats, tokenized with mu-law companding")
    p.add_argument("--discrete", help="comma-separated integers in [0, bins)")
    p.add_argument("--text", help="text to encode (needs --text-model)")
    p.add_argument("--text-model", help="path to a SentencePiece .model file")
    p.add_argument("--image", help="path to an image file (PNG/JPEG)")
    p.add_argument("--patch-size", type=int, default=16, help="image patch side (default 16)")
    p.add_argument("--text-size", type=int, default=32000, help="number of text ids T")
    p.set_defaults(func=_run_tokenize)


def _run_tokenize(args: argparse.Namespace) -> int:
    import numpy as np

    from gato.tokenizers.continuous import ContinuousTokenizer
    from gato.tokenizers.discrete import DiscreteTokenizer
    from gato.tokenizers.vocab import Vocab

    if not any([args.values, args.discrete, args.text, args.image]):
        raise ValueError("nothing to tokenize: give --values, --discrete, --text or --image")
    vocab = Vocab(text_size=args.text_size)
    if args.values:
        values = np.array(_parse_list(args.values, float, "--values"), dtype=np.float64)
        tok = ContinuousTokenizer(vocab)
        ids = tok.encode(values)
        decoded = [float(f"{v:.4g}") for v in tok.decode(ids)]
        print(f"continuous {values.tolist()} -> {ids.tolist()} -> {decoded}")
    if args.discrete:
        ints = np.array(_parse_list(args.discrete, int, "--discrete"), dtype=np.int64)
        tok = DiscreteTokenizer(vocab)
        ids = tok.encode(ints)
        print(f"discrete {ints.tolist()} -> {ids.tolist()} -> {tok.decode(ids).tolist()}")
    if args.text:
        if not args.text_model:
            raise ValueError(
                "--text needs --text-model PATH (train one with `gato data tokenizer`)"
            )
        from gato.tokenizers.text import TextTokenizer

        tok = TextTokenizer.load(args.text_model)
        ids = tok.encode(args.text)
        print(f"text {args.text!r} -> {ids} -> {tok.decode(ids)!r}")
    if args.image:
        from gato.tokenizers.image import ImageTokenizer, load_image

        img = load_image(args.image)
        patches = ImageTokenizer(patch_size=args.patch_size).encode(img)
        print(
            f"image {args.image} {img.shape} -> {patches.shape[0]} patches of "
            f"{patches.shape[1:]} in [{patches.min():.3f}, {patches.max():.3f}]"
        )
    return 0


def _parse_list(text: str, kind: type, flag: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(
            f"{flag}: expected comma-separated {kind.__name__}s, got {text!r}"
        ) from None


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run benchmarks from bench/ and write one JSON of figures each",
        description="Run the benchmarks in the repository's bench/ folder (all, or the NAMEs "
        "given). Each prints its table and writes RESULTS/NAME.json with the machine, the "
        "config and the figures; speed claims are ratios measured side by side in one run.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for smoke tests")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--results", type=Path, help="output folder (default bench/results)")
    p.set_defaults(func=_run_bench)


def bench_dir() -> Path:
    """The repository's bench/ folder (benchmarks run from a source checkout)."""
    import gato

    found = Path(gato.__file__).resolve().parents[1] / "bench"
    if not (found / "harness.py").is_file():
        raise FileNotFoundError(
            "gato bench runs from a source checkout: no bench/ folder next to the gato package "
            f"({found})"
        )
    return found


def _run_bench(args: argparse.Namespace) -> int:
    import subprocess

    folder = bench_dir()
    known = sorted(p.stem for p in folder.glob("*.py") if p.stem != "harness")
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(known)}")
    results = args.results or folder / "results"
    failed = []
    for name in names:
        out = results / f"{name}.json"
        cmd = [
            sys.executable,
            str(folder / f"{name}.py"),
            "--device",
            args.device,
            "--out",
            str(out),
        ]
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        if subprocess.run(cmd + (["--quick"] if args.quick else [])).returncode != 0:
            failed.append(name)
        else:
            print(f"   wrote {out}")
    if failed:
        raise RuntimeError(f"benchmark(s) failed: {', '.join(failed)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gato",
        description="gato-agent: one transformer, one token stream; plays gymnasium games, "
        "captions images and chats.",
    )
    parser.add_argument("--version", action="version", version=f"gato-agent {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_tokenize(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gato: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"gato: error: {msg}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into a line
        if args.debug:
            raise
        print(
            f"gato: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
