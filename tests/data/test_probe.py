import json

import numpy as np
import pytest
import torch

from gato.cli import main
from gato.data.collect import collect
from gato.data.probe import (
    FrameProbe,
    ProbeConfig,
    play_probe,
    probe_store,
    stack_indices,
    train_probe,
)
from gato.data.store import StoreWriter
from gato.envs import registry
from gato.envs.spec import Episode

SIZE = 16  # frame side in pixels


def _frames(xs: np.ndarray) -> np.ndarray:
    """A bright 2x2 dot at column xs[t] (row 7) on a dark frame: (T, SIZE, SIZE, 1) uint8."""
    f = np.zeros((len(xs), SIZE, SIZE, 1), dtype=np.uint8)
    for t, x in enumerate(xs):
        f[t, 7:9, x : x + 2, 0] = 255
    return f


def _store(path, episodes: list[tuple[np.ndarray, np.ndarray]], task: str = "fake-image"):
    writer = StoreWriter(path, task)
    for i, (frames, actions) in enumerate(episodes):
        n = len(actions)
        writer.add(
            Episode(
                task,
                {"image": frames},
                actions.astype(np.int64),
                np.zeros(n, np.float32),
                terminated=True,
                seed=i,
            )
        )
    return path


def _side_store(path, rng, episodes=8, steps=100):
    """Action = which half of the frame the dot is in: a function of the current frame."""
    out = []
    for _ in range(episodes):
        xs = rng.integers(0, SIZE - 1, steps)
        out.append((_frames(xs), (xs >= SIZE // 2).astype(np.int64)))
    return _store(path, out)


def _motion_store(path, rng, episodes=8, steps=100):
    """Action = the direction the dot moved since the last frame: needs two frames."""
    out = []
    for _ in range(episodes):
        moves = rng.integers(0, 2, steps)  # 0 left, 1 right
        xs = np.clip(7 + np.cumsum(np.where(moves == 1, 1, -1)), 0, SIZE - 2)
        # where the clip held the dot still, the move is not visible: call it "left"
        seen = np.diff(np.concatenate([[7], xs])) > 0
        out.append((_frames(xs), seen.astype(np.int64)))
    return _store(path, out)


FAST = ProbeConfig(steps=150, seconds=600, batch_size=32, lr=1e-3, heldout=2, report_every=50)


def test_stack_indices_stay_inside_each_episode_oldest_first():
    got = stack_indices(np.array([3, 2]), 2)
    np.testing.assert_array_equal(got, [[0, 0], [0, 1], [1, 2], [3, 3], [3, 4]])
    assert stack_indices(np.array([4]), 1).tolist() == [[0], [1], [2], [3]]


def test_probe_reads_an_action_the_frame_shows(tmp_path):
    r = probe_store(_side_store(tmp_path, np.random.default_rng(0)), FAST)
    assert r.baseline_ce == pytest.approx(np.log(2), abs=0.05)  # two balanced actions
    assert r.probe_ce < 0.2 and r.probe_accuracy > 0.95
    assert r.gap_closed > 0.7
    assert r.train_samples == 600 and r.heldout_samples == 200
    assert [p["step"] for p in r.curve] == [50, 100, 150]


def test_probe_finds_nothing_in_frames_unrelated_to_the_actions(tmp_path):
    rng = np.random.default_rng(1)
    eps = [(_frames(rng.integers(0, SIZE - 1, 100)), rng.integers(0, 2, 100)) for _ in range(8)]
    r = probe_store(_store(tmp_path, eps), FAST)
    assert r.gap_closed < 0.1  # no better than the frequencies (it may overfit: worse)
    assert r.probe_accuracy < 0.65


@pytest.mark.parametrize("size", [(80, 80), (48, 48), (84, 80), (SIZE, SIZE)])
def test_a_full_map_probe_flattens_every_cell_of_its_frame_size(size):
    model = FrameProbe(4, 3, full_map=size)
    features = model.conv(torch.zeros(2, 4, *size))  # (2, 64 * cells)
    assert features.shape[1] == model.head[0].in_features
    assert model(torch.zeros(2, 4, *size)).shape == (2, 3)
    assert FrameProbe(4, 3, full_map=(80, 80)).head[0].in_features == 64 * 10 * 10
    assert FrameProbe(4, 3).head[0].in_features == 64 * 6 * 6  # pooled: any size


def test_a_full_map_probe_reads_an_action_the_frame_shows(tmp_path):
    path = _side_store(tmp_path, np.random.default_rng(0))
    r = probe_store(path, ProbeConfig(**{**FAST.__dict__, "full_map": True}))
    assert r.full_map and r.probe_ce < 0.2 and r.probe_accuracy > 0.95


def test_motion_needs_the_previous_frame(tmp_path):
    path = _motion_store(tmp_path, np.random.default_rng(2))
    one = probe_store(path, ProbeConfig(**{**FAST.__dict__, "frames": 1}))
    two = probe_store(path, ProbeConfig(**{**FAST.__dict__, "frames": 2}))
    assert two.probe_ce < one.probe_ce - 0.2
    assert two.probe_accuracy > 0.9 > one.probe_accuracy


def _alternating_store(path, rng, episodes=8, steps=100):
    """Action = the opposite of the last one (from a random first one); frames unrelated."""
    out = []
    for _ in range(episodes):
        actions = (rng.integers(0, 2) + np.arange(steps)) % 2
        out.append((_frames(rng.integers(0, SIZE - 1, steps)), actions))
    return _store(path, out)


def test_an_action_set_by_the_last_one_needs_the_last_action(tmp_path):
    path = _alternating_store(tmp_path, np.random.default_rng(6))
    blind = probe_store(path, FAST)
    told = probe_store(path, ProbeConfig(**{**FAST.__dict__, "last_action": True}))
    assert blind.gap_closed < 0.1 and not blind.last_action
    assert told.probe_accuracy > 0.95 and told.last_action  # first steps are guesses
    assert told.gap_closed > 0.7


def test_a_probe_given_the_last_action_plays_with_its_own_last_action(tmp_path, monkeypatch):
    collect("fake-image", 12, tmp_path / "store", seed=0)
    model, report = train_probe(
        tmp_path / "store", ProbeConfig(**{**FAST.__dict__, "last_action": True})
    )
    seen, chosen = [], []
    forward = model.forward

    def spy(x, previous=None):
        logits = forward(x, previous)  # (1, A)
        seen.append(previous)
        chosen.append(int(logits.argmax()))  # greedy play takes this action
        return logits

    monkeypatch.setattr(model, "forward", spy)
    play_probe(model, "fake-image", 1, seed=2_000_000)
    assert len(seen) > 2 and seen[0].sum() == 0  # nothing before the first step
    assert [int(p.argmax()) for p in seen[1:]] == chosen[:-1]  # then its own last action
    assert all(p.sum() == 1 for p in seen[1:])
    with pytest.raises(ValueError, match="previous action"):
        forward(torch.zeros(1, model.frames, SIZE, SIZE))


def test_cli_writes_the_report_and_refuses_stores_without_frames(tmp_path, capsys):
    path = _side_store(tmp_path / "side", np.random.default_rng(3), episodes=4, steps=40)
    out = tmp_path / "probe.json"
    argv = ["data", "probe", str(path), "--steps", "20", "--heldout", "1", "--play", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["play"]["returns"]) == 2 and report["play"]["seed"] == 2_000_000
    assert report["play"]["temperature"] == 0.0
    assert report["play"]["normalised"] is not None
    assert report["steps"] == 20 and report["heldout_samples"] == 40
    assert 0 <= report["probe_accuracy"] <= 1 and "gap_closed" in report
    assert "gap closed" in capsys.readouterr().out
    assert report["last_action"] is False
    assert main([*argv, "--last-action", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["last_action"] is True
    assert "4 frames + last action" in capsys.readouterr().out
    assert report["full_map"] is False
    assert main([*argv, "--full-map", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["full_map"] is True
    assert "4 frames, full map" in capsys.readouterr().out

    vec = tmp_path / "vec"
    StoreWriter(vec, "fake").add(
        Episode(
            "fake",
            {"state": np.zeros((5, 3), np.float32)},
            np.zeros(5, np.int64),
            np.zeros(5, np.float32),
            seed=0,
        )
    )
    assert main(["data", "probe", str(vec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one image observation" in err[0]
    assert main(["data", "probe", str(path), "--heldout", "4"]) == 2
    assert "needs at least one more" in capsys.readouterr().err
    assert main(["data", "probe", str(tmp_path / "missing")]) == 2
    assert main(["data", "probe", str(path), "--play", "-1"]) == 2
    assert "--play must be >= 0" in capsys.readouterr().err
    assert main(["data", "probe", str(path), "--play", "1", "--play-temperature", "-1"]) == 2
    assert "--play-temperature must be >= 0" in capsys.readouterr().err


def test_probe_plays_what_it_learned_in_closed_loop(tmp_path):
    # fake-image rewards naming the quadrant that holds the square: readable from the frame
    collect("fake-image", 12, tmp_path / "store", seed=0)
    model, report = train_probe(tmp_path / "store", FAST)
    assert report.probe_accuracy > 0.95
    returns = play_probe(model, "fake-image", 3, seed=2_000_000)
    assert len(returns) == 3
    assert registry.spec("fake-image").normalised(float(np.mean(returns))) > 0.9


def test_untrained_probe_plays_near_random(tmp_path):
    collect("fake-image", 12, tmp_path / "store", seed=0)
    model, _ = train_probe(tmp_path / "store", ProbeConfig(**{**FAST.__dict__, "steps": 1}))
    returns = play_probe(model, "fake-image", 3, seed=2_000_000)
    assert registry.spec("fake-image").normalised(float(np.mean(returns))) < 0.6


def test_extra_stores_add_training_episodes_and_keep_the_held_out_ones(tmp_path):
    rng = np.random.default_rng(5)
    # The main store alone barely teaches the task: one 4-step training episode.
    xs = rng.integers(0, SIZE - 1, 4)
    held = rng.integers(0, SIZE - 1, 200)
    main_store = _store(
        tmp_path / "main",
        [
            (_frames(xs), (xs >= SIZE // 2).astype(np.int64)),
            (_frames(held), (held >= SIZE // 2).astype(np.int64)),
        ],
    )
    extra = _side_store(tmp_path / "extra", rng, episodes=6, steps=100)
    cfg = ProbeConfig(**{**FAST.__dict__, "heldout": 1})
    alone = probe_store(main_store, cfg)
    both = probe_store(main_store, cfg, extra=[extra])
    assert alone.heldout_samples == both.heldout_samples == 200
    assert (alone.train_samples, both.train_samples) == (4, 4 + 600)
    assert both.extra == [str(extra)]
    assert both.probe_accuracy > 0.9
    assert both.probe_ce < alone.probe_ce


def test_extra_store_of_another_task_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(6)
    path = _side_store(tmp_path / "side", rng, episodes=3, steps=20)
    other = _side_store(tmp_path / "other", rng, episodes=3, steps=20)
    other_task = _store(
        tmp_path / "pong-like",
        [(_frames(np.zeros(5, np.int64)), np.zeros(5, np.int64))],
        task="fake-image-other",
    )
    argv = ["data", "probe", str(path), "--steps", "5", "--heldout", "1"]
    assert main([*argv, "--extra", str(other), "--extra", str(other)]) == 0
    assert "2 extra stores" in capsys.readouterr().out
    assert main([*argv, "--extra", str(other_task)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot extend a probe of 'fake-image'" in err[0]


def test_sampled_play_is_seeded_and_differs_from_greedy(tmp_path):
    collect("fake-image", 12, tmp_path / "store", seed=0)
    # An untrained probe: its softmax is near uniform, so sampling plays other actions.
    model, _ = train_probe(tmp_path / "store", ProbeConfig(**{**FAST.__dict__, "steps": 1}))
    greedy = play_probe(model, "fake-image", 4, seed=2_000_000)
    assert play_probe(model, "fake-image", 4, seed=2_000_000, temperature=0.0) == greedy
    sampled = play_probe(model, "fake-image", 4, seed=2_000_000, temperature=1.0)
    assert play_probe(model, "fake-image", 4, seed=2_000_000, temperature=1.0) == sampled
    assert sampled != greedy
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        play_probe(model, "fake-image", 1, seed=0, temperature=-1.0)
