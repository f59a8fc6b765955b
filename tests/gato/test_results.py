import json
from pathlib import Path

import pytest

from gato.results import control_rows, headline, results_markdown


def _task(name, mean, normalised, n=4, random=0.0, expert=10.0):
    return {
        "task": name, "returns": [mean] * n, "seeds": list(range(n)), "lengths": [5] * n,
        "episodes": n, "random_score": random, "expert_score": expert, "mean": mean,
        "std": 0.0, "normalised": normalised, "complete": True,
    }  # fmt: skip


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_headline_counts_tasks_at_half_expert():
    rows = control_rows({"tasks": [_task("a", 6.0, 0.6), _task("b", 4.9, 0.49)]})
    assert headline(rows).startswith("**1 of 2 control tasks at >= 50% of expert** (50%")


def test_tasks_without_reference_scores_are_left_out():
    no_ref = _task("fake", 1.0, None) | {"random_score": None, "expert_score": None}
    assert set(control_rows({"tasks": [_task("a", 6.0, 0.6), no_ref]})) == {"a"}


def test_results_markdown_joins_prompted_ablation_and_text_only_rows(tmp_path):
    run, abl = tmp_path / "run", tmp_path / "abl"
    _write(run / "eval.json", {"tasks": [_task("pong", 6.0, 0.6), _task("cartpole", 2.0, 0.2)]})
    _write(run / "eval-prompted.json", {"tasks": [_task("pong", 7.0, 0.7)]})
    _write(run / "eval-median-p.json", {"tasks": [_task("cartpole", 3.0, 0.3)]})
    _write(run / "eval-vl.json", [{"task": "chat", "metric": "perplexity", "value": 11.0}])
    _write(abl / "cartpole-only" / "eval.json", {"tasks": [_task("cartpole", 5.0, 0.5)]})
    _write(
        abl / "text-only" / "eval-vl.json",
        [{"task": "chat", "metric": "perplexity", "value": 10.0}],
    )
    md = results_markdown(run, abl)
    assert "| pong (pixels) | 0.00 | 10.00 | 6.00 ± 0.00 | **60.0%** | **70.0%** |" in md
    assert "| cartpole | 0.00 | 10.00 | 2.00 ± 0.00 | 20.0% | - |" in md  # not prompted
    assert "**1 of 2 control tasks at >= 50% of expert without prompts** (50%" in md
    assert "**1 of 1 control tasks at >= 50% of expert with demonstration prompts** (100%" in md
    assert "| cartpole | 20.0% | 50.0% | -30.0 points |" in md  # negative transfer
    assert "text-only model: 10.00 (ratio 1.100)" in md
    assert "| cartpole | 20.0% | 30.0% (3.0 ± 0.0) | +10.0 points |" in md  # median decoding


def test_results_markdown_without_optional_files_has_only_the_control_table(tmp_path):
    _write(tmp_path / "eval.json", {"tasks": [_task("cartpole", 2.0, 0.2)]})
    md = results_markdown(tmp_path, tmp_path / "missing")
    assert "with prompt" not in md and "perplexity" not in md and "alone" not in md
    assert "median" not in md
    assert "prompts**" not in md  # one headline, no protocol named


def test_vl_rows_fall_back_on_the_metrics_of_eval_json(tmp_path):
    metrics = [{"task": "chat", "metric": "perplexity", "value": 12.0, "normalised": None}]
    _write(tmp_path / "eval.json", {"tasks": [_task("cartpole", 2.0, 0.2)], "metrics": metrics})
    assert "| chat | perplexity | 12.00 | - |" in results_markdown(tmp_path)


def test_results_markdown_compares_a_changed_one_task_model_with_the_plain_one(tmp_path):
    run, abl = tmp_path / "run", tmp_path / "abl"
    _write(run / "eval.json", {"tasks": [_task("pendulum", 1.0, -0.3)]})
    _write(abl / "pendulum-only" / "eval.json", {"tasks": [_task("pendulum", 1.0, -0.3)]})
    _write(abl / "pendulum-only" / "eval-median.json", {"tasks": [_task("pendulum", 1.0, -0.2)]})
    variant = abl / "pendulum-only-action-dropout"
    _write(variant / "eval.json", {"tasks": [_task("pendulum", 2.0, -0.1)]})
    _write(variant / "eval-median.json", {"tasks": [_task("pendulum", 2.0, 0.05)]})
    md = results_markdown(run, abl)
    assert "| pendulum | action dropout | argmax | -30.0% | -10.0% | +20.0 points |" in md
    assert "| pendulum | action dropout | median | -20.0% | 5.0% | +25.0 points |" in md
    assert "| pendulum | -30.0% | -30.0% | +0.0 points |" in md  # the plain one-task row
    assert "sampled" not in md  # no eval-sampled.json: no rows for it


def test_sampled_evaluations_get_their_own_rows_beside_the_greedy_ones(tmp_path):
    run, abl = tmp_path / "run", tmp_path / "abl"
    _write(run / "eval.json", {"tasks": [_task("breakout", 0.0, -0.003)]})
    _write(abl / "breakout-only" / "eval.json", {"tasks": [_task("breakout", 0.0, -0.003)]})
    variant = abl / "breakout-only-explore"
    _write(variant / "eval.json", {"tasks": [_task("breakout", 1.0, 0.0)]})
    _write(variant / "eval-sampled.json", {"tasks": [_task("breakout", 9.0, 0.02)]})
    md = results_markdown(run, abl)
    assert "| breakout | explore | argmax | -0.3% | 0.0% | +0.3 points |" in md
    # no sampled evaluation of the plain model: the change column cannot be filled
    assert "| breakout | explore | sampled | - | 2.0% |" in md


@pytest.mark.parametrize(
    "run", ["generalist", "generalist-v1", "generalist-v3-untied", "generalist-v4-eps"]
)
def test_the_committed_results_tables_are_what_the_committed_json_gives(run):
    # The README's and findings.md's numbers are printed by scripts/results.py from the
    # evaluation JSON in docs/results/; a hand edit or a stale table fails here.
    repo = Path(__file__).resolve().parents[2]
    folder = repo / "docs/results" / run
    docs = (repo / "README.md").read_text() + (repo / "docs/results/findings.md").read_text()
    blocks = [b.strip() for b in results_markdown(folder, folder / "ablations").split("\n\n")]
    missing = [b.splitlines()[0] for b in blocks if b and b not in docs]
    assert not missing, f"tables of docs/results/{run} not in the docs: {missing}"


def test_an_interrupted_evaluation_is_refused_not_tabulated(tmp_path):
    run = tmp_path / "run"
    _write(run / "eval.json", {"tasks": [_task("pong", 6.0, 0.6)], "interrupted": False})
    _write(run / "eval-prompted.json", {"tasks": [_task("pong", 7.0, 0.7)], "interrupted": True})
    with pytest.raises(ValueError, match="eval-prompted.json: an interrupted evaluation"):
        results_markdown(run)
