import json

import numpy as np
import pytest

import gato.envs as envs
from gato.cli import main
from gato.data import collect as collect_mod
from gato.data.collect import collect, min_return_for
from gato.data.store import EpisodeStore, StoreError, StoreWriter, read_manifest
from gato.envs.rollout import rollout


def _episodes(task: str, n: int, seed: int = 0):
    env, expert = envs.make(task), envs.expert(task)
    return [rollout(env, expert, seed + i, task) for i in range(n)]


def _assert_same(a, b):
    assert set(a.observations) == set(b.observations)
    for k in a.observations:
        assert a.observations[k].dtype == b.observations[k].dtype
        np.testing.assert_array_equal(a.observations[k], b.observations[k])
    assert a.actions.dtype == b.actions.dtype and a.rewards.dtype == b.rewards.dtype
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert (a.terminated, a.truncated) == (b.terminated, b.truncated)
    assert (a.seed, a.task) == (b.seed, b.task)


@pytest.mark.parametrize("task", ["fake", "fake-continuous", "fake-image", "pendulum"])
def test_round_trip_is_bit_exact(tmp_path, task):
    eps = _episodes(task, 3)
    writer = StoreWriter(tmp_path, task, chunk_steps=5)  # several chunks per episode
    for ep in eps:
        writer.add(ep)
    store = EpisodeStore(tmp_path)
    assert len(store) == 3 and store.task == task
    for ep, back in zip(eps, store, strict=True):
        _assert_same(ep, back)
    np.testing.assert_array_equal(store.lengths, [len(e) for e in eps])
    np.testing.assert_allclose(store.returns, [e.score for e in eps])


def test_window_reads_a_slice_across_chunks(tmp_path):
    ep = _episodes("pendulum", 1)[0]  # 200 steps
    writer = StoreWriter(tmp_path, "pendulum", chunk_steps=16)
    writer.add(ep)
    w = EpisodeStore(tmp_path).window(0, 30, 75)
    np.testing.assert_array_equal(w.observations["state"], ep.observations["state"][30:75])
    np.testing.assert_array_equal(w.actions, ep.actions[30:75])
    assert not w.truncated  # only the window that reaches the end carries how it ended
    assert EpisodeStore(tmp_path).window(0, 190, 200).truncated


def test_lengths_and_returns_come_from_the_manifest_without_opening_shards(tmp_path):
    writer = StoreWriter(tmp_path, "fake")
    for ep in _episodes("fake", 2):
        writer.add(ep)
    for shard in tmp_path.glob("ep_*.npz"):
        shard.unlink()
    store = EpisodeStore(tmp_path)
    assert list(store.lengths) == [12, 12] and len(store.returns) == 2
    with pytest.raises(StoreError, match="ep_0000000.npz .* is missing"):
        store.episode(0)


def test_flipped_byte_is_an_error_naming_the_shard(tmp_path):
    writer = StoreWriter(tmp_path, "fake-image")
    for ep in _episodes("fake-image", 3):
        writer.add(ep)
    shard = tmp_path / "ep_0000001.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    store = EpisodeStore(tmp_path)
    store.episode(0)  # the other shards still read
    with pytest.raises(StoreError, match="shard ep_0000001.npz .* corrupted"):
        store.episode(1)
    with pytest.raises(StoreError, match="ep_0000001.npz"):
        EpisodeStore(tmp_path).verify()


def test_truncated_shard_is_an_error_naming_the_shard(tmp_path):
    writer = StoreWriter(tmp_path, "fake")
    for ep in _episodes("fake", 2):
        writer.add(ep)
    shard = tmp_path / "ep_0000000.npz"
    shard.write_bytes(shard.read_bytes()[:-40])
    with pytest.raises(StoreError, match="shard ep_0000000.npz .* truncated"):
        EpisodeStore(tmp_path).episode(0)


def test_missing_store_and_bad_manifest_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no episode store"):
        EpisodeStore(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable manifest"):
        EpisodeStore(tmp_path)


def test_collect_is_deterministic_and_independent_of_workers(tmp_path):
    a = collect("fake", 6, tmp_path / "a", seed=3, min_score_frac=0, progress=False)
    b = collect("fake", 6, tmp_path / "b", seed=3, workers=2, min_score_frac=0, progress=False)
    assert a.episodes == b.episodes == 6
    ma, mb = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert [r.sha256 for r in ma.episodes] == [r.sha256 for r in mb.episodes]
    assert [r.seed for r in ma.episodes] == list(range(3, 9))  # episode i uses seed base + i


def test_collect_filters_episodes_below_the_threshold(tmp_path):
    # frac 0.95 of the measured fake scores: the expert's exploration fails some episodes.
    threshold = min_return_for("fake", 0.95)
    s = envs.spec("fake")
    assert threshold == pytest.approx(s.random_score + 0.95 * (s.expert_score - s.random_score))
    summary = collect("fake", 20, tmp_path, min_score_frac=0.95, progress=False)
    store = EpisodeStore(tmp_path)
    assert len(store) == 20 and summary.rejected > 0
    assert store.returns.min() >= threshold
    rejected = read_manifest(tmp_path).collection["rejected"]
    assert len(rejected) == summary.rejected and all(r["score"] < threshold for r in rejected)
    kept_and_rejected = sorted(store.seeds + [r["seed"] for r in rejected])
    assert kept_and_rejected == list(range(len(kept_and_rejected)))  # no seed skipped
    assert list(store.indices(min_return=12.0)) == list(np.flatnonzero(store.returns >= 12))


def test_interrupted_collection_keeps_finished_episodes_and_resumes(tmp_path, monkeypatch):
    full = collect("fake", 8, tmp_path / "full", min_score_frac=0, progress=False)
    calls = {"n": 0}
    real = collect_mod._attempt

    def dies_after_five(args):
        if calls["n"] == 5:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(args)

    monkeypatch.setattr(collect_mod, "_attempt", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        collect("fake", 8, tmp_path / "part", min_score_frac=0, progress=False)
    part = EpisodeStore(tmp_path / "part")
    assert len(part) == 5
    part.verify()
    (tmp_path / "part" / "ep_0000006.npz").write_bytes(b"orphan of a killed worker")
    monkeypatch.setattr(collect_mod, "_attempt", real)
    resumed = collect("fake", 8, tmp_path / "part", min_score_frac=0, progress=False)
    assert resumed.new_episodes == 3 and full.episodes == 8
    a, b = read_manifest(tmp_path / "full"), read_manifest(tmp_path / "part")
    assert [r.sha256 for r in a.episodes] == [r.sha256 for r in b.episodes]
    EpisodeStore(tmp_path / "part").verify()


def test_resume_with_other_settings_is_refused(tmp_path):
    collect("fake", 2, tmp_path, seed=0, min_score_frac=0, progress=False)
    with pytest.raises(ValueError, match="same --seed"):
        collect("fake", 4, tmp_path, seed=1, min_score_frac=0, progress=False)
    with pytest.raises(ValueError, match="holds task 'fake'"):
        collect("fake-image", 4, tmp_path, min_score_frac=0, progress=False)


def test_cli_collect_writes_a_store(tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["data", "collect", "--task", "fake", "--episodes", "3", "--out", str(out)]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["task"] == "fake"
    assert manifest["counts"] == {"episodes": 3, "steps": 36}
    assert "3 episodes of fake" in capsys.readouterr().out
    assert main(["data", "collect", "--task", "nope", "--episodes", "1", "--out", str(out)]) == 2
