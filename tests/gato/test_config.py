"""Run configs: TOML + --set overrides, checked strictly against the dataclasses."""

from pathlib import Path

import pytest

from gato.config import (
    Precision,
    SourceKind,
    apply_override,
    check_data_paths,
    load_run_config,
    parse_override,
    run_config_from_dict,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_debug_config_loads_with_the_preset_expanded():
    cfg = load_run_config(CONFIGS / "debug.toml")
    assert cfg.model.name == "debug" and cfg.model.n_layer == 2
    assert cfg.train.dtype is Precision.FP32
    assert [e.kind for e in cfg.data.mixture] == [
        SourceKind.EPISODES,
        SourceKind.CAPTIONS,
        SourceKind.DIALOGUES,
    ]
    assert cfg.optim.betas == (0.9, 0.95)


def test_every_shipped_run_config_loads():
    for path in sorted(CONFIGS.glob("*.toml")):
        load_run_config(path)


def test_overrides_are_typed_and_reach_nested_keys():
    cfg = load_run_config(
        CONFIGS / "debug.toml",
        [
            "optim.lr=1e-4",
            "train.steps=7",
            "train.dtype=bf16",
            "data.mixture.1.weight=5",
            "model.n_layer=1",
            "optim.betas=[0.8, 0.9]",
        ],
    )
    assert cfg.optim.lr == 1e-4 and cfg.train.steps == 7
    assert cfg.train.dtype is Precision.BF16
    assert cfg.data.mixture[1].weight == 5.0
    assert cfg.model.n_layer == 1 and cfg.model.d_model == 32  # rest of the preset kept
    assert cfg.optim.betas == (0.8, 0.9)


def test_override_value_parsing():
    assert parse_override("train.model=debug") == (["train", "model"], "debug")
    assert parse_override("optim.lr=inf") == (["optim", "lr"], float("inf"))
    assert parse_override("train.compile=true") == (["train", "compile"], True)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_override("optim.lr")


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown key 'optim.lrr'"),
        ("train.steps=ten", "train.steps: expected int, got str"),
        ("train.dtype=fp16", "train.dtype: expected one of 'fp32', 'bf16'"),
        ("data.mixture.0.kind=videos", "data.mixture[0].kind: expected one of"),
        ("model.n_headz=2", "unknown key 'model.n_headz'"),
        ("trian.steps=3", "unknown key 'trian'"),
        ("data.mixture.9.weight=1", "index out of range"),
        ("train.model=nope", "unknown model preset 'nope'"),
        ("data.mixture.0.weight=0", "positive"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_run_config(CONFIGS / "debug.toml", [override])


def test_missing_data_paths_are_named(tmp_path):
    cfg = load_run_config(CONFIGS / "debug.toml", [f"data.dir={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="data.tokenizer: file not found"):
        check_data_paths(cfg)
    (tmp_path / "text.model").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"data.mixture\[0\].path: not found: .*fake"):
        check_data_paths(cfg)


def test_resolved_config_round_trips_through_plain_data():
    cfg = load_run_config(CONFIGS / "debug.toml", ["optim.lr=0.01"])
    data = cfg.to_dict()
    assert data["train"]["dtype"] == "fp32" and data["data"]["mixture"][0]["kind"] == "episodes"
    assert run_config_from_dict(data) == cfg


def test_apply_override_creates_missing_tables():
    data: dict = {}
    apply_override(data, ["optim", "lr"], 0.5)
    assert data == {"optim": {"lr": 0.5}}
