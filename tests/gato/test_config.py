import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from gato.cli import main
from gato.config import (
    ModelConfig,
    Precision,
    SourceKind,
    apply_override,
    check_data_paths,
    from_dict,
    load_preset,
    load_run_config,
    model_config_from_toml,
    parse_override,
    preset_names,
    run_config_from_dict,
)

PAPER = {  # name: (layers, d_model, d_ff, heads, nominal parameters)
    "gato-79m": (8, 768, 3072, 24, 79e6),
    "gato-364m": (12, 1536, 6144, 12, 364e6),
    "gato-1.18b": (24, 2048, 8192, 16, 1.18e9),
}


def test_presets_ship_with_the_package():
    assert {"debug", "cpu-small", "cpu-base", *PAPER} <= set(preset_names())


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_presets_have_the_papers_shape(name):
    cfg = load_preset(name)
    layers, d, ff, heads, _ = PAPER[name]
    assert (cfg.n_layer, cfg.d_model, cfg.d_ff, cfg.n_head) == (layers, d, ff, heads)
    assert cfg.text_size == 32000 and cfg.bins == 1024 and cfg.context == 1024
    assert cfg.patch_size == 16 and cfg.patch_resolution == 128 and cfg.patch_groups == 32


@pytest.mark.parametrize("name", sorted(PAPER))
def test_model_info_prints_the_split_and_a_total_within_10_percent(name, capsys):
    assert main(["model-info", name]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines()[1:]:
        label, count = line.split("  (")[0].rsplit(maxsplit=1)
        rows[label.strip()] = int(count.replace(",", ""))
    parts = ["token embedding", "patch embedding", "other embeddings", "blocks"]
    assert list(rows) == [*parts, "total"]  # tied head: no head row, embedding counted once
    assert rows["total"] == sum(rows[p] for p in parts)
    assert rows["token embedding"] == (32000 + 1024 + 3) * PAPER[name][1]
    nominal = PAPER[name][4]
    assert abs(rows["total"] - nominal) / nominal < 0.10


@pytest.mark.parametrize(
    ("name", "low", "high"), [("cpu-small", 2e6, 5e6), ("cpu-base", 10e6, 30e6)]
)
def test_cpu_presets_are_cpu_sized_at_the_8000_piece_vocabulary(name, low, high, capsys):
    cfg = load_preset(name)
    assert cfg.text_size == 8000 and cfg.context in (512, 1024)
    assert main(["model-info", name]) == 0
    total = int(capsys.readouterr().out.split("total")[1].split()[0].replace(",", ""))
    assert low <= total <= high


def test_vocab_property_follows_text_size_and_bins():
    cfg = load_preset("debug")
    assert cfg.vocab.text_size == cfg.text_size and cfg.vocab.size == cfg.text_size + 1024 + 3


GOOD = """
[model]
name = "x"
n_layer = 2
n_head = 2
d_model = 32
d_ff = 64
text_size = 100
dropout = 0
"""


def test_toml_loads_with_defaults_and_int_for_float():
    cfg = model_config_from_toml(GOOD)
    assert cfg.n_layer == 2 and cfg.dropout == 0.0 and isinstance(cfg.dropout, float)
    assert cfg.context == ModelConfig.__dataclass_fields__["context"].default


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("foo = 1", "unknown key 'model.foo'"),
        ('n_layer = "2"', "model.n_layer: expected int, got str"),
        ("n_layer = 2.0", "model.n_layer: expected int, got float"),
        ("tie_head = 1", "model.tie_head: expected bool, got int"),
        ("dropout = true", "model.dropout: expected float, got bool"),
        ("n_head = 3", "divisible by n_head"),
        ("patch_groups = 5", "must divide patch_channels"),
    ],
)
def test_bad_model_toml_is_a_value_error_naming_the_key(edit, message):
    key = edit.split(" = ")[0]
    lines = [ln for ln in GOOD.splitlines() if not ln.startswith(f"{key} =")]
    with pytest.raises(ValueError, match=message):
        model_config_from_toml("\n".join([*lines, edit]))


def test_missing_key_and_missing_table_are_named():
    with pytest.raises(ValueError, match="model: missing key 'd_ff'"):
        model_config_from_toml(GOOD.replace("d_ff = 64\n", ""))
    with pytest.raises(ValueError, match=r"missing table \[model\]"):
        model_config_from_toml("")


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model preset 'nope'; known: .*gato-79m"):
        load_preset("nope")


def test_unknown_preset_is_one_line_and_exit_code_2(capsys):
    assert main(["model-info", "nope"]) == 2
    assert "unknown model preset 'nope'" in capsys.readouterr().err


@dataclass(frozen=True)
class Inner:
    lr: float
    betas: tuple[float, float] = (0.9, 0.95)


@dataclass(frozen=True)
class Outer:
    inner: Inner
    names: tuple[str, ...] = ()
    steps: int | None = None


def test_from_dict_handles_nested_dataclasses_tuples_and_optionals():
    out = from_dict(Outer, {"inner": {"lr": 1, "betas": [0.8, 0.9]}, "names": ["a", "b"]}, "run")
    assert out == Outer(Inner(1.0, (0.8, 0.9)), ("a", "b"), None)
    with pytest.raises(ValueError, match="unknown key 'run.inner.lrr'"):
        from_dict(Outer, {"inner": {"lrr": 1}}, "run")
    with pytest.raises(ValueError, match=r"run.inner.betas\[1\]: expected float, got str"):
        from_dict(Outer, {"inner": {"lr": 1, "betas": [0.8, "x"]}}, "run")
    with pytest.raises(ValueError, match="run.inner.betas: expected 2 items, got 3"):
        from_dict(Outer, {"inner": {"lr": 1, "betas": [1, 2, 3]}}, "run")
    with pytest.raises(ValueError, match="run.inner: expected a table, got int"):
        from_dict(Outer, {"inner": 3}, "run")
    with pytest.raises(ValueError, match="run.steps: expected int, got str"):
        from_dict(Outer, {"inner": {"lr": 1}, "steps": "x"}, "run")


def test_model_config_is_frozen():
    cfg = load_preset("debug")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_layer = 3


# -- run configs (TOML + --set overrides) ------------------------------------

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
    paths = sorted(CONFIGS.glob("*.toml")) + sorted(CONFIGS.glob("ablations/*.toml"))
    assert any(p.parent.name == "ablations" for p in paths)
    for path in paths:
        load_run_config(path)


def test_ablation_configs_train_on_their_share_of_the_generalist_tokens():
    """Each ablation sees the rows its sources get inside the generalist's mixture."""
    gen = load_run_config(CONFIGS / "cpu-generalist.toml")
    total = sum(e.weight for e in gen.data.mixture)
    weight = {e.path: e.weight for e in gen.data.mixture}
    for path in sorted(CONFIGS.glob("ablations/*.toml")):
        cfg = load_run_config(path)
        share = sum(weight[e.path] for e in cfg.data.mixture) / total
        assert cfg.train.steps == round(gen.train.steps * share), path.name
        assert (cfg.train.batch_size, cfg.context) == (gen.train.batch_size, gen.context)
        assert cfg.model == gen.model
        # the same optimiser; only the warm-up scales with the steps
        assert dataclasses.replace(cfg.optim, warmup=gen.optim.warmup) == gen.optim, path.name
        assert cfg.data.heldout_fraction == gen.data.heldout_fraction  # same held-out items
        if any(e.kind == SourceKind.EPISODES for e in cfg.data.mixture):  # same action inputs
            assert cfg.train.action_dropout == gen.train.action_dropout, path.name


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


def test_an_override_replaces_the_whole_mixture():
    """A one-task ablation trains on more stores (DAgger, --explore) through this override."""
    mixture = (
        '[{kind="episodes", path="episodes/pendulum", weight=1.0}, '
        '{kind="episodes", path="episodes/pendulum-dagger1", weight=2.0}]'
    )
    cfg = load_run_config(CONFIGS / "ablations/pendulum-only.toml", [f"data.mixture={mixture}"])
    assert [(e.path, e.weight) for e in cfg.data.mixture] == [
        ("episodes/pendulum", 1.0),
        ("episodes/pendulum-dagger1", 2.0),
    ]
    assert cfg.train.steps == 1200  # the rest of the file is unchanged
