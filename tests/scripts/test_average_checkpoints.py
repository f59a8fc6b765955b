"""`scripts/average_checkpoints.py`: a run's kept checkpoints averaged into one that loads,
plays and resumes like any checkpoint; bad input gets one clear message and exit 2."""

import shutil
from functools import partial

import pytest
import torch

from gato.checkpoint import list_checkpoints, load_checkpoint
from gato.config import load_preset, load_run_config
from gato.loading import load_trained
from gato.train import train

from ..conftest import CONFIGS
from .python_script import run_python_script

run_average = partial(run_python_script, "average_checkpoints.py")


def _config(data, steps):
    return load_run_config(CONFIGS / "debug.toml", [
        f"data.dir={data}", f"train.steps={steps}", "train.eval_interval=0",
        "train.checkpoint_interval=2", "train.keep=3",
    ])  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    """A 6-step debug run that keeps its checkpoints at steps 2, 4 and 6."""
    out = tmp_path_factory.mktemp("average") / "run"
    assert train(_config(tiny_data, 6), out, progress=False).status == "done"
    assert [p.name for p in list_checkpoints(out)] == [
        "step_00000002", "step_00000004", "step_00000006"
    ]  # fmt: skip
    return out


def test_a_run_directory_averages_all_its_kept_checkpoints(tiny_run, tmp_path):
    done = run_average(str(tiny_run), "--out", str(tmp_path / "avg"))
    assert done.returncode == 0, done.stderr
    avg = load_checkpoint(tmp_path / "avg")
    assert avg.state["step"] == 6 and avg.state["averaged_steps"] == [2, 4, 6]
    inputs = [load_checkpoint(p) for p in list_checkpoints(tiny_run)]
    for name, weight in avg.model.items():
        if weight.is_floating_point():
            mean = sum(c.model[name].double() for c in inputs) / 3
            assert torch.allclose(weight.double(), mean, atol=1e-6), name
    # the newest input's optimizer moments, for a resume
    newest = inputs[-1]
    assert avg.optimizer["param_groups"] == newest.optimizer["param_groups"]
    # and it differs from every input (the average is not one of them)
    assert all(not torch.equal(avg.model["tok_emb.weight"], c.model["tok_emb.weight"])
               for c in inputs)  # fmt: skip


def test_the_average_loads_for_inference_and_resumes_training(tiny_run, tiny_data, tmp_path):
    out = tmp_path / "avg"
    assert run_average(str(tiny_run / "step_00000004"), str(tiny_run / "step_00000006"),
                       "--out", str(out)).returncode == 0  # fmt: skip
    trained = load_trained(out)
    assert trained.path.name == "step_00000006" and "fake" in trained.tasks
    assert train(_config(tiny_data, 8), out, resume=True, progress=False).status == "done"
    assert [p.name for p in list_checkpoints(out)][-1] == "step_00000008"


def test_an_existing_output_step_is_kept_without_force(tiny_run, tmp_path):
    out = tmp_path / "avg"
    assert run_average(str(tiny_run), "--out", str(out)).returncode == 0
    before = (out / "step_00000006" / "model.safetensors").read_bytes()
    again = run_average(str(tiny_run / "step_00000002"), str(tiny_run / "step_00000004"),
                        str(tiny_run / "step_00000006"), "--out", str(out))  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr
    assert (out / "step_00000006" / "model.safetensors").read_bytes() == before
    forced = run_average(str(tiny_run / "step_00000004"), str(tiny_run / "step_00000006"),
                         "--out", str(out), "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert load_checkpoint(out).state["averaged_steps"] == [4, 6]


def test_an_existing_output_step_is_refused_before_any_input_is_loaded(tiny_run, tmp_path):
    out = tmp_path / "avg"
    assert run_average(str(tiny_run), "--out", str(out)).returncode == 0
    # a copy of the run whose newest weights are cut: loading it would fail on them, so the
    # --force message shows the refusal came first
    cut = tmp_path / "cut"
    shutil.copytree(tiny_run, cut)
    (cut / "step_00000006" / "model.safetensors").write_bytes(b"cut")
    again = run_average(str(cut), "--out", str(out))
    assert again.returncode == 2 and "exists; pass --force" in again.stderr, again.stderr
    forced = run_average(str(cut), "--out", str(out), "--force")
    assert forced.returncode == 2 and "corrupt" in forced.stderr, forced.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "checkpoint not found"),
        (["{empty}"], "is not a checkpoint (no manifest.json, no step_* directories)"),
        (["{run}/step_00000006"], "at least two"),
        (["{run}", "{run}/step_00000004"], "given twice"),
        (["{run}", "{other}"], "different"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tiny_run, other_run, tmp_path, args, message):
    paths = {"missing": tmp_path / "nope", "run": tiny_run, "empty": tmp_path,
             "other": other_run}  # fmt: skip
    done = run_average(*(a.format(**paths) for a in args), "--out", str(tmp_path / "avg"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("average_checkpoints: ")
    assert message in done.stderr
    assert not (tmp_path / "avg").exists()


@pytest.fixture(scope="module")
def other_run(tiny_data, tmp_path_factory):
    """A run of another shape: the debug preset with one layer fewer."""
    cfg = load_run_config(CONFIGS / "debug.toml", [
        f"data.dir={tiny_data}", "train.steps=2", "train.eval_interval=0",
        "train.checkpoint_interval=2", f"model.n_layer={load_preset('debug').n_layer - 1}",
    ])  # fmt: skip
    out = tmp_path_factory.mktemp("average-other") / "run"
    assert train(cfg, out, progress=False).status == "done"
    return out
