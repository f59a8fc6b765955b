"""`scripts/dagger.sh` (DAgger rounds from a trained run), driven with a fake `gato` that
logs its arguments: what each round collects from, trains on and to which step, what the
summary says, and what a re-run skips."""

import os
import subprocess
import sys
from pathlib import Path

from .fake_gato import read_calls, write_fake_gato

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dagger.sh"

# `train --set train.steps=N` leaves step_N; `data collect` a manifest of two episodes;
# `eval` a report whose score is the checkpoint's step / 1000.
FAKE_GATO = """
if args[0] == "train":
    steps = next(a for a in args if a.startswith("train.steps=")).split("=")[1]
    Path(option("--out"), f"step_{int(steps):08d}").mkdir(parents=True)
elif args[:2] == ["data", "collect"]:
    out = Path(option("--out"))
    out.mkdir(parents=True)
    episodes = [{"length": 100, "score": -4.0}, {"length": 50, "score": -6.0}]
    (out / "manifest.json").write_text(json.dumps({"episodes": episodes}))
elif args[0] == "eval":
    run = Path(option("--checkpoint"))
    step = max(int(p.name[len("step_"):]) for p in run.glob("step_*"))
    task = {"task": option("--task"), "mean": step / 1000, "std": 1.0, "normalised": 0.5}
    Path(option("--json")).write_text(json.dumps({"interrupted": False, "tasks": [task]}))
"""


def run_script(tmp_path: Path, expect_rc: int = 0, **env: str) -> list[list[str]]:
    """Run the script with the fake gato from a base run at step 1000; its calls, in order."""
    gato = write_fake_gato(tmp_path, FAKE_GATO)
    base = tmp_path / "base"
    (base / "step_00001000").mkdir(parents=True, exist_ok=True)
    (base / "metrics.jsonl").touch()
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    log.touch()
    full_env = {
        **os.environ,
        "GATO": str(gato),
        "PYTHON": sys.executable,
        "FAKE_GATO_LOG": str(log),
        "DATA": str(tmp_path / "data"),
        "BASE": str(base),
        "OUT": str(tmp_path / "out"),
        "ROUNDS": "2",
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=full_env, timeout=120, capture_output=True, text=True
    )
    assert done.returncode == expect_rc, done.stderr[-2000:]
    return read_calls(log)


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_each_round_collects_from_the_newest_checkpoint_and_trains_on_every_store(tmp_path):
    calls = run_script(tmp_path)
    out, data = tmp_path / "out", tmp_path / "data"
    collects = [c for c in calls if c[:2] == ["data", "collect"]]
    assert [option(c, "--dagger") for c in collects] == [
        str(tmp_path / "base" / "step_00001000"),
        str(out / "round-1" / "step_00001500"),
    ]
    assert [option(c, "--seed") for c in collects] == ["300000", "301000"]
    assert [option(c, "--out") for c in collects] == [
        str(data / "episodes" / "pong-dagger-out-1"),
        str(data / "episodes" / "pong-dagger-out-2"),
    ]
    trains = [c for c in calls if c[0] == "train"]
    assert [option(c, "--out") for c in trains] == [str(out / "round-1"), str(out / "round-2")]
    assert "train.steps=1500" in trains[0] and "train.steps=2000" in trains[1]
    mixtures = [next(a for a in c if a.startswith("data.mixture=")) for c in trains]
    assert "pong-rl" in mixtures[0] and "pong-dagger-out-1" in mixtures[0]
    assert "pong-dagger-out-2" not in mixtures[0]
    assert "pong-rl" in mixtures[1] and "pong-dagger-out-1" in mixtures[1]
    assert "pong-dagger-out-2" in mixtures[1]
    # round k's run continues from a copy of round k-1's newest checkpoint
    assert sorted(p.name for p in (out / "round-2").glob("step_*")) == [
        "step_00001500",
        "step_00002000",
    ]
    rows = [line.split("\t") for line in (out / "rounds.tsv").read_text().splitlines()]
    assert rows[0][:2] == ["round", "step"]
    assert [r[:4] for r in rows[1:]] == [
        ["0", "1000", "0", "-"],
        ["1", "1500", "150", "-5.0"],
        ["2", "2000", "150", "-5.0"],
    ]
    assert [r[4] for r in rows[1:]] == ["1.0", "1.5", "2.0"]  # each run's own evaluation


def test_a_rerun_skips_every_finished_stage(tmp_path):
    run_script(tmp_path)
    calls = run_script(tmp_path)
    assert calls == []
    assert len((tmp_path / "out" / "rounds.tsv").read_text().splitlines()) == 4


def test_a_rerun_redoes_an_interrupted_evaluation(tmp_path):
    run_script(tmp_path)
    report = tmp_path / "out" / "round-2" / "eval.json"
    report.write_text('{\n  "interrupted": true\n}\n')
    calls = run_script(tmp_path)
    assert [option(c, "--json") for c in calls] == [str(report)]


def test_a_base_without_checkpoints_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    calls = run_script(tmp_path, expect_rc=2, BASE=str(empty))
    assert calls == []


def test_a_copy_killed_halfway_is_made_again(tmp_path):
    # a kill during the copy leaves round-1.tmp (and maybe an empty round-1) behind
    (tmp_path / "out" / "round-1.tmp" / "step_00001000").mkdir(parents=True)
    (tmp_path / "out" / "round-1").mkdir()
    calls = run_script(tmp_path, ROUNDS="1")
    assert [c[:2] for c in calls if c[0] != "eval"] == [["data", "collect"], ["train", "--out"]]
    run = tmp_path / "out" / "round-1"
    assert sorted(p.name for p in run.iterdir()) == [
        "eval.json",
        "metrics.jsonl",
        "step_00001000",
        "step_00001500",
    ]
    assert not (tmp_path / "out" / "round-1.tmp").exists()
