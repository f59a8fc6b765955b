"""`gato data state-probe`: a RAM policy's games recorded as exactly the states and choices
it acted on, and a clone of them that fits and plays through the same view."""

import json

import numpy as np
import pytest
import torch

from gato.cli import STATE_PROBE_STEPS, main
from gato.data.state_probe import (
    StateProbeConfig,
    position_columns,
    record,
    state_probe,
    task_of,
)
from gato.envs import registry
from gato.envs.experts.ram_policy import BREAKOUT, PONG, MlpPolicy, RamPolicyExpert, policy_file


@pytest.fixture(scope="module")
def breakout_ppo():
    return MlpPolicy.load(policy_file("breakout-ppo"))


def test_recorded_games_are_the_policys_own_greedy_choices_and_scores(breakout_ppo):
    env = registry.make("breakout")
    xs, ys, returns = record(breakout_ppo, env, episodes=1, seed=5)
    with torch.no_grad():
        again = breakout_ppo(torch.from_numpy(xs[0])).argmax(1).numpy()  # (T,)
    assert np.array_equal(again, ys[0])
    # the same game as the shipped expert plays through `gato data collect`
    expert = RamPolicyExpert(policy_file("breakout-ppo"))
    expert.reset(env, np.random.default_rng(0))
    obs, _ = env.reset(seed=5)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(expert.act(env, obs))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    env.close()
    assert (returns[0], len(ys[0])) == (total, steps)
    assert total > 20  # a game the policy plays, not one it loses at once


def test_the_clone_sees_positions_only_unless_given_the_last_action():
    assert position_columns(BREAKOUT, last_action=False) == slice(0, 12)  # 4 steps x 3 bytes
    assert position_columns(PONG, last_action=False) == slice(0, 16)
    features = np.zeros((2, BREAKOUT.n_features))
    assert features[:, position_columns(BREAKOUT, last_action=True)].shape == (2, 15)


def test_policies_map_to_their_gato_task():
    assert (task_of(BREAKOUT), task_of(PONG)) == ("breakout", "pong")


def test_clone_fits_better_than_the_action_frequencies_and_plays():
    cfg = StateProbeConfig(episodes=3, heldout=1, checkpoints=(100, 200), play=1)
    seen = []
    report = state_probe("breakout-ppo", cfg, progress=seen.append)
    assert [p.step for p in report.points] == [100, 200] and seen == report.points
    assert report.heldout_samples == 1515  # game 2 (seed 2) of breakout-ppo
    last = report.points[-1]
    assert last.heldout_ce < report.baseline_ce - 0.1
    assert last.accuracy > report.majority_accuracy
    assert len(last.returns) == 1 and last.returns[0] >= 0


@pytest.mark.parametrize(
    "kwargs",
    [dict(episodes=3, heldout=3), dict(heldout=0), dict(checkpoints=(100, 50)),
     dict(checkpoints=()), dict(checkpoints=(0, 10)), dict(play=-1)],
)  # fmt: skip
def test_config_refuses_what_cannot_be_scored(kwargs):
    with pytest.raises(ValueError):
        StateProbeConfig(**kwargs)


def test_cli_defaults_are_the_configs():
    cfg = StateProbeConfig()
    assert STATE_PROBE_STEPS == cfg.checkpoints
    assert (cfg.episodes, cfg.heldout, cfg.play, cfg.play_seed) == (30, 3, 10, 2_000_000)


def test_cli_writes_one_point_per_step_count(tmp_path, capsys):
    out = tmp_path / "state.json"
    argv = ["data", "state-probe", "breakout-ppo", "--episodes", "2", "--heldout", "1"]
    argv += ["--steps", "5,10", "--play", "0", "--threads", "1", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [p["step"] for p in report["points"]] == [5, 10]
    assert all(p["returns"] == [] and p["mean_return"] is None for p in report["points"])
    assert report["task"] == "breakout" and not report["last_action"]
    assert "breakout: 2 games of breakout-ppo" in capsys.readouterr().out
