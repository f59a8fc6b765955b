import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gato.envs as envs
from gato.envs.experts.base import Expert
from gato.envs.scores import format_task_table, load_scores

CLASSIC = ["cartpole", "acrobot", "mountaincar", "pendulum", "mountaincar-continuous"]
FAKE = ["fake", "fake-continuous", "fake-image"]
ATARI = ["pong", "breakout", "freeway", "boxing"]


def test_every_required_task_is_registered():
    assert set(CLASSIC + FAKE + ATARI) <= set(envs.task_names())


def test_unknown_task_is_a_value_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'nope'.*pong.*cartpole"):
        envs.make("nope")
    with pytest.raises(ValueError, match="known tasks"):
        envs.spec("nope")


def test_atari_specs_are_listed_without_starting_the_emulator():
    for task in ATARI:
        s = envs.spec(task)
        assert s.action.n == 18  # the full action set in every game
        assert s.observation["image"].shape == (80, 80, 1)


@pytest.mark.parametrize("task", CLASSIC + FAKE)
def test_make_passes_gymnasium_check_env(task):
    env = envs.make(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. CartPole's infinite velocity bounds
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("task", CLASSIC + FAKE)
def test_env_spaces_match_the_task_spec(task):
    env, s = envs.make(task), envs.spec(task)
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert set(env.observation_space.spaces) == set(s.observation)
    for key, f in s.observation.items():
        assert env.observation_space[key].shape == f.shape
    if s.action.is_discrete:
        assert env.action_space.n == s.action.n
    else:
        assert np.all(np.isfinite(env.action_space.low)) and np.all(
            np.isfinite(env.action_space.high)
        )
        assert tuple(env.action_space.low) == s.action.low
        assert tuple(env.action_space.high) == s.action.high
    if "state" in s.observation:
        assert env.observation_space["state"].dtype == np.float32
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("task", CLASSIC + FAKE)
def test_measured_scores_are_loaded_into_the_spec(task):
    s = envs.spec(task)
    row = load_scores()[task]
    assert s.random_score == row.random.mean and s.expert_score == row.expert.mean
    assert row.random.episodes >= 20 and len(row.random.seeds) == row.random.episodes
    assert s.expert_score > s.random_score
    assert s.normalised(s.expert_score) == pytest.approx(1.0)
    assert s.normalised(s.random_score) == pytest.approx(0.0)


def test_expert_factory_returns_a_fresh_expert():
    a, b = envs.expert("cartpole"), envs.expert("cartpole")
    assert isinstance(a, Expert) and a is not b


def test_task_table_lists_every_task_and_unmeasured_rows():
    table = format_task_table()
    for task in envs.task_names():
        assert task in table
    # Atari rows are filled in after the Atari branch lands; until then they say so.
    for line in table.splitlines():
        if line.startswith("pong") and "pong" not in load_scores():
            assert "not measured" in line


@pytest.mark.parametrize("game", ["pong", "breakout"])
def test_48_pixel_tasks_are_their_game_in_smaller_frames_with_its_scores(game):
    small, full = envs.spec(f"{game}-48"), envs.spec(game)
    assert small.observation["image"].shape == (48, 48, 1)
    assert (small.random_score, small.expert_score) == (full.random_score, full.expert_score)
    assert small.action == full.action
    env = envs.make(f"{game}-48")
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (48, 48, 1) and env.observation_space.contains(obs)
    row = next(r for r in format_task_table().splitlines() if r.startswith(f"{game}-48 "))
    assert f"{full.expert_score:.1f} +/-" in row  # the table shows the shared row too


def test_breakout_stack_is_breakout_with_three_frames_as_channels_and_breakouts_scores():
    stack, breakout = envs.spec("breakout-stack"), envs.spec("breakout")
    assert stack.observation["image"].shape == (80, 80, 3)
    assert (stack.random_score, stack.expert_score) == (breakout.random_score,
                                                        breakout.expert_score)  # fmt: skip
    assert stack.action == breakout.action
    assert envs.registry.scores_key("breakout-stack") == "breakout"
    obs, _ = envs.make("breakout-stack").reset(seed=0)
    assert obs["image"].shape == (80, 80, 3)
    first, _ = envs.make("breakout").reset(seed=0)
    for i in range(3):  # at reset every channel is the first frame
        assert np.array_equal(obs["image"][..., i], first["image"][..., 0])


def test_scores_key_is_the_shared_row_or_the_tasks_own():
    assert envs.registry.scores_key("pong-48") == "pong"
    assert envs.registry.scores_key("cartpole") == "cartpole"


def test_other_scripted_experts_are_found_by_name_and_an_unknown_name_is_listed():
    from gato.envs.experts.breakout_tracker import BreakoutTracker
    from gato.envs.registry import other_experts

    assert other_experts("breakout") == ["breakout-tracker"]
    assert isinstance(envs.expert("breakout", "breakout-tracker"), BreakoutTracker)
    assert other_experts("pong") == []
    with pytest.raises(ValueError, match="pong has no scripted expert 'breakout-tracker'"):
        envs.expert("pong", "breakout-tracker")
