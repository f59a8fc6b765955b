"""`scripts/results.py`: bad input gets one clear message and a non-zero exit."""

import json
from functools import partial

from .python_script import run_python_script

run_results = partial(run_python_script, "results.py")


def test_an_interrupted_evaluation_exits_with_one_message(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"tasks": [], "interrupted": True}))
    done = run_results("--run", str(tmp_path))
    assert done.returncode == 2
    assert "an interrupted evaluation (partial results); run it again" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_without_an_evaluation_exits_with_one_message(tmp_path):
    done = run_results("--run", str(tmp_path))
    assert done.returncode == 2
    assert "eval.json not found" in done.stderr


def test_a_file_that_is_not_json_is_named_in_one_message(tmp_path):
    (tmp_path / "eval.json").write_text('{"tasks": [')  # cut short
    done = run_results("--run", str(tmp_path))
    assert done.returncode == 2
    assert f"{tmp_path / 'eval.json'}: not JSON" in done.stderr
    assert "Traceback" not in done.stderr
