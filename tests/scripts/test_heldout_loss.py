"""`scripts/heldout_loss.py`: a checkpoint's held-out loss per task on the windows one seed
draws, pooled as training logs it; bad input gets one clear message and exit 2."""

import importlib.util
import json
import math
import sys
from functools import partial

import pytest

from gato.config import load_run_config
from gato.metrics import read_metrics
from gato.train import train

from ..conftest import CONFIGS
from .python_script import SCRIPTS, run_python_script

run_heldout = partial(run_python_script, "heldout_loss.py")


def load_script():
    spec = importlib.util.spec_from_file_location("heldout_loss", SCRIPTS / "heldout_loss.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    """A 4-step debug run whose last logged evaluation used 3 held-out batches."""
    cfg = load_run_config(CONFIGS / "debug.toml", [
        f"data.dir={tiny_data}", "train.steps=4", "train.eval_interval=4",
        "train.eval_batches=3", "train.checkpoint_interval=4",
    ])  # fmt: skip
    out = tmp_path_factory.mktemp("heldout") / "run"
    assert train(cfg, out, progress=False).status == "done"
    return out


def test_the_runs_own_seed_and_batches_give_the_loss_training_logged(tiny_run, tmp_path):
    done = run_heldout(str(tiny_run), "--batches", "3", "--threads", "1",
                       "--json", str(tmp_path / "h.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "h.json").read_text())
    logged = [
        r for r in read_metrics(tiny_run / "metrics.jsonl") if r["step"] == 4 and "eval/fake" in r
    ]
    at_0 = next(r for r in read_metrics(tiny_run / "metrics.jsonl") if r["step"] == 0)
    assert [r["task"] for r in rows] == ["fake", "captions", "chat"]
    for r in rows:
        assert r["step"] == 4 and r["seed"] == 0 and r["batches"] == 3 and r["targets"] > 0
        assert r["loss"] == pytest.approx(logged[-1][f"eval/{r['task']}"], rel=1e-5)
        assert r["stderr"] > 0
        # step 0 logged the frequency loss of the same 3 batches
        assert r["frequency"] == pytest.approx(at_0[f"freq/{r['task']}"], rel=1e-9)
        assert r["frequency"] > 0
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 3 and "windows drawn with seed 0" in done.stdout


def test_another_seed_draws_other_windows(tiny_run, tmp_path):
    losses = {}
    for seed in ("0", "7"):
        done = run_heldout(str(tiny_run), "--batches", "3", "--seed", seed, "--threads", "1",
                           "--json", str(tmp_path / f"{seed}.json"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        losses[seed] = [r["loss"] for r in json.loads((tmp_path / f"{seed}.json").read_text())]
    assert losses["0"] != losses["7"]


def test_pooled_weights_batches_by_targets_and_gives_the_standard_error():
    pooled = load_script().pooled
    loss, stderr = pooled([(2.0, 1), (9.0, 3)])  # per-batch means 2 and 3
    assert loss == pytest.approx(11.0 / 4)
    assert stderr == pytest.approx(0.5)  # sample sd of (2, 3) is 0.707, over sqrt(2)
    loss, stderr = pooled([(2.0, 4)])
    assert loss == 0.5 and math.isnan(stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "not found"),
        (["{run}", "--batches", "0"], "--batches must be at least 1"),
        (["{run}", "--data-dir", "{empty}"], "data not found"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tiny_run, tmp_path, args, message):
    paths = {"missing": tmp_path / "nope", "run": tiny_run, "empty": tmp_path}
    done = run_heldout(*(a.format(**paths) for a in args))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("heldout_loss: ")
    assert message in done.stderr
