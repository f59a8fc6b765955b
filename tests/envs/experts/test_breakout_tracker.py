"""The Breakout tracker: an expert that decides from the last two frames and its last move."""

from types import SimpleNamespace

import numpy as np
import pytest

from gato.envs.experts.breakout import BALL_X, BALL_Y, FIRE, LEFTFIRE, PADDLE_X, RIGHTFIRE
from gato.envs.experts.breakout_tracker import (
    HALF_STEP,
    HIT_DX,
    LAND_Y,
    WALL_HI,
    WALL_LO,
    BreakoutTracker,
    aim,
    fold,
    move,
)


def _env(paddle: int, ball: tuple[int, int]) -> SimpleNamespace:
    """Just enough of an ALE env for the tracker: RAM with the three positions it reads."""
    ram = np.zeros(128, np.uint8)
    ram[PADDLE_X], ram[BALL_X], ram[BALL_Y] = paddle, *ball
    return SimpleNamespace(unwrapped=SimpleNamespace(ale=SimpleNamespace(getRAM=lambda: ram)))


def test_fold_bounces_a_free_path_off_both_walls():
    assert fold(100) == 100
    assert fold(WALL_LO - 10) == WALL_LO + 10
    assert fold(WALL_HI + 10) == WALL_HI - 10
    assert fold(WALL_HI + (WALL_HI - WALL_LO) + 5) == WALL_LO + 5  # across and back


def test_aim_extends_a_falling_ball_along_its_last_step_to_the_paddle():
    # 4 px right per 4 px down: it lands as far right as it still has to fall
    assert aim((100, LAND_Y - 20), (96, LAND_Y - 24)) == 120
    # the same line past the right wall comes back off it
    assert aim((190, LAND_Y - 20), (186, LAND_Y - 24)) == fold(210)


def test_aim_follows_a_rising_or_new_ball_and_a_jump_starts_a_new_flight():
    assert aim((100, 120), (96, 124)) == 100  # rising
    assert aim((100, 120), None) == 100  # first sight
    assert aim((100, 120), (160, 100)) == 100  # too far from the last step: a new ball


def test_move_steers_the_paddles_resting_point_not_its_position():
    target = 100 + HIT_DX  # centred over paddle x 100
    assert move(100, 0, target) == 0
    assert move(100 - 3 * HALF_STEP, 0, target) == 1
    assert move(100 + 3 * HALF_STEP, 0, target) == -1
    # still travelling right after a press: it will come to rest near 100 on its own
    assert move(100 - HALF_STEP, 1, target) == 0


def test_the_tracker_serves_when_no_ball_is_in_play():
    tracker = BreakoutTracker()
    env = _env(paddle=100, ball=(0, 0))
    tracker.reset(env, np.random.default_rng(0))
    assert tracker.act(env, None) == FIRE


@pytest.mark.parametrize("history", [[], [(60, 40), (70, 60)], [(150, 100)]])
def test_the_tracker_acts_on_the_last_two_frames_and_its_last_move_only(history):
    """Whatever came before, the same last two ball positions, paddle and last move give
    the same action: what it decides is visible to a learner."""
    tracker = BreakoutTracker()
    tracker.reset(_env(100, (0, 0)), np.random.default_rng(0))
    for ball in history:
        tracker.act(_env(100, ball), None)
    tracker.act(_env(100, (140, 150)), None)  # the frame before: the ball falls right
    tracker.last_move = 0
    assert tracker.act(_env(100, (144, 154)), None) == RIGHTFIRE  # lands near 168
    tracker.last_move = 0
    assert tracker.act(_env(190, (140, 158)), None) == LEFTFIRE  # now falling left


@pytest.mark.slow
def test_the_tracker_clears_bricks_in_the_task_env():
    from gato.envs import make
    from gato.envs.rollout import rollout

    episode = rollout(make("breakout"), BreakoutTracker(), 0)
    assert episode.score > 100  # random play scores 1.1 a game (envs/scores.json)
