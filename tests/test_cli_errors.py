"""Bad input through the real CLI: one clear stderr line, exit code 2, no traceback.

Every case runs ``python -m gato ...`` in its own subprocess, as a user would. The
interpreter start-up (torch import) costs 1-2 s per case, so the cases are launched
together on a few threads when the module starts and each test waits for its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import CONFIGS

WORKERS = 3  # subprocesses at once: the machine has 2 cores, start-up is partly I/O


@dataclass(frozen=True)
class Case:
    """One command line and what must come out of it.

    ``message`` must appear in the single stderr line (exit code 2) or, for a case that
    must work (``code`` 0), in stdout. Paths in ``argv`` are relative to the case folder.
    """

    argv: tuple[str | bytes, ...]
    code: int
    message: str
    stdin: bytes | None = None


# -- files the cases read ---------------------------------------------------------------


def write_png(path: Path, height: int, width: int, rgb=(30, 120, 200)) -> Path:
    """A flat-colour RGB PNG written row by row (a 10000x10000 one needs no 300 MB array)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    comp = zlib.compressobj(6)
    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then the pixels
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat))
    with path.open("ab") as f:
        f.write(chunk(b"IEND", b""))
    return path


def write_png_header(path: Path, height: int, width: int) -> Path:
    """A PNG whose header claims ``height x width`` over 1x1 pixel data (a bomb's shape)."""
    body = write_png(path, 1, 1).read_bytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF
    claimed = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)
    path.write_bytes(body[:8] + claimed + body[8 + len(claimed) :])  # same IDAT and IEND
    return path


def rewrite(ckpt: Path, name: str, data: bytes) -> None:
    """Replace one checkpoint file and refresh its manifest checksum (consistent but wrong)."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["sha256"][name] = hashlib.sha256(data).hexdigest()
    (ckpt / "manifest.json").write_text(json.dumps(manifest))


class _Evil:
    """Unpickling this creates the file ``PWNED`` in the working directory."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('pickle code ran')",))


def make_files(root: Path, text_data: Path) -> None:
    import torch

    from gato.config import load_preset
    from gato.loading import save_trained
    from gato.model import Gato
    from gato.tokenizers.text import TextTokenizer

    torch.manual_seed(0)
    text = TextTokenizer.load(text_data / "text.model")
    good = save_trained(root / "run", Gato(load_preset("debug")), ["fake", "captions"], text)

    (root / "empty").mkdir()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "manifest.json").write_text("{not json")
    (root / "file-ckpt").write_text("a checkpoint is a directory")
    for name in ("mismatch", "truncated", "cut", "badkey", "pickled"):
        shutil.copytree(good, root / name)
    cfg = json.loads((good / "config.json").read_text())
    cfg["model"]["d_model"] *= 2  # the weights are for the saved d_model
    rewrite(root / "mismatch", "config.json", json.dumps(cfg).encode())
    weights = (good / "model.safetensors").read_bytes()
    (root / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    rewrite(root / "cut", "model.safetensors", weights[: len(weights) // 2])
    cfg = json.loads((good / "config.json").read_text())
    cfg["model"]["n_layers"] = 3  # a typo of n_layer
    rewrite(root / "badkey", "config.json", json.dumps(cfg).encode())
    (root / "pickled" / "extra_state.pt").write_bytes(pickle.dumps(_Evil()))

    from gato.envs.experts.ram_policy import PONG, MlpPolicy

    MlpPolicy(PONG).save(root / "pong.safetensors")

    (root / "not-an-image.png").write_text("this is text, not a PNG")
    write_png(root / "one.png", 1, 1)
    write_png(root / "big.png", 10_000, 10_000)
    write_png_header(root / "bomb.png", 12_000, 12_000)  # 144M pixels: over the limit

    caption = '{"image": "one.png", "caption": "a blue dot"}\n'
    (root / "caps-json.jsonl").write_text(caption + '{"image": "one.png", caption: 1}\n')
    (root / "caps-utf8.jsonl").write_bytes(
        caption.encode() + b'{"image": "one.png", "caption": "caf\xe9"}\n'
    )
    (root / "caps-image.jsonl").write_text(
        caption + '{"image": "not-an-image.png", "caption": "x"}\n'
    )
    chat = (
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'
    )
    (root / "chat-json.jsonl").write_text(chat + "\n\n[1, 2]\n")
    (root / "chat-utf8.jsonl").write_bytes(
        chat.encode() + b"\n" + chat.encode()[:-20] + b"\xff\xfe\n"
    )
    (root / "latin1.txt").write_bytes(b"hello\nthe caf\xe9 opens at nine\n")

    toml = (CONFIGS / "debug.toml").read_text()
    (root / "unknown-key.toml").write_text(toml + "\n[model]\nn_layers = 3  # n_layer\n")


# -- the cases --------------------------------------------------------------------------
# Each case costs a Python start-up with torch (~1.3 s of CPU). Cases whose category
# another default case already covers run only with the slow tests (`make test-all`).
SLOW = {
    "checkpoint is a file",
    "truncated safetensors, consistent manifest",  # the parser's own check: test_checkpoint
    "unknown key in checkpoint config",  # "unknown config key" covers the category
    "not an image (classify)",
    "1x1 image classifies",
    "non-UTF-8 chat prompt",
}

DATA = ("--data-dir", "data")
CAPTION = ("caption", "--checkpoint", "run", "--image-size", "32", "32", "--max-new-tokens", "2")
EVAL = ("eval", "--task", "fake", "--episodes", "1", "--envs", "1", "--threads", "1")
EVAL += ("--no-progress", "--checkpoint")

COLLECT_ONE = ("data", "collect", "--episodes", "1", "--out", "s")  # then --task, --expert
MEDIAN_WITH_SAMPLING = ("--action-decoding", "median", "--temperature", "1")

CASES = {
    # checkpoints
    "missing checkpoint": Case((*EVAL, "nowhere"), 2, "checkpoint not found: nowhere"),
    "empty checkpoint dir": Case((*EVAL, "empty"), 2, "empty is not a checkpoint"),
    "corrupt checkpoint dir": Case((*EVAL, "corrupt"), 2, "manifest.json is not valid JSON"),
    "checkpoint is a file": Case((*EVAL, "file-ckpt"), 2, "must be a directory"),
    "config does not match weights": Case(
        (*EVAL, "mismatch"), 2, "the model config does not match the saved weights"
    ),
    "truncated safetensors": Case(
        (*EVAL, "truncated"), 2, "model.safetensors is corrupt (checksum mismatch)"
    ),
    "truncated safetensors, consistent manifest": Case(
        (*EVAL, "cut"), 2, "model.safetensors is not a valid safetensors file"
    ),
    "unknown key in checkpoint config": Case(
        (*EVAL, "badkey"), 2, "badkey/config.json: unknown key 'model.n_layers'"
    ),
    "pickle next to the weights": Case((*EVAL, "pickled"), 2, "refusing to load pickled/"),
    # tasks
    "unknown task": Case(
        ("play", "--checkpoint", "run", "--task", "pongg"), 2, "unknown task 'pongg'"
    ),
    "task the checkpoint was not trained on": Case(
        ("play", "--checkpoint", "run", "--task", "cartpole"),
        2,
        "the checkpoint was not trained on 'cartpole' (its tasks: fake, captions)",
    ),
    "unknown task (collect)": Case(
        ("data", "collect", "--task", "pongg", "--episodes", "1", "--out", "store"),
        2,
        "unknown task 'pongg'; known tasks: pong,",
    ),
    "expert file that is not a policy": Case(
        (*COLLECT_ONE, "--task", "pong", "--expert", "file-ckpt"),
        2,
        "file-ckpt: not a safetensors file",
    ),
    "missing expert file": Case(
        (*COLLECT_ONE, "--task", "pong", "--expert", "nope.safetensors"),
        2,
        "nope.safetensors: no such file, nor a shipped policy",
    ),
    "scripted expert of another task": Case(
        (*COLLECT_ONE, "--task", "pong", "--expert", "breakout-tracker"),
        2,
        "breakout-tracker is a scripted expert of breakout, not of pong",
    ),
    "expert of another game": Case(
        (*COLLECT_ONE, "--task", "cartpole", "--expert", "pong.safetensors"),
        2,
        "this RAM policy plays ALE/Pong, not CartPole-v1",
    ),
    "state-probe of an unknown policy": Case(
        ("data", "state-probe", "nosuch-ppo", "--threads", "1"),
        2,
        "nosuch-ppo: no such file, nor a shipped policy (breakout-ppo, pong-ppo)",
    ),
    "state-probe with step counts that do not increase": Case(
        ("data", "state-probe", "pong-ppo", "--steps", "100,50", "--threads", "1"),
        2,
        "checkpoints must be increasing step counts >= 1, got (100, 50)",
    ),
    "state-probe holding out every game": Case(
        ("data", "state-probe", "pong-ppo", "--episodes", "3", "--heldout", "3"),
        2,
        "need at least 1 held-out game and 1 to train on, got 3 games with 3 held out",
    ),
    "train-expert for a game without a RAM spec": Case(
        ("data", "train-expert", "--game", "freeway", "--out", "f.safetensors"),
        2,
        "no RAM spec for 'freeway'; games: breakout, pong",
    ),
    "train-expert over an existing file": Case(
        ("data", "train-expert", "--game", "pong", "--out", "file-ckpt"),
        2,
        "file-ckpt exists: pass --force to overwrite it",
    ),
    "train-expert from another game's policy": Case(
        (
            "data",
            "train-expert",
            "--game",
            "breakout",
            "--out",
            "b.safetensors",
            "--init",
            "pong-ppo",
        ),  # fmt: skip
        2,
        "the initial policy's spec RamPolicySpec(game='Pong'",
    ),
    "train-expert from a missing policy": Case(
        ("data", "train-expert", "--game", "pong", "--out", "p.safetensors", "--init", "nope"),
        2,
        "nope: no such file, nor a shipped policy",
    ),
    "unknown task (scores)": Case(
        ("scores", "--tasks", "cartpole,pongg"), 2, "unknown task 'pongg'"
    ),
    "a task that shares another's scores (scores)": Case(
        ("scores", "--tasks", "pong-48"), 2, "pong-48 shares the score row of pong: measure pong"
    ),
    "median decoding with sampling": Case(
        ("play", "--checkpoint", "run", "--task", "fake", *MEDIAN_WITH_SAMPLING),
        2,
        "--action-decoding median is deterministic; use it with --temperature 0",
    ),
    "unknown benchmark": Case(("bench", "speed"), 2, "unknown benchmark 'speed'; known: "),
    # images
    "not an image (caption)": Case(
        (*CAPTION, "not-an-image.png"), 2, "not-an-image.png is not a readable image"
    ),
    "not an image (classify)": Case(
        ("classify", "--checkpoint", "run", "--labels", "a,b", "not-an-image.png"),
        2,
        "not-an-image.png is not a readable image",
    ),
    "not an image (tokenize)": Case(
        ("tokenize", "--image", "not-an-image.png"), 2, "not-an-image.png is not a readable image"
    ),
    "1x1 image is resized": Case((*CAPTION, "one.png"), 0, "one.png\t"),
    "1x1 image classifies": Case(
        (
            "classify",
            "--checkpoint",
            "run",
            "--labels",
            "dot,cat",
            "--image-size",
            "16",
            "16",
            "one.png",
        ),
        0,
        "log-likelihood",
    ),  # fmt: skip
    "10000x10000 image is resized": Case((*CAPTION, "big.png"), 0, "big.png\t"),
    "image over the pixel limit": Case((*CAPTION, "bomb.png"), 2, "12000x12000 image is too large"),
    # JSONL, text, config
    "malformed caption JSONL line": Case(
        ("data", "captions", *DATA, "--no-fashion-mnist", "--jsonl", "caps-json.jsonl"),
        2,
        "caps-json.jsonl:2: not valid JSON",
    ),
    "caption JSONL naming a non-image": Case(
        ("data", "captions", *DATA, "--no-fashion-mnist", "--jsonl", "caps-image.jsonl"),
        2,
        "caps-image.jsonl:2: ",
    ),
    "non-UTF-8 caption JSONL": Case(
        ("data", "captions", *DATA, "--no-fashion-mnist", "--jsonl", "caps-utf8.jsonl"),
        2,
        "caps-utf8.jsonl:2: not UTF-8 text (byte 0xe9",
    ),
    "malformed chat JSONL line": Case(
        ("data", "dialogues", *DATA, "--sources", "scenes", "--chat", "chat-json.jsonl"),
        2,
        "chat-json.jsonl:3: expected a JSON object, got list",
    ),
    "non-UTF-8 chat JSONL": Case(
        ("data", "dialogues", *DATA, "--sources", "scenes", "--chat", "chat-utf8.jsonl"),
        2,
        "chat-utf8.jsonl:2: not UTF-8 text (byte 0xff",
    ),
    "non-UTF-8 corpus text": Case(
        ("data", "corpus", *DATA, "--sources", "project-docs", "--text", "latin1.txt"),
        2,
        "latin1.txt:2: not UTF-8 text (byte 0xe9 at column 8)",
    ),
    "non-UTF-8 chat prompt": Case(
        ("chat", "--checkpoint", "run", "--max-new-tokens", "2", "--prompt", b"caf\xe9"),
        2,
        "text is not valid Unicode",
    ),
    "non-UTF-8 chat line keeps chatting": Case(
        ("chat", "--checkpoint", "run", "--max-new-tokens", "2"),
        0,
        "gato: error: ",
        stdin=b"caf\xe9\nhello\n",
    ),
    "unknown config key": Case(
        ("train", "--config", "unknown-key.toml", "--out", "trained"),
        2,
        "unknown key 'model.n_layers'",
    ),
    "NaN observation value": Case(("tokenize", "--values", "0.5,nan"), 2, "is not finite"),
}


def folder_of(root: Path, name: str) -> Path:
    return root / name.replace(" ", "-").replace("/", "-")


class Runs:
    """The cases' processes, run on a few threads; :meth:`result` waits for one."""

    def __init__(self, root: Path, pool: ThreadPoolExecutor) -> None:
        self.root, self.pool = root, pool
        self.futures: dict[str, Future] = {}
        self.env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(self, name: str) -> None:
        if name not in self.futures:
            self.futures[name] = self.pool.submit(self._run, name, CASES[name])

    def result(self, name: str) -> subprocess.CompletedProcess:
        self.start(name)
        return self.futures[name].result()

    def _run(self, name: str, case: Case) -> subprocess.CompletedProcess:
        folder = folder_of(self.root, name)  # a private copy (hard links) of the input files
        shutil.copytree(self.root / "files", folder, copy_function=os.link)
        return subprocess.run(
            [sys.executable, "-m", "gato", *case.argv],
            cwd=folder,
            input=case.stdin if case.stdin is not None else b"",
            capture_output=True,
            env=self.env,
            timeout=300,
        )


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory, text_data):
    """Every case selected in this session starts at once, when the first test asks."""
    root = tmp_path_factory.mktemp("cli-errors")
    make_files(root / "files", text_data)
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = Runs(root, pool)
        for item in request.session.items:
            callspec = getattr(item, "callspec", None)
            if item.module is request.node.module and callspec and "name" in callspec.params:
                runs.start(callspec.params["name"])
        yield runs
        for f in runs.futures.values():
            f.cancel()


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in CASES],
)
def test_cli_answers_with_one_clear_line_and_the_right_exit_code(runs, name):
    case = CASES[name]
    proc = runs.result(name)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == case.code, err
    assert "Traceback" not in err
    if case.code == 0:
        assert case.message in out, out
        assert "Warning" not in err, err  # e.g. no decompression-bomb warning
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert out == "", out  # the input is checked before any work is done
        assert lines[0].startswith("gato: error: ") and case.message in lines[0], err


def test_a_pickle_in_the_checkpoint_is_refused_and_never_executed(runs):
    name = "pickle next to the weights"
    proc = runs.result(name)
    assert proc.returncode == 2 and b"refusing to load" in proc.stderr
    assert (folder_of(runs.root, name) / "pickled" / "extra_state.pt").is_file()
    assert not (folder_of(runs.root, name) / "PWNED").exists()


def test_a_bad_line_in_an_interactive_chat_is_reported_and_the_chat_goes_on(runs):
    out = runs.result("non-UTF-8 chat line keeps chatting").stdout.decode()
    error_at = out.index("gato: error: ")
    assert "gato> " in out[error_at:]  # "hello", the next line, was still answered


def test_bad_data_commands_build_nothing(runs):
    for name in [n for n, c in CASES.items() if c.argv[0] == "data"]:
        assert runs.result(name).returncode == 2
        manifests = list((folder_of(runs.root, name) / "data").rglob("manifest.json"))
        assert manifests == [], name
