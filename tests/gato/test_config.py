import dataclasses
from dataclasses import dataclass

import pytest

from gato.cli import main
from gato.config import ModelConfig, from_dict, load_preset, model_config_from_toml, preset_names

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
