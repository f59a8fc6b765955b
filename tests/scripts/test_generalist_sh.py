"""`scripts/generalist.sh` (what `make generalist` runs), driven with a fake `gato` that
logs its arguments: which commands it runs, with which flags, and what a re-run skips."""

import os
import subprocess
from pathlib import Path

from .fake_gato import read_calls, write_fake_gato

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "generalist.sh"

# `train` leaves a checkpoint folder, `eval` its JSON file and `eval-vl` prints JSON, as
# the real commands do.
FAKE_GATO = """
edit = os.environ.get("FAKE_GATO_EDIT")
if edit and args[:2] == ["data", "all"]:  # someone edits the script during the run
    script = Path(edit)
    script.write_text("# a new comment line\\n" * 3 + script.read_text())

if args[0] == "train":
    Path(option("--out"), "step_00000010").mkdir(parents=True, exist_ok=True)
elif args[0] == "eval":
    Path(option("--json")).write_text("[]")
elif args[0] == "eval-vl":
    print("[]")
"""


def run_script(tmp_path: Path, script: Path = SCRIPT, **env: str) -> list[list[str]]:
    """Run ``script`` with the fake gato; the argv of every call it made, in order."""
    gato = write_fake_gato(tmp_path, FAKE_GATO)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    full_env = {
        **os.environ,
        "GATO": str(gato),
        "FAKE_GATO_LOG": str(log),
        "DATA": str(tmp_path / "data"),
        "RUN": str(tmp_path / "run"),
        **env,
    }
    done = subprocess.run(
        ["bash", str(script)], cwd=ROOT, env=full_env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return read_calls(log)


def trains(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[0] == "train"]


def test_a_fresh_run_trains_the_recipe_and_every_ablation_from_their_configs(tmp_path):
    calls = run_script(tmp_path)
    configs = [c[c.index("--config") + 1] for c in trains(calls)]
    assert configs[0] == "configs/cpu-generalist.toml"
    assert "configs/ablations/text-only.toml" in configs
    assert len(configs) == 7  # the generalist, five one-task models, text-only
    for call in trains(calls):
        assert "" not in call  # no empty argument where TRAIN_ARGS is unset
        assert call[-2:] == ["--set", f'data.dir="{tmp_path / "data"}"']
    evals = [c for c in calls if c[0] == "eval"]
    assert any("--prompt-store" in c for c in evals)
    assert [c[0] for c in calls].count("eval-vl") == 1


def test_train_args_reach_the_run_and_its_ablations_alike(tmp_path):
    calls = run_script(tmp_path, TRAIN_ARGS="--set optim.embedding_eps=1e-5 --set seed=3")
    assert len(trains(calls)) == 7
    for call in trains(calls):
        assert call[-4:] == ["--set", "optim.embedding_eps=1e-5", "--set", "seed=3"]


def test_a_rerun_resumes_the_runs_and_keeps_finished_evaluations(tmp_path):
    run_script(tmp_path, ABLATIONS="0")
    calls = run_script(tmp_path, ABLATIONS="0", TRAIN_ARGS="--set seed=3")
    assert trains(calls) == [["train", "--out", str(tmp_path / "run"), "--resume"]]
    assert not [c for c in calls if c[0] == "eval"]  # both evaluation files exist


def test_editing_the_script_during_a_run_does_not_change_that_run(tmp_path):
    expected = run_script(tmp_path / "plain", ABLATIONS="0")
    copy = tmp_path / "generalist.sh"
    copy.write_text(SCRIPT.read_text())
    edited = run_script(tmp_path / "plain", copy, ABLATIONS="0", FAKE_GATO_EDIT=str(copy))
    assert copy.read_text().startswith("# a new comment line")
    assert edited[0] == ["data", "all", "--data-dir", str(tmp_path / "plain" / "data")]
    # the same commands as the first run, bar the resumed training and kept evaluations
    assert [c[:2] for c in edited if c[0] == "data"] == [c[:2] for c in expected if c[0] == "data"]
    assert trains(edited) == [["train", "--out", str(tmp_path / "plain" / "run"), "--resume"]]


def test_a_rerun_redoes_an_interrupted_evaluation(tmp_path):
    run_script(tmp_path, ABLATIONS="0")
    (tmp_path / "run" / "eval.json").write_text('{\n  "interrupted": true\n}\n')
    calls = run_script(tmp_path, ABLATIONS="0")
    jsons = [c[c.index("--json") + 1] for c in calls if c[0] == "eval"]
    assert jsons == [str(tmp_path / "run" / "eval.json")]  # the prompted one is kept
