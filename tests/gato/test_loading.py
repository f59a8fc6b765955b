"""load_trained: model, tokenizers and tasks from a checkpoint; clear errors on mismatch."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from gato.checkpoint import Checkpoint, save_checkpoint
from gato.config import load_preset
from gato.loading import load_trained, save_trained, trained_tasks
from gato.model import Gato

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> Gato:
    torch.manual_seed(0)
    return Gato(load_preset("debug"))


def test_a_saved_model_loads_in_eval_mode_with_equal_weights_and_its_tasks(model, tmp_path):
    save_trained(tmp_path / "run", model, ["fake", "cartpole"])
    trained = load_trained(tmp_path / "run")  # a run directory: its newest checkpoint
    assert not trained.model.training
    assert trained.config == model.cfg
    assert trained.tasks == ["fake", "cartpole"]
    assert trained.tokenizers.vocab == model.cfg.vocab
    assert trained.tokenizers.image.patch_size == model.cfg.patch_size
    for k, v in model.state_dict().items():
        assert torch.equal(trained.model.state_dict()[k], v)


def test_a_full_run_config_names_its_tasks_from_the_mixture(model, tmp_path):
    store = tmp_path / "data" / "episodes" / "x"
    store.mkdir(parents=True)
    (store / "manifest.json").write_text(json.dumps({"task": "acrobot"}))
    config = {
        "train": {"model": "debug"},
        "optim": {},
        "model": dataclasses.asdict(model.cfg),
        "data": {
            "dir": str(tmp_path / "data"),
            "mixture": [
                {"kind": "episodes", "path": "episodes/fake"},  # no store: named by its folder
                {"kind": "episodes", "path": "episodes/x"},  # named by its manifest
                {"kind": "captions", "path": "captions.npz"},
                {"kind": "dialogues", "path": "chat.jsonl", "task": "talk"},
                {"kind": "episodes", "path": "episodes/fake", "weight": 2.0},
            ],
        },
    }
    save_checkpoint(tmp_path / "run", 7, Checkpoint(model=model.state_dict(), config=config))
    trained = load_trained(tmp_path / "run" / "step_00000007")
    assert trained.tasks == ["fake", "acrobot", "captions", "talk"]
    assert trained.run is not None and trained.run.model == model.cfg
    assert trained_tasks(config, {"tasks": ["b", "a", "b"]}) == ["b", "a"]


def test_a_config_that_does_not_match_the_weights_is_a_clear_value_error(model, tmp_path):
    wider = dataclasses.replace(model.cfg, d_model=64, d_ff=256)
    config = {"model": dataclasses.asdict(wider)}
    save_checkpoint(tmp_path / "run", 1, Checkpoint(model=model.state_dict(), config=config))
    with pytest.raises(ValueError, match="does not match the saved weights: .*tok_emb.weight"):
        load_trained(tmp_path / "run")


def test_missing_weights_and_missing_model_table_are_clear_errors(model, tmp_path):
    weights = {k: v for k, v in model.state_dict().items() if k != "ln_f.weight"}
    config = {"model": dataclasses.asdict(model.cfg)}
    save_checkpoint(tmp_path / "a", 1, Checkpoint(model=weights, config=config))
    with pytest.raises(ValueError, match="missing ln_f.weight"):
        load_trained(tmp_path / "a")
    save_checkpoint(tmp_path / "b", 1, Checkpoint(model=model.state_dict(), config={"x": 1}))
    with pytest.raises(ValueError, match="no \\[model\\] table"):
        load_trained(tmp_path / "b")
    with pytest.raises(FileNotFoundError):
        load_trained(tmp_path / "nope")
