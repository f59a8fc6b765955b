"""`scripts/compare_curves.py`: one metric of several runs on one plot; bad input gets
one clear message and a non-zero exit."""

from functools import partial
from pathlib import Path

from PIL import Image

from gato.data.jsonl import write_jsonl

from .python_script import run_python_script

run_compare = partial(run_python_script, "compare_curves.py")


def write_metrics(path: Path, rows: list[dict]) -> Path:
    write_jsonl(path, rows)
    return path


def test_two_runs_and_a_reference_line_make_one_png(tmp_path):
    a = write_metrics(
        tmp_path / "a.jsonl", [{"step": s, "eval/pong": 1 / (s + 1)} for s in range(5)]
    )
    b = write_metrics(
        tmp_path / "b.jsonl",
        [{"step": s, "loss": 2.0} for s in range(5)] + [{"step": 9, "eval/pong": 0.3}],
    )
    out = str(tmp_path / "c.png")
    curves = ["--curve", f"a=1={a}", "--curve", f"b={b}"]  # a label may hold "="
    done = run_compare(
        "--key", "eval/pong", "--out", out, "--x-from", "1", *curves, "--hline", "p=0.4"
    )
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_a_run_without_the_metric_is_named_in_one_message(tmp_path):
    a = write_metrics(
        tmp_path / "a.jsonl", [{"step": 0, "eval/pong": 1.0}, {"step": 5, "loss": 1.0}]
    )
    done = run_compare(
        "--key", "eval/pong", "--x-from", "1", "--out", str(tmp_path / "c.png"), "--curve", f"a={a}"
    )
    assert done.returncode == 2
    assert f"{a}: no row has 'eval/pong' and 'step' >= 1" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "c.png").exists()


def test_a_line_that_is_not_json_is_named_with_its_number(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"step": 1, "eval/pong": 1.0}\n{"step": 2,\n')
    done = run_compare("--key", "eval/pong", "--out", str(tmp_path / "c.png"), "--curve", f"a={a}")
    assert done.returncode == 2
    assert f"{a}:2: not valid JSON" in done.stderr and "Traceback" not in done.stderr


def test_missing_files_bad_labels_and_repeated_labels_are_refused(tmp_path):
    out = str(tmp_path / "c.png")
    missing = run_compare("--key", "k", "--out", out, "--curve", f"a={tmp_path / 'none.jsonl'}")
    assert (
        missing.returncode == 2 and "not found" in missing.stderr and "none.jsonl" in missing.stderr
    )
    assert "Traceback" not in missing.stderr
    no_label = run_compare("--key", "k", "--out", out, "--curve", "runs/a.jsonl")
    assert no_label.returncode == 2 and "expected LABEL=VALUE" in no_label.stderr
    a = write_metrics(tmp_path / "a.jsonl", [{"step": 1, "k": 1.0}])
    twice = run_compare("--key", "k", "--out", out, "--curve", f"x={a}", "--curve", f"x={a}")
    assert twice.returncode == 2 and "its own label" in twice.stderr
    bad_y = run_compare("--key", "k", "--out", out, "--curve", f"x={a}", "--hline", "p=high")
    assert bad_y.returncode == 2 and "--hline" in bad_y.stderr
    assert not (tmp_path / "c.png").exists()
