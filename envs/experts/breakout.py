"""Breakout expert: serve, predict where the ball comes down, wait there.

While the ball falls, a sticky-free emulator copy (:class:`AleSimulator`) plays
the ball forward with the paddle idle until it reaches paddle height; the
paddle then heads for that x with a momentum-aware controller. The prediction
is refreshed every few steps (bricks and walls change the path), which costs a
few dozen emulator frames. A random aim offset per descent, within the paddle,
varies the return angle between demonstrations. FIRE serves after a life is lost.

RAM (verified): 72 paddle x (55 .. 191), 99 ball x, 101 ball y (0 when no
ball; the paddle meets the ball near y 175..182); the ball x at a hit is about
paddle x + 3.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.ale_sim import AleSimulator
from gato.envs.experts.base import Expert

NOOP, FIRE, RIGHT, LEFT = 0, 1, 3, 4
PADDLE_X, BALL_X, BALL_Y = 72, 99, 101
LAND_Y = 176  # ball y at which it meets the paddle
HIT_DX = 3  # ball x - paddle x when the ball meets the paddle's middle
AIM = 4  # random aim offset range (+-) around HIT_DX
TOLERANCE = 2
LEAD = 1.0  # steps of paddle velocity the controller looks ahead
REPREDICT_EVERY = 3  # agent steps between landing predictions
MAX_SIM_FRAMES = 400


class BreakoutExpert(Expert):
    def __init__(self) -> None:
        self.sim: AleSimulator | None = None

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        if self.sim is None:
            self.sim = AleSimulator(env)
        self.prev_px, self.prev_by = 0, 0
        self.landing: float | None = None
        self.aim = 0
        self.since_predict = 0

    def act(self, env: gym.Env, obs: Any) -> int:
        ram = env.unwrapped.ale.getRAM()
        px, bx, by = int(ram[PADDLE_X]), int(ram[BALL_X]), int(ram[BALL_Y])
        prev_px, self.prev_px = self.prev_px, px
        falling = by > self.prev_by
        self.prev_by = by
        if by == 0:  # no ball in play: serve
            self.landing = None
            return FIRE
        if falling:
            self.since_predict += 1
            if self.landing is None or self.since_predict >= REPREDICT_EVERY:
                if self.landing is None:
                    self.aim = int(self.rng.integers(-AIM, AIM + 1))
                self.landing = self._predict_landing(env)
                self.since_predict = 0
            target = (self.landing if self.landing is not None else bx) - HIT_DX + self.aim
        else:
            self.landing = None
            target = bx - HIT_DX  # follow the ball while it rises
        ahead = px + LEAD * (px - prev_px)
        if ahead < target - TOLERANCE:
            return RIGHT
        if ahead > target + TOLERANCE:
            return LEFT
        return NOOP

    def _predict_landing(self, env: gym.Env) -> float | None:
        """Ball x when it next reaches paddle height, the paddle idle; None if unknown."""
        sim = self.sim
        sim.sync(env)
        prev_y = int(sim.ram()[BALL_Y])
        for _ in range(MAX_SIM_FRAMES):
            ram = sim.ram()
            y = int(ram[BALL_Y])
            if y >= LAND_Y:
                return float(ram[BALL_X])
            if y < prev_y - 8 or y == 0:  # bounced off something or lost: no landing
                return None
            prev_y = y
            sim.ale.act(NOOP)
        return None
