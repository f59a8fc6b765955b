"""Each benchmark runs in --quick mode and writes a JSON with every field; no speed thresholds.

The report renders the README's Performance section from such JSON files alone.
"""

import json
import math
import sys
from pathlib import Path

import pytest

from gato.cli import bench_dir, benchmark_names, main

sys.path.insert(0, str(bench_dir()))  # bench/ scripts import their harness as a module
import harness  # noqa: E402

BENCHES = benchmark_names()
SUMMARY = {"label", "unit", "rate", "seconds", "count_per_repeat"}


def _finite_numbers(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _finite_numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _finite_numbers(v)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def _check_summary(s):
    assert SUMMARY <= set(s)
    assert s["rate"]["min"] <= s["rate"]["median"] <= s["rate"]["max"]
    assert s["seconds"]["min"] <= s["seconds"]["median"] <= s["seconds"]["max"]
    assert s["seconds"]["repeats"] >= 1 and s["rate"]["min"] > 0


@pytest.mark.parametrize("name", BENCHES)
def test_quick_benchmark_writes_a_complete_json(name, tmp_path):
    assert main(["bench", name, "--quick", "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["name"] == name and result["description"]
    machine = {"cpu", "cores", "torch", "device", "load_average_start", "load_average_end"}
    assert machine <= set(result["machine"])
    assert result["config"] and result["figures"]
    assert all(math.isfinite(x) for x in _finite_numbers(result["figures"]))
    for fig in result["figures"].values():
        _check_summary(fig["subject"])
        _check_summary(fig["baseline"])
        assert fig["ratio"] > 0
        subject, baseline = fig["subject"]["rate"]["median"], fig["baseline"]["rate"]["median"]
        assert fig["ratio"] == pytest.approx(subject / baseline)
        ratios = [v for k, v in fig.items() if "ratio" in k or k == "mfu"]
        assert all(isinstance(r, (int, float)) and r > 0 for r in ratios)


def test_the_ratio_is_the_subjects_median_rate_over_the_baselines():
    fast = harness.Timed.of("fast", "items/s", 10, [1.0, 2.0, 0.5])  # 10, 5, 20 items/s
    slow = harness.Timed("slow", "items/s", (10, 30), (4.0, 6.0))  # 2.5, 5 items/s
    fig = harness.compare(fast, slow, note=0.5)
    assert fig["subject"]["rate"] == {"min": 5.0, "median": 10.0, "max": 20.0}
    assert fig["ratio"] == pytest.approx(10 / 3.75)
    assert fig["note"] == 0.5


def _fake_results(folder):
    for name in ("kv_cache", "data"):
        fig = harness.compare(
            harness.Timed.of("cached", "steps/s", 1, [0.01, 0.02]),
            harness.Timed.of("recompute", "steps/s", 1, [0.1, 0.2]),
            share={"model": 0.75, "env": 0.25},
        )
        harness.write_result(folder / f"{name}.json", name, {"preset": "debug"},
                             {"context_64": fig}, description=f"what {name} measures")  # fmt: skip


def test_report_rewrites_only_the_performance_section_from_the_json(tmp_path):
    _fake_results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nintro\n<!-- perf:start -->\nold\n<!-- perf:end -->\nafter\n")
    args = ["bench", "--report", "--results", str(tmp_path), "--readme", str(readme)]
    assert main(args) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n<!-- perf:start -->\n## Performance")
    assert text.endswith("<!-- perf:end -->\nafter\n") and "old" not in text
    assert text.index("### kv_cache") < text.index("### data")  # the report's order
    cpu = harness.machine_info()["cpu"]
    assert f"Measured on: {cpu}" in text and "what data measures" in text
    assert (
        "| context_64 | cached | 75.00 steps/s (50.00-100) | recompute | 7.50 steps/s | 10x |"
        in text
    )
    assert "share: model 75.0%, env 25.0%" in text
    assert main(args) == 0 and readme.read_text() == text  # idempotent


def test_report_without_markers_is_a_clear_error(tmp_path, capfd):
    _fake_results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert main(["bench", "--report", "--results", str(tmp_path), "--readme", str(readme)]) == 2
    assert "perf:start" in capfd.readouterr().err


def test_unknown_benchmark_is_a_clear_error(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_the_readme_keeps_the_markers_the_report_rewrites_between():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start, end = text.find("<!-- perf:start -->"), text.find("<!-- perf:end -->")
    assert 0 < start < end, "README.md lost its Performance section markers"
    assert "## Performance" in text[start:end]
