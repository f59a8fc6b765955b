"""`gato demo --quick`, the CI form of `make demo`: every stage leaves its artefact, and
a second run finds the work done and changes nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from gato.checkpoint import list_checkpoints
from gato.cli import main
from gato.demo import QUICK, DemoReport, run_demo


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[DemoReport, str]:
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        report = run_demo(out, quick=True)
    return report, printed.getvalue()


def _digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "summary.json"
    }


def test_quick_demo_trains_a_checkpoint_of_the_planned_steps(first):
    report, _ = first
    ckpt = Path(report.checkpoint)
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "text.model").is_file()
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == report.train_steps == 20
    assert state["tasks"][0] == "fake-image"


def test_quick_demo_builds_its_dialogues_without_debian_packages(first):
    report, _ = first
    manifest = json.loads((Path(report.out) / "data/dialogues/manifest.json").read_text())
    assert manifest["params"]["sources"] == ["scenes"]


def test_quick_demo_records_a_gif_of_the_episode(first):
    report, _ = first
    gif = Path(report.gif)
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    with Image.open(gif) as im:
        assert im.n_frames > 1
        assert im.n_frames == report.play_steps + 1  # one frame per step plus the last


def test_quick_demo_prints_a_caption_for_each_of_two_png_images(first):
    report, printed = first
    assert len(report.captions) == 2
    for path, truth, caption in report.captions:
        assert Path(path).suffix == ".png" and Path(path).is_file()
        assert truth and isinstance(caption, str)
        assert f"{path}\t{caption}" in printed


def test_quick_demo_answers_the_chat_prompt(first):
    report, printed = first
    assert isinstance(report.chat_reply, str) and report.chat_reply.strip()
    assert f"model: {report.chat_reply}" in printed
    saved = json.loads((Path(report.out) / "chat.json").read_text())
    assert saved == {"prompt": QUICK.chat_prompt, "reply": report.chat_reply}


def test_quick_demo_writes_scores_with_a_row_per_task(first):
    report, printed = first
    scores = json.loads(Path(report.scores).read_text())
    (task,) = scores["tasks"]
    assert task["task"] == "fake-image"
    assert len(task["returns"]) == QUICK.eval_episodes and task["normalised"] is not None
    assert {(m["task"], m["metric"]) for m in scores["metrics"]} == {
        ("captions/test", "exact"),
        ("captions/test", "token_f1"),
    }
    assert "fake-image" in printed and "mean normalised score" in printed


def test_second_run_skips_every_stage_and_leaves_artefacts_unchanged(first):
    report, _ = first
    out = Path(report.out)
    before, checkpoints = _digests(out), list_checkpoints(out / "run")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out), "--quick"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert [s["skipped"] for s in again["stages"]] == [True] * 6
    assert _digests(out) == before
    assert list_checkpoints(out / "run") == checkpoints
    assert again["seconds"] < sum(s.seconds for s in report.stages)  # no work redone
    assert again["chat_reply"] == report.chat_reply
    assert f"{report.captions[0][0]}\t{report.captions[0][2]}" in printed.getvalue()


def test_an_interrupted_score_stage_writes_nothing_so_the_next_run_scores_again(
    tmp_path, monkeypatch
):
    import gato.evaluate
    from gato.demo import Stage, score
    from gato.sampling import SamplingConfig

    def interrupted(*args, **kwargs):
        return gato.evaluate.EvalReport("ckpt", 0, 1, SamplingConfig(), interrupted=True)

    monkeypatch.setattr(gato.evaluate, "evaluate", interrupted)
    scores = tmp_path / "scores.json"
    with pytest.raises(KeyboardInterrupt):
        score(QUICK, type("Trained", (), {"tasks": []})(), scores, False, Stage("score"))
    assert not scores.exists() and not scores.with_suffix(".txt").exists()
