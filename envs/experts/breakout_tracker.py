"""Breakout tracker: an expert whose every action the last two frames explain.

The planner (``breakout.py``) plays by simulating the emulator ahead, and the PPO
policy (``breakout-ppo``) by a network nobody can read; no learner here has cloned
either (docs/results/findings.md). This expert decides from what a learner sees:
the ball's position in this frame and the last, the paddle's position, and its own
previous move (an action token in the learner's context). No simulation, no
randomness, no memory beyond one step.

The rule:

1. No ball in play: FIRE (serve).
2. Ball falling (its y grew since the last step, same flight): extend its last step's
   line down to the paddle's height ``LAND_Y``, folding it back at the side walls,
   and aim there. Otherwise (rising, or just served): aim at the ball's x.
3. The paddle is driven by an analogue controller that runs ahead of it: a press
   moves the paddle ~12 px this step and ~11 px more on the next, holding moves it
   ~23 px a step (measured, sticky actions off). So the paddle comes to rest about
   ``HALF_STEP`` px beyond where it is, in the direction of the last move; move
   towards the aim when that resting point is more than ``BAND`` px off it.

Every move is sent with the fire button held (as the planner's are), so a clone
serves whatever it picks.

The constants were chosen in the task env (sticky 0.25) on seeds 0-9, 275 a game there
(``BAND`` 4 against 0..14, ``LAND_Y`` 178 against 174..182); over seeds 0-99 it scores
200.3 a game against the planner's 351 (docs/results/breakout-tracker/).

RAM (see ``breakout.py``): 72 paddle x, 99 ball x, 101 ball y (0: no ball).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.base import Expert
from gato.envs.experts.breakout import BALL_X, BALL_Y, FIRE, LEFTFIRE, PADDLE_X, RIGHTFIRE

WALL_LO, WALL_HI = 52, 198  # ball x at which it bounces off the left and right walls
LAND_Y = 178  # ball y aimed for: the paddle's height
HIT_DX = 5  # ball x - paddle x at a centred hit
HALF_STEP = 11  # px the paddle still travels after a press (see the module docstring)
BAND = 4  # px of aim error left alone
MAX_JUMP = 20  # px between two steps beyond which the ball is a new one, not the same flight
MOVES = {-1: LEFTFIRE, 0: FIRE, 1: RIGHTFIRE}


def fold(x: float, lo: float = WALL_LO, hi: float = WALL_HI) -> float:
    """Where a ball travelling freely to ``x`` really is, bouncing between ``lo`` and ``hi``."""
    width = hi - lo
    m = (x - lo) % (2 * width)
    return lo + (m if m <= width else 2 * width - m)


def aim(ball: tuple[int, int], previous: tuple[int, int] | None) -> float:
    """The ball x to put the paddle under, from the ball now and one step ago."""
    x, y = ball
    if previous is None:
        return float(x)
    px, py = previous
    same_flight = abs(x - px) < MAX_JUMP and abs(y - py) < MAX_JUMP
    if same_flight and py < y < LAND_Y:  # falling: extend the line to the paddle
        return fold(x + (x - px) / (y - py) * (LAND_Y - y))
    return float(x)


def move(paddle: int, last_move: int, target: float) -> int:
    """-1 (left), 0 or +1 (right): steer the paddle's resting point towards ``target``."""
    rest = paddle + HALF_STEP * last_move
    error = target - HIT_DX - rest
    return 1 if error > BAND else -1 if error < -BAND else 0


class BreakoutTracker(Expert):
    """Follows the ball's line to the paddle (see the module docstring)."""

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        self.previous: tuple[int, int] | None = None  # ball (x, y) one step ago
        self.last_move = 0

    def act(self, env: gym.Env, obs: Any) -> int:
        ram = env.unwrapped.ale.getRAM()
        ball = (int(ram[BALL_X]), int(ram[BALL_Y]))
        if ball[1] == 0:  # no ball in play: serve
            self.previous, self.last_move = None, 0
            return FIRE
        target = aim(ball, self.previous)
        self.previous = ball
        self.last_move = move(int(ram[PADDLE_X]), self.last_move, target)
        return MOVES[self.last_move]
