"""gato eval / gato play end to end on a tiny checkpoint, and the learning loop on the fake env."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from gato.cli import main
from gato.config import load_preset
from gato.envs import registry
from gato.envs.rollout import rollout
from gato.evaluate import EvalReport, MetricRow, TaskResult, evaluate_task
from gato.loading import Trained, load_trained, save_trained, tokenizers_for
from gato.loss import sequence_loss
from gato.model import Gato
from gato.sampling import SamplingConfig
from gato.sequence import collate, episode_row

torch.set_num_threads(1)
# The fake task's reference scores, fixed here so the test does not depend on the table.
RANDOM, EXPERT = 4.0, 11.2


@pytest.fixture
def scored(monkeypatch):
    real = registry.spec

    def spec(task):
        s = real(task)
        return dataclasses.replace(s, random_score=RANDOM, expert_score=EXPERT)

    monkeypatch.setattr(registry, "spec", spec)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "run"
    save_trained(path, Gato(load_preset("debug")), ["fake", "fake-image", "captions"])
    return path


def test_eval_cli_writes_json_table_and_plot(checkpoint, tmp_path, scored, capsys):
    out, plot = tmp_path / "r.json", tmp_path / "s.png"
    argv = ["eval", "--checkpoint", str(checkpoint), "--task", "all", "--episodes", "3"]
    argv += ["--envs", "2", "--seed", "5", "--json", str(out), "--plot", str(plot)]
    argv += ["--no-progress", "--threads", "1"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "fake-image" in table and "mean normalised score" in table and "captions" not in table
    data = json.loads(out.read_text())
    assert data["seed"] == 5 and data["envs"] == 2 and not data["interrupted"]
    assert [t["task"] for t in data["tasks"]] == ["fake", "fake-image"]
    for t in data["tasks"]:
        assert t["seeds"] == [5, 6, 7] and len(t["returns"]) == 3 and t["lengths"] == [12] * 3
        assert t["random_score"] == RANDOM and t["expert_score"] == EXPERT
        assert t["normalised"] == pytest.approx(
            (np.mean(t["returns"]) - RANDOM) / (EXPERT - RANDOM)
        )
    scores = [t["normalised"] for t in data["tasks"]]
    assert data["headline"]["mean_normalised"] == pytest.approx(np.mean(scores))
    assert data["headline"]["tasks_at_half_expert"] == sum(s >= 0.5 for s in scores)
    assert plot.stat().st_size > 1000


def test_same_seed_same_result_whatever_the_number_of_envs(checkpoint):
    trained = load_trained(checkpoint)
    spec = registry.spec("fake")
    hot = SamplingConfig(temperature=1.0)
    a = evaluate_task(trained, spec, episodes=5, envs=2, seed=3, sampling=hot)
    b = evaluate_task(trained, spec, episodes=5, envs=5, seed=3, sampling=hot)
    c = evaluate_task(trained, spec, episodes=5, envs=1, seed=3, sampling=hot)
    assert a.returns == b.returns == c.returns and a.seeds == [3, 4, 5, 6, 7]
    d = evaluate_task(trained, spec, episodes=5, envs=2, seed=4, sampling=hot)
    assert d.seeds == [4, 5, 6, 7, 8]


def test_eval_rejects_unknown_and_untrained_tasks_with_exit_2(checkpoint, capsys):
    base = ["eval", "--checkpoint", str(checkpoint), "--episodes", "1", "--no-progress"]
    assert main([*base, "--task", "no-such-task"]) == 2
    assert "unknown task 'no-such-task'" in capsys.readouterr().err
    assert main([*base, "--task", "cartpole"]) == 2
    assert "not trained on 'cartpole'" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", "/nonexistent", "--task", "fake"]) == 2


def test_ctrl_c_keeps_the_finished_episodes_and_exits_cleanly(checkpoint, tmp_path, monkeypatch):
    import gato.evaluate as ev

    calls = {"n": 0}
    real = ev._play_round

    def interrupt_second_round(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "_play_round", interrupt_second_round)
    out = tmp_path / "partial.json"
    argv = ["eval", "--checkpoint", str(checkpoint), "--task", "fake", "--episodes", "4"]
    argv += ["--envs", "2", "--json", str(out), "--no-progress"]
    assert main(argv) == 130
    data = json.loads(out.read_text())
    assert data["interrupted"] and data["tasks"][0]["seeds"] == [0, 1]
    assert not data["tasks"][0]["complete"]


def test_report_hook_counts_extra_metric_rows_in_the_headline():
    r = EvalReport("x", 0, 1, SamplingConfig())
    r.tasks.append(TaskResult("fake", [11.2], [0], [12], 1, RANDOM, EXPERT))
    r.metrics.append(MetricRow("captions", "accuracy", 0.3, normalised=0.2))
    assert r.normalised_scores() == pytest.approx({"fake": 1.0, "captions": 0.2})
    assert r.tasks_at_half_expert == 1 and "accuracy" in r.table()


def test_play_writes_a_gif_of_the_episode(checkpoint, tmp_path, capsys):
    from PIL import Image

    gif = tmp_path / "ep.gif"
    argv = ["play", "--checkpoint", str(checkpoint), "--task", "fake-image", "--record", str(gif)]
    assert main(argv) == 0
    assert "return" in capsys.readouterr().out
    with Image.open(gif) as im:
        assert im.n_frames == 13  # 12 steps + the final observation
    assert main(["play", "--checkpoint", str(checkpoint), "--task", "fake", "--record",
                 str(tmp_path / "x.gif")]) == 2  # fmt: skip


# -- the whole loop learns ---------------------------------------------------------------


def train_on_expert(task: str, episodes: int, steps: int, lr: float, batch: int) -> Trained:
    """A ``debug``-preset model trained with AdamW on the task's expert episodes."""
    env = registry.make(task)
    demos = [rollout(env, registry.expert(task), seed=s, task=task) for s in range(episodes)]
    spec = registry.spec(task)
    cfg = dataclasses.replace(load_preset("debug"), context=64)
    tok = tokenizers_for(cfg)
    rows = [episode_row(tok, spec, e) for e in demos]
    torch.manual_seed(0)
    model = Gato(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(steps):
        b = collate([rows[i] for i in rng.integers(len(rows), size=batch)], tok.vocab)
        loss = sequence_loss(model(b), b).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return Trained(model.eval(), cfg, tok, [task])


def expert_mean(task: str, seeds: range) -> float:
    env = registry.make(task)
    return float(np.mean([rollout(env, registry.expert(task), s, task).score for s in seeds]))


@pytest.mark.slow
def test_a_policy_trained_on_fake_expert_episodes_reaches_the_expert_score():
    trained = train_on_expert("fake", episodes=2000, steps=2000, lr=1e-2, batch=32)
    seeds = range(10_000, 10_064)  # held out: demonstrations used seeds 0..1999
    result = evaluate_task(trained, registry.spec("fake"), episodes=64, envs=16, seed=10_000)
    assert result.mean >= expert_mean("fake", seeds)


def test_eval_all_adds_caption_and_chat_rows_for_a_run_with_text(tiny_data, tmp_path):
    from gato.config import load_run_config
    from gato.train import train

    from ..conftest import CONFIGS

    cfg = load_run_config(CONFIGS / "debug.toml", [f"data.dir={tiny_data}", "train.steps=2"])
    train(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "eval.json"
    argv = ["eval", "--checkpoint", str(tmp_path / "run"), "--task", "all", "--episodes", "1",
            "--envs", "1", "--threads", "1", "--no-progress", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [t["task"] for t in report["tasks"]] == ["fake"]
    rows = {(m["task"], m["metric"]): m for m in report["metrics"]}
    assert {
        ("captions/test", "exact"),
        ("captions/heldout", "exact"),
        ("chat", "perplexity"),
    } <= set(rows)
    assert 0.0 <= rows["captions/test", "exact"]["value"] <= 1.0
    assert rows["chat", "perplexity"]["value"] > 1.0
    assert all(m["normalised"] is None for m in report["metrics"])  # headline: control only
