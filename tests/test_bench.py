"""Each benchmark runs in --quick mode and writes a JSON with every field; no speed thresholds."""

import json
import math

import pytest

from gato.cli import bench_dir, main

BENCHES = sorted(p.stem for p in bench_dir().glob("*.py") if p.stem != "harness")


def _numbers(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _numbers(v)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


@pytest.mark.parametrize("name", BENCHES)
def test_quick_benchmark_writes_a_complete_json(name, tmp_path):
    assert main(["bench", name, "--quick", "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["name"] == name
    assert {"cpu", "cores", "torch", "device"} <= set(result["machine"])
    assert result["config"] and result["figures"]
    numbers = list(_numbers(result["figures"]))
    assert numbers and all(math.isfinite(x) for x in numbers)
    ratios = [x for k, x in _flat(result["figures"]) if "ratio" in k or k.startswith("vs_")]
    assert ratios and all(r > 0 for r in ratios)


def _flat(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flat(v, prefix + k + ".")
        else:
            yield k, v


def test_unknown_benchmark_is_a_clear_error(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
