"""``gato data collect --dagger``: the checkpoint plays, the expert labels its states;
``--explore``: the expert plays with random detours, a clean expert labels;
``--expert FILE``: a trained RAM policy plays instead of the scripted expert.

(Plain expert collection, filtering and resuming are tested with the store in
``test_store.py``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gato.envs as envs
from gato.cli import main
from gato.config import load_preset
from gato.data.collect import collect, model_player
from gato.data.store import EpisodeStore, read_manifest
from gato.digest import file_sha256
from gato.envs.fake import fake_target
from gato.envs.perturb import Perturbed
from gato.envs.rollout import rollout
from gato.evaluate import evaluate_task
from gato.loading import load_trained, save_trained
from gato.model import Gato

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained debug model: its greedy actions are far from the fake expert's."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "run"
    return save_trained(path, Gato(load_preset("debug")), ["fake"])


def test_the_dagger_learner_plays_as_gato_eval_plays(checkpoint):
    trained = load_trained(checkpoint)
    played = [rollout(envs.make("fake"), model_player(checkpoint, "fake"), s) for s in (4, 5)]
    result = evaluate_task(trained, envs.spec("fake"), episodes=2, envs=2, seed=4)
    assert [p.score for p in played] == result.returns


def test_dagger_records_the_experts_labels_on_the_states_the_checkpoint_visits(
    checkpoint, tmp_path
):
    summary = collect("fake", 3, tmp_path, seed=7, dagger=checkpoint, progress=False)
    assert summary.episodes == 3 and summary.min_return is None
    store = EpisodeStore(tmp_path)
    labels = agree = steps = 0
    for i, episode in enumerate(store):
        alone = rollout(envs.make("fake"), model_player(checkpoint, "fake"), 7 + i)
        # The states and rewards are the checkpoint's own episode ...
        np.testing.assert_array_equal(episode.observations["state"], alone.observations["state"])
        np.testing.assert_array_equal(episode.rewards, alone.rewards)
        assert store.returns[i] == pytest.approx(alone.score)
        # ... the actions are the expert's (argmax of the state, epsilon 0.1 of noise).
        targets = np.array([fake_target(s) for s in episode.observations["state"]])
        labels += int((episode.actions == targets).sum())
        agree += int((alone.actions == targets).sum())
        steps += len(episode)
    assert labels >= 0.8 * steps  # the expert, up to its exploration
    assert agree < 0.5 * steps  # the untrained learner would have taught something else


def test_dagger_manifest_names_the_checkpoint_and_resume_needs_the_same_one(checkpoint, tmp_path):
    collect("fake", 2, tmp_path, dagger=checkpoint, progress=False)
    collection = read_manifest(tmp_path).collection
    assert collection["dagger"].endswith("step_00000000") and collection["min_return"] is None
    other = save_trained(tmp_path / "other", Gato(load_preset("debug")), ["fake"])
    with pytest.raises(ValueError, match="same --seed/--min-score-frac/--dagger"):
        collect("fake", 3, tmp_path, dagger=other, progress=False)
    with pytest.raises(ValueError, match="same --seed/--min-score-frac/--dagger"):
        collect("fake", 3, tmp_path, min_score_frac=0, progress=False)  # an expert store now
    assert collect("fake", 3, tmp_path, dagger=checkpoint, progress=False).new_episodes == 1


def test_dagger_refuses_a_filter_and_a_checkpoint_of_other_tasks(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="keeps every episode"):
        collect("fake", 1, tmp_path, dagger=checkpoint, min_score_frac=0.8, progress=False)
    with pytest.raises(ValueError, match="not trained on 'fake-image'"):
        collect("fake-image", 1, tmp_path / "img", dagger=checkpoint, progress=False)
    with pytest.raises(FileNotFoundError):
        collect("fake", 1, tmp_path / "x", dagger=tmp_path / "missing", progress=False)


def test_cli_dagger_writes_a_store(checkpoint, tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["data", "collect", "--task", "fake", "--episodes", "2", "--out", str(out)]
    assert main([*argv, "--dagger", str(checkpoint)]) == 0
    assert "2 episodes of fake (2 new, none filtered)" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["counts"]["episodes"] == 2
    assert main([*argv, "--dagger", str(tmp_path / "missing")]) != 0
    assert main([*argv, "--dagger", str(checkpoint), "--min-score-frac", "0.5"]) == 2


def _same_stores(a_dir, b_dir) -> None:
    for a, b in zip(EpisodeStore(a_dir), EpisodeStore(b_dir), strict=True):
        np.testing.assert_array_equal(a.observations["state"], b.observations["state"])
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)


def test_dagger_stores_are_the_same_for_any_number_of_workers(checkpoint, tmp_path):
    one = collect("fake", 4, tmp_path / "one", seed=2, dagger=checkpoint, progress=False)
    two = collect("fake", 4, tmp_path / "two", dagger=checkpoint, seed=2, workers=2, progress=False)
    assert one.episodes == two.episodes == 4
    _same_stores(tmp_path / "one", tmp_path / "two")


def test_dagger_stores_are_the_same_for_any_number_of_envs_played_at_once(checkpoint, tmp_path):
    kw = dict(seed=5, dagger=checkpoint, progress=False)
    collect("fake", 5, tmp_path / "alone", envs=1, **kw)
    collect("fake", 5, tmp_path / "threes", envs=3, **kw)  # a group of 3, then one of 2
    collect("fake", 5, tmp_path / "pool", envs=2, workers=2, **kw)
    collect("fake", 2, tmp_path / "resumed", **kw)  # stopped after 2, then continued
    assert collect("fake", 5, tmp_path / "resumed", **kw).new_episodes == 3
    for other in ("threes", "pool", "resumed"):
        _same_stores(tmp_path / "alone", tmp_path / other)


@pytest.mark.parametrize("torch_first", [False, True])
def test_a_pool_worker_runs_torch_on_one_thread(torch_first):
    # The worker initializer, in a fresh interpreter as a spawned worker is, with torch
    # imported before it (by a job's modules) or after it (by the expert or learner).
    # Both start from 3 threads, so the check holds on a machine of any core count
    # (on one core torch's own default is already 1).
    code = "from gato.data.collect import _one_thread; _one_thread(); import torch"
    if torch_first:
        code = "import torch; torch.set_num_threads(3); " + code
    env = {**os.environ, "OMP_NUM_THREADS": "3"}  # what a parent process might pass down
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run(
        [sys.executable, "-c", code + "; print(torch.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_envs_needs_dagger_and_a_positive_count(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="--envs .* needs --dagger"):
        collect("fake", 1, tmp_path / "a", envs=4, min_score_frac=0, progress=False)
    with pytest.raises(ValueError, match="a value >= 1, got 0"):
        collect("fake", 1, tmp_path / "b", envs=0, dagger=checkpoint, progress=False)
    argv = ["data", "collect", "--task", "fake", "--episodes", "1", "--out", str(tmp_path / "c")]
    assert main([*argv, "--envs", "2"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_explore_records_clean_labels_on_the_detoured_episode(tmp_path):
    summary = collect("fake", 6, tmp_path, seed=3, explore=(0.3, 5), progress=False)
    assert summary.episodes == 6 and summary.min_return is None and summary.rejected == 0
    store = EpisodeStore(tmp_path)
    labels = steps = 0
    for i, episode in enumerate(store):
        # The store replays exactly: the perturbed expert played, a clean one labelled.
        again = rollout(
            envs.make("fake"),
            Perturbed(envs.expert("fake"), 0.3, 5),
            3 + i,
            labeler=envs.expert("fake"),
        )
        np.testing.assert_array_equal(episode.observations["state"], again.observations["state"])
        np.testing.assert_array_equal(episode.actions, again.actions)
        np.testing.assert_array_equal(episode.rewards, again.rewards)
        targets = np.array([fake_target(s) for s in episode.observations["state"]])
        labels += int((episode.actions == targets).sum())
        steps += len(episode)
    assert labels >= 0.8 * steps  # the labels are the expert's (up to its epsilon 0.1)
    # The returns are the detoured play's: below the expert's own on the same seeds.
    plain = [rollout(envs.make("fake"), envs.expert("fake"), 3 + i).score for i in range(6)]
    assert store.returns.mean() < np.mean(plain) - 1.0


def test_explore_resume_needs_the_same_settings_and_refuses_dagger_and_filters(
    checkpoint, tmp_path
):
    collect("fake", 2, tmp_path, explore=(0.2, 4), progress=False)
    assert read_manifest(tmp_path).collection["explore"] == [0.2, 4]
    with pytest.raises(ValueError, match="--explore to continue"):
        collect("fake", 3, tmp_path, explore=(0.2, 5), progress=False)
    with pytest.raises(ValueError, match="--explore to continue"):
        collect("fake", 3, tmp_path, min_score_frac=0, progress=False)
    assert collect("fake", 3, tmp_path, explore=(0.2, 4), progress=False).new_episodes == 1
    with pytest.raises(ValueError, match="use one"):
        collect("fake", 1, tmp_path / "x", explore=(0.2, 4), dagger=checkpoint, progress=False)
    with pytest.raises(ValueError, match="keeps every episode"):
        collect("fake", 1, tmp_path / "y", explore=(0.2, 4), min_score_frac=0.5, progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_explore_writes_a_store_and_bad_settings_exit_2(tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["data", "collect", "--task", "fake", "--episodes", "2", "--out", str(out)]
    assert main([*argv, "--explore", "0.5", "--explore-hold", "3"]) == 0
    assert "2 episodes of fake (2 new, none filtered)" in capsys.readouterr().out
    assert read_manifest(out).collection["explore"] == [0.5, 3]
    for bad in (["--explore", "0"], ["--explore", "0.5", "--explore-hold", "0"]):
        assert main([*argv[:-1], str(tmp_path / "bad"), *bad]) == 2
        assert "--explore needs 0 < P <= 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_explore_stores_are_the_same_for_any_number_of_workers(tmp_path):
    one = collect("fake", 4, tmp_path / "one", seed=5, explore=(0.3, 3), progress=False)
    two = collect("fake", 4, tmp_path / "two", seed=5, explore=(0.3, 3), workers=2, progress=False)
    assert one.episodes == two.episodes == 4
    for a, b in zip(EpisodeStore(tmp_path / "one"), EpisodeStore(tmp_path / "two"), strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)


@pytest.fixture(scope="module")
def ram_policy(tmp_path_factory):
    """A small untrained Pong RAM policy."""
    from gato.envs.experts.ram_policy import MlpPolicy, RamPolicySpec

    torch.manual_seed(0)
    spec = RamPolicySpec("Pong", (49, 54, 51, 50), history=2, actions=(0, 3, 4), hidden=(8,))
    return MlpPolicy(spec).save(tmp_path_factory.mktemp("expert") / "pong.safetensors")


def test_a_ram_policy_plays_instead_of_the_scripted_expert(ram_policy, tmp_path):
    from gato.envs.experts.ram_policy import RamPolicyExpert

    out = tmp_path / "store"
    summary = collect("pong", 1, out, seed=7, min_score_frac=0, expert_file=ram_policy,
                      progress=False)  # fmt: skip
    assert summary.episodes == 1
    assert read_manifest(out).collection["expert_file"] == str(ram_policy.resolve())
    episode = next(iter(EpisodeStore(out)))
    again = rollout(envs.make("pong"), RamPolicyExpert(ram_policy), 7)
    np.testing.assert_array_equal(episode.actions, again.actions)
    np.testing.assert_array_equal(episode.rewards, again.rewards)
    scripted = rollout(envs.make("pong"), envs.expert("pong"), 7)
    assert not np.array_equal(episode.actions[:200], scripted.actions[:200])
    # Resuming needs the same expert: the scripted one would mix two experts in one store.
    with pytest.raises(
        ValueError,
        match=r"pong.safetensors', 'expert_sha256': '[0-9a-f]{64}'}, "
        r"not \{.*'expert_file': None, 'expert_sha256': None}",
    ):
        collect("pong", 2, out, seed=7, min_score_frac=0, progress=False)


def test_resuming_knows_the_expert_by_its_weights_not_its_path(ram_policy, tmp_path):
    import shutil

    out, copy = tmp_path / "store", tmp_path / "elsewhere" / "same.safetensors"
    copy.parent.mkdir()
    shutil.copy(ram_policy, copy)
    collect("pong", 1, out, seed=7, min_score_frac=0, expert_file=ram_policy, progress=False)
    assert read_manifest(out).collection["expert_sha256"] == file_sha256(ram_policy)
    # The same weights under another path continue the store ...
    summary = collect("pong", 2, out, seed=7, min_score_frac=0, expert_file=copy,
                      progress=False)  # fmt: skip
    assert (summary.episodes, summary.new_episodes) == (2, 1)
    # ... other weights under that path do not (the copy changes, the fixture does not).
    from gato.envs.experts.ram_policy import MlpPolicy

    with torch.no_grad():
        policy = MlpPolicy.load(copy)
        for p in policy.parameters():
            p.add_(1.0)
        policy.save(copy)
    with pytest.raises(ValueError, match="was collected with"):
        collect("pong", 3, out, seed=7, min_score_frac=0, expert_file=copy, progress=False)
    # A store from before the digest was recorded is known by its file's content.
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["collection"]["expert_sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(ram_policy, tmp_path / "third.safetensors")
    summary = collect("pong", 3, out, seed=7, min_score_frac=0,
                      expert_file=tmp_path / "third.safetensors", progress=False)  # fmt: skip
    assert summary.new_episodes == 1
    assert read_manifest(out).collection["expert_sha256"] == file_sha256(ram_policy)


def test_a_ram_policy_for_another_game_is_refused_before_any_write(ram_policy, tmp_path):
    with pytest.raises(ValueError, match="plays ALE/Pong, not ALE/Breakout-v5"):
        collect("breakout", 1, tmp_path / "s", min_score_frac=0, expert_file=ram_policy,
                progress=False)  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_another_scripted_expert_of_the_task_plays_by_name(tmp_path):
    from gato.envs.experts.breakout_tracker import BreakoutTracker

    out = tmp_path / "store"
    collect("breakout", 1, out, seed=7, min_score_frac=0, expert_file="breakout-tracker",
            progress=False)  # fmt: skip
    collection = read_manifest(out).collection
    assert (collection["expert_file"], collection["expert_sha256"]) == ("breakout-tracker", None)
    episode = next(iter(EpisodeStore(out)))
    again = rollout(envs.make("breakout"), BreakoutTracker(), 7)
    np.testing.assert_array_equal(episode.actions, again.actions)
    # Resuming needs the same expert, by name.
    with pytest.raises(ValueError, match="was collected with"):
        collect("breakout", 2, out, seed=7, min_score_frac=0, progress=False)
    summary = collect("breakout", 2, out, seed=7, min_score_frac=0,
                      expert_file="breakout-tracker", progress=False)  # fmt: skip
    assert (summary.episodes, summary.new_episodes) == (2, 1)
