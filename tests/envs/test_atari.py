import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from gato.envs.atari import make_atari


def frames(env: gym.Env, seed: int, steps: int = 60) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs["image"]]
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs["image"])
    return np.stack(out)  # (steps + 1, 80, 80, 1)


def test_make_atari_spaces_are_dict_image_and_full_action_set():
    env = make_atari("Pong")
    assert env.observation_space == gym.spaces.Dict(
        {"image": gym.spaces.Box(0, 255, (80, 80, 1), np.uint8)}
    )
    assert env.action_space == gym.spaces.Discrete(18)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (80, 80, 1) and obs["image"].dtype == np.uint8
    assert env.unwrapped.get_action_meanings()[:6] == [
        "NOOP",
        "FIRE",
        "UP",
        "RIGHT",
        "LEFT",
        "DOWN",
    ]


def test_make_atari_rgb_has_three_channels():
    env = make_atari("Breakout", grayscale=False, screen_size=64)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3)


def test_make_atari_passes_gymnasium_check_env():
    # render_mode is None (frames come through the observation), so the render check is skipped.
    check_env(make_atari("Freeway").unwrapped, skip_render_check=True)
    check_env(make_atari("Freeway"), skip_render_check=True)


def test_sticky_actions_are_on_in_the_emulator():
    env = make_atari("Pong")
    env.reset(seed=0)
    ale = env.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert env.unwrapped._frameskip == 1  # the preprocessing wrapper does the skipping


def test_sticky_actions_change_the_trajectory_for_the_same_actions():
    # Same seed, same no-ops, same action sequence: only stickiness differs.
    sticky = frames(make_atari("Pong", noop_max=0), seed=1, steps=150)
    plain = frames(make_atari("Pong", noop_max=0, repeat_action_probability=0.0), 1, 150)
    assert not np.array_equal(sticky, plain)


def test_same_seed_gives_same_frames_and_different_seeds_differ():
    env = make_atari("Pong")
    a, b, c = frames(env, 3), frames(env, 3), frames(env, 4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_time_limit_truncates_episode():
    env = make_atari("Freeway", max_episode_steps=5)
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(5)]
    assert truncated == [False] * 4 + [True]


def test_frame_stack_lays_the_last_frames_out_as_channels_oldest_first():
    # The same seed and actions in a stacked and a plain env: channel i of the stacked
    # frame at step t is the plain frame at step t - (k - 1) + i, the first one repeated.
    stacked = frames(make_atari("Breakout", frame_stack=3), seed=5, steps=8)  # (9, 80, 80, 3)
    plain = frames(make_atari("Breakout"), seed=5, steps=8)[..., 0]  # (9, 80, 80)
    assert stacked.shape == (9, 80, 80, 3)
    for t in range(9):
        for i in range(3):
            assert np.array_equal(stacked[t, ..., i], plain[max(t - 2 + i, 0)]), (t, i)
    assert not np.array_equal(plain[0], plain[8])  # the check above can tell frames apart


def test_frame_stack_env_passes_gymnasium_check_env():
    env = make_atari("Breakout", frame_stack=3)
    assert env.observation_space["image"].shape == (80, 80, 3)
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"frame_stack": 0}, "frame_stack must be at least 1"),
     ({"frame_stack": 2, "grayscale": False}, "stacks grey frames")],
)  # fmt: skip
def test_frame_stack_rejects_a_size_below_one_and_rgb_frames(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_atari("Breakout", **kwargs)
