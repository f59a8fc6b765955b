"""The ``gato data`` builders: scenes, captions, corpus, dialogues, tokenizer.

Each builder writes one artifact folder under the data directory with its own
manifest (``gato.data.artifacts``), shows a progress bar on a terminal (none when
stderr is piped, so logs and error messages stay readable), is deterministic given
its seed, and skips the work when the artifact is already built with the same
parameters (``force=True`` rebuilds). Sources that are not installed are skipped
with a message naming the apt package, unless the user asked for them by name, in
which case it is an error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gato.data import captions, corpus, dialogues, scenes, sources
from gato.data.artifacts import Artifact

# tqdm's ``disable=None``: draw bars only when stderr is a terminal.
QUIET_IF_PIPED = None


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _skip(art: Artifact) -> dict:
    _say(f"{art.name}: already built in {art.dir} (use --force to rebuild)")
    return art.manifest()


def _select(
    builders: dict, names: Sequence[str] | None, kind: str
) -> tuple[dict[str, Path | None], dict[str, str]]:
    """Resolve which sources to use: {name: path} available, {name: install hint} missing.

    ``names=None`` means every source that is installed; a list (possibly empty) means
    exactly those, and a missing one is an error naming its apt package.
    """
    unknown = sorted(set(names or ()) - set(builders))
    if unknown:
        raise ValueError(f"unknown {kind} source(s) {unknown}; choose from {sorted(builders)}")
    chosen = list(builders) if names is None else list(names)
    found, missing = {}, {}
    for name in chosen:
        source = builders[name][0]
        if source is None:
            found[name] = None
            continue
        if names is not None:  # asked for by name: a missing package is an error
            found[name] = source.require()
            continue
        path = source.locate()
        if path is None:
            missing[name] = f"apt-get install {source.package}"
            _say(
                f"{kind}: skipping {name!r} (not installed): `{missing[name]}` "
                "or `make data-sources` for all sources"
            )
        else:
            found[name] = path
    return found, missing


# ---------------------------------------------------------------- scenes


@dataclass
class SceneCounts:
    train: int = 20_000
    test: int = 1_000
    heldout: int = 1_000


def build_scenes(
    data_dir: Path, counts: SceneCounts, seed: int = 0, image_size: int = 64, force: bool = False
) -> dict:
    """``scenes/{train,test,heldout}.npz`` (images, captions, scene JSON) and a preview."""
    art = Artifact(Path(data_dir), "scenes")
    params = {
        "counts": vars(counts),
        "seed": seed,
        "image_size": image_size,
        "grammar": "v1",
        "heldout_pairs": sorted(scenes.HELDOUT_PAIRS),
    }
    if not force and art.is_built(params):
        return _skip(art)
    t0 = time.time()
    stats, files = {}, []
    total = sum(vars(counts).values())
    with tqdm(total=total, desc="scenes", unit="img", disable=QUIET_IF_PIPED) as bar:
        for split in scenes.SPLITS:
            n = getattr(counts, split)
            arrays = captions.scene_arrays(split, n, seed, image_size, progress=bar)
            captions.save_caption_set(art.dir / f"{split}.npz", arrays)
            files.append(f"{split}.npz")
            stats[split] = {
                "images": n,
                "caption_words": int(sum(len(c.split()) for c in arrays["captions"])),
            }
    _save_preview(art.dir / "preview.png", seed, image_size)
    files.append("preview.png")
    return art.write_manifest(params, files, stats, time.time() - t0)


def _save_preview(path: Path, seed: int, image_size: int, n: int = 8) -> None:
    """An 8x8 contact sheet of the train split, for a person to look at."""
    from PIL import Image

    def tile(i: int) -> np.ndarray:  # a grey 1-pixel frame so tiles are told apart
        img = scenes.example("train", i, seed, image_size).image
        return np.pad(img, ((1, 1), (1, 1), (0, 0)), constant_values=110)

    rows = [np.concatenate([tile(r * n + c) for c in range(n)], axis=1) for r in range(n)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


# ---------------------------------------------------------------- captions


def build_captions(
    data_dir: Path, jsonl_files: Sequence[str] = (), fashion: bool = True, force: bool = False
) -> dict:
    """Fashion-MNIST caption sets (train/test kept apart) and users' caption JSONL files.

    Users' files are validated (every line, every image path) and merged into
    ``captions/user.jsonl`` with absolute image paths; images stay where they are.
    """
    art = Artifact(Path(data_dir), "captions")
    fm_path = None
    missing = {}
    if fashion:
        fm_path = sources.FASHION_MNIST.locate()
        if fm_path is None:
            missing["fashion-mnist"] = f"apt-get install {sources.FASHION_MNIST.package}"
            _say(
                f"captions: skipping fashion-mnist (not installed): `{missing['fashion-mnist']}` "
                "or `make data-sources`"
            )
    user = [str(Path(f).resolve()) for f in jsonl_files]
    params = {"fashion_mnist": fm_path is not None, "user_jsonl": user}
    if not force and art.is_built(params):
        return _skip(art)
    if fm_path is None and not user:
        raise FileNotFoundError(
            "no caption source: install Fashion-MNIST (`apt-get install dataset-fashion-mnist`) "
            "or pass --jsonl FILE; procedural scene captions are built by `gato data scenes`"
        )
    t0 = time.time()
    # Users' files are read (and every line checked) before the slow part.
    records = [r for f in user for r in captions.read_caption_jsonl(f)]
    stats, files = {"missing": missing}, []
    if fm_path is not None:
        for split in ("train", "test"):
            images, labels = captions.read_fashion_mnist(fm_path, split)
            caps = np.array(
                [
                    captions.fashion_caption(int(y))
                    for y in tqdm(labels, desc=f"fashion-mnist {split}", disable=QUIET_IF_PIPED)
                ]
            )
            captions.save_caption_set(
                art.dir / f"fashion_mnist_{split}.npz",
                {"images": images, "captions": caps, "labels": labels},
            )
            files.append(f"fashion_mnist_{split}.npz")
            stats[f"fashion_mnist_{split}"] = {
                "images": len(images),
                "image_shape": list(images.shape[1:]),
            }
        stats["fashion_mnist_classes"] = list(captions.FASHION_CLASSES)
    if user:
        from gato.data.jsonl import write_jsonl

        write_jsonl(
            art.dir / "user.jsonl", ({"image": str(r.image), "caption": r.caption} for r in records)
        )
        files.append("user.jsonl")
        stats["user"] = {"images": len(records), "files": len(user)}
    return art.write_manifest(params, files, stats, time.time() - t0)


# ---------------------------------------------------------------- corpus


def build_corpus(
    data_dir: Path,
    text_files: Sequence[str] = (),
    names: Sequence[str] | None = None,
    force: bool = False,
) -> dict:
    """``corpus/<source>.txt``, one paragraph per line, for every available source."""
    art = Artifact(Path(data_dir), "corpus")
    builders = corpus.default_builders()
    found, missing = _select(builders, names, "corpus")
    user = [str(Path(f).resolve()) for f in text_files]
    params = {"sources": sorted(found), "user_text": user}
    if not force and art.is_built(params):
        return _skip(art)
    t0 = time.time()
    user_lines = list(corpus.text_file_lines(user))  # a bad user file fails before the slow part
    stats, files = {"missing": missing}, []
    for name in tqdm(sorted(found), desc="corpus", unit="source", disable=QUIET_IF_PIPED):
        stats[name] = corpus.write_lines(art.dir / f"{name}.txt", builders[name][1](found[name]))
        files.append(f"{name}.txt")
    if user:
        stats["user"] = corpus.write_lines(art.dir / "user.txt", user_lines)
        files.append("user.txt")
    stats["total_mb"] = round(sum(s["bytes"] for k, s in stats.items() if k != "missing") / 1e6, 2)
    return art.write_manifest(params, files, stats, time.time() - t0)


# ---------------------------------------------------------------- dialogues


def build_dialogues(
    data_dir: Path,
    chat_files: Sequence[str] = (),
    names: Sequence[str] | None = None,
    wordnet_limit: int = 20_000,
    scene_dialogues: int = 5_000,
    seed: int = 0,
    force: bool = False,
) -> dict:
    """``dialogues/<source>.jsonl`` in the chat format, plus users' chat files (validated)."""
    art = Artifact(Path(data_dir), "dialogues")
    builders = dialogues.default_builders(wordnet_limit, scene_dialogues, seed)
    found, missing = _select(builders, names, "dialogues")
    user = [str(Path(f).resolve()) for f in chat_files]
    params = {
        "sources": sorted(found),
        "user_chat": user,
        "wordnet_limit": wordnet_limit,
        "scene_dialogues": scene_dialogues,
        "seed": seed,
    }
    if not force and art.is_built(params):
        return _skip(art)
    t0 = time.time()
    stats, files = {"missing": missing}, []
    user_dialogues = [d for f in user for d in dialogues.read_chat_jsonl(f)]  # checked first
    todo = {name: (lambda n=name: builders[n][1](found[n])) for name in sorted(found)}
    if user:
        todo["user"] = lambda: user_dialogues
    for name, make in tqdm(todo.items(), desc="dialogues", unit="source", disable=QUIET_IF_PIPED):
        ds = make()
        dialogues.write_chat_jsonl(art.dir / f"{name}.jsonl", ds)
        files.append(f"{name}.jsonl")
        stats[name] = {
            "dialogues": len(ds),
            "turns": sum(len(d) for d in ds),
            "chars": sum(len(m["content"]) for d in ds for m in d),
        }
    return art.write_manifest(params, files, stats, time.time() - t0)


# ---------------------------------------------------------------- tokenizer


def tokenizer_lines(data_dir: Path) -> dict[str, list[str]]:
    """All built text, per source, as training lines: corpus paragraphs, dialogue turns
    rendered with the chat format's role prefixes, and captions."""
    from gato.tokenizers import chat

    data_dir = Path(data_dir)
    out: dict[str, list[str]] = {}
    for path in sorted((data_dir / "corpus").glob("*.txt")):
        out[f"corpus/{path.stem}"] = path.read_text(encoding="utf-8").splitlines()
    for path in sorted((data_dir / "dialogues").glob("*.jsonl")):
        lines = []
        for d in dialogues.read_chat_jsonl(path):
            for m in d:
                prefix = chat.ROLE_PREFIX.get(m["role"], chat.ASSISTANT_CUE + " ")
                lines += (prefix + m["content"]).splitlines()
        out[f"dialogues/{path.stem}"] = lines
    for path in sorted((data_dir / "scenes").glob("*.npz")) + sorted(
        (data_dir / "captions").glob("*.npz")
    ):
        if path.parent.name == "scenes" and path.stem != "train":
            continue  # keep held-out captions out of everything trained
        caps = captions.load_caption_set(path)["captions"]
        out[f"{path.parent.name}/{path.stem}"] = [str(c) for c in np.unique(caps)]
    user_caps = data_dir / "captions" / "user.jsonl"
    if user_caps.is_file():
        from gato.data.jsonl import iter_jsonl

        out["captions/user"] = [obj["caption"] for _, obj in iter_jsonl(user_caps)]
    return {k: [ln for ln in v if ln.strip()] for k, v in out.items() if v}


def sample_lines(
    per_source: dict[str, list[str]], budget_bytes: int, seed: int
) -> dict[str, list[str]]:
    """Share a byte budget between sources: small sources are taken whole, the rest is split
    evenly among the large ones (a random, seeded subset of their lines)."""
    rng = np.random.default_rng([seed, 3])
    sizes = {k: sum(len(ln.encode()) + 1 for ln in v) for k, v in per_source.items()}
    left, remaining, share = budget_bytes, sorted(sizes, key=sizes.get), {}
    while remaining:
        fair = left / len(remaining)
        k = remaining.pop(0)
        share[k] = min(sizes[k], int(fair))
        left -= share[k]
    out = {}
    for k, lines in per_source.items():
        if share[k] >= sizes[k]:
            out[k] = lines
            continue
        picked, used = [], 0
        for i in rng.permutation(len(lines)):
            if used >= share[k]:
                break
            picked.append(lines[int(i)])
            used += len(lines[int(i)].encode()) + 1
        out[k] = picked
    return out


def build_tokenizer(
    data_dir: Path,
    vocab_size: int = 8000,
    sample_mb: float = 20.0,
    seed: int = 0,
    force: bool = False,
) -> dict:
    """Train ``tokenizer/text.model`` on a sample of all built text (see ``sample_lines``)."""
    from gato.tokenizers.text import TextTokenizer

    data_dir = Path(data_dir)
    art = Artifact(data_dir, "tokenizer")
    inputs = _input_stamps(data_dir)
    params = {"vocab_size": vocab_size, "sample_mb": sample_mb, "seed": seed, "inputs": inputs}
    if not force and art.is_built(params):
        return _skip(art)
    t0 = time.time()
    per_source = tokenizer_lines(data_dir)
    if not per_source:
        raise FileNotFoundError(
            f"no text in {data_dir}: build some first (`gato data corpus`, `gato data dialogues`, "
            "`gato data scenes`) or run `gato data all`"
        )
    sample = sample_lines(per_source, int(sample_mb * 1e6), seed)
    art.dir.mkdir(parents=True, exist_ok=True)
    sample_path = art.dir / "sample.txt"
    with sample_path.open("w", encoding="utf-8") as f:
        for k in sorted(sample):
            for ln in sample[k]:
                f.write(ln + "\n")
    _say(
        f"tokenizer: training a {vocab_size}-piece unigram model on "
        f"{sample_path.stat().st_size / 1e6:.1f} MB ..."
    )
    tok = TextTokenizer.train([sample_path], art.dir / "text.model", vocab_size, seed=seed)
    sample_path.unlink()
    stats = {
        "sample_bytes": {
            k: sum(len(ln.encode()) + 1 for ln in v) for k, v in sorted(sample.items())
        },
        "source_bytes": {
            k: sum(len(ln.encode()) + 1 for ln in v) for k, v in sorted(per_source.items())
        },
        "vocab_size": tok.vocab_size,
    }
    # Tokens per source, measured on up to 1 MB of each (exact for smaller sources).
    tokens = {}
    for k, lines in tqdm(
        sorted(per_source.items()), desc="counting tokens", unit="source", disable=QUIET_IF_PIPED
    ):
        head, used = [], 0
        for ln in lines:
            if used > 1_000_000:
                break
            head.append(ln)
            used += len(ln.encode()) + 1
        n = sum(len(tok.encode(ln)) for ln in head)
        ratio = n / max(used, 1)
        tokens[k] = {
            "tokens": int(round(ratio * stats["source_bytes"][k])),
            "exact": used >= stats["source_bytes"][k],
            "bytes_per_token": round(1 / max(ratio, 1e-9), 2),
        }
    stats["tokens"] = tokens
    stats["total_tokens"] = sum(t["tokens"] for t in tokens.values())
    return art.write_manifest(params, ["text.model"], stats, time.time() - t0)


def _input_stamps(data_dir: Path) -> dict[str, str | None]:
    """When each input artifact was built: a rebuilt input makes the tokenizer stale."""
    out = {}
    for name in ("corpus", "dialogues", "scenes", "captions"):
        m = Artifact(data_dir, name).manifest()
        out[name] = m["built_at"] if m else None
    return out
