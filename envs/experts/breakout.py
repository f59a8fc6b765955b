"""Breakout expert: serve, predict where the ball comes down, park the paddle there.

The ball's flight does not depend on the paddle until it reaches it, so a
sticky-free emulator copy (:class:`AleSimulator`) plays it forward with the
paddle idle (bricks and walls included) to the step where it comes down to
paddle height; that prediction is kept while the real ball follows the
predicted path and redone when it leaves it.

The paddle is driven by an emulated analogue controller: joystick presses move
a hidden potentiometer and the paddle x in RAM follows it a step or two later,
so a controller on the RAM x overshoots. Instead, every step the simulator
tries NOOP, LEFT and RIGHT, each followed by idle steps, and the expert takes
the one whose paddle comes to rest nearest the target. Replanning from the
real state every step absorbs sticky-action delays as they happen. A small
random aim offset per descent varies the return angle between demonstrations.
FIRE serves after a life is lost.

Every move is sent with the fire button held (NOOP -> FIRE, LEFT -> LEFTFIRE,
RIGHT -> RIGHTFIRE in the full 18-action set). Fire only serves, so play is
unchanged, but a learner imitating these demonstrations serves whatever move it
picks: with plain moves the serve is a handful of steps per episode, and a
cloned policy that never learned it waits for a ball that never comes (score 0).

RAM (verified): 72 paddle x (55 .. 191), 99 ball x, 101 ball y (0 when no
ball; the paddle meets the ball near y 178).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.ale_sim import SimulatingExpert

NOOP, FIRE, RIGHT, LEFT = 0, 1, 3, 4
RIGHTFIRE, LEFTFIRE = 11, 12
WITH_FIRE = {NOOP: FIRE, FIRE: FIRE, RIGHT: RIGHTFIRE, LEFT: LEFTFIRE}  # same move, fire held
PADDLE_X, BALL_X, BALL_Y = 72, 99, 101
LAND_Y = 180  # ball y taken as the landing (the paddle meets the ball at 176..184)
HIT_DX = 5  # ball x - paddle x aimed for at the hit (hits span about -4..14)
AIM = 2  # random aim offset range (+-) around HIT_DX
SETTLE_STEPS = 3  # idle steps after which the paddle has caught up with its controller
MAX_PREDICT_STEPS = 150  # agent steps simulated ahead for a landing
FINAL_STEPS = 4  # steps before the landing at which candidate moves are checked for a hit
CANDIDATES = ((NOOP,), (LEFT,), (RIGHT,), (LEFT, LEFT), (RIGHT, RIGHT))  # then idle


class BreakoutExpert(SimulatingExpert):
    """Clears bricks in Breakout with sticky actions (see the module docstring)."""

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)  # builds self.sim once
        self.path: list[tuple[int, int]] = []  # predicted ball (x, y) for the coming steps
        self.landing: float | None = None
        self.aim = 0
        self.last_action = NOOP

    def act(self, env: gym.Env, obs: Any) -> int:
        ram = env.unwrapped.ale.getRAM()
        ball = (int(ram[BALL_X]), int(ram[BALL_Y]))
        if ball[1] == 0:  # no ball in play: serve
            self.path, self.landing = [], None
            return FIRE
        if self.path and self.path[0] == ball:
            self.path.pop(0)
        else:  # first sight of this flight, or it left the predicted path
            self._predict(env)
        target = ball[0] if self.landing is None else self.landing
        action = self._steer(env, target - HIT_DX + self.aim)
        if self.landing is not None and len(self.path) < FINAL_STEPS:
            action = self._finish(env, action)
        self.last_action = action
        return WITH_FIRE[action]

    def _finish(self, env: gym.Env, default: int) -> int:
        """Close to the landing: the first move of the candidate that returns the ball
        most robustly, i.e. also when sticky actions delay it by a frame."""
        # (candidate,) 0..2: how many of {on time, one frame late} return the ball.
        scores = [self._returns(env, plan, 0) + self._returns(env, plan, 1) for plan in CANDIDATES]
        best = max(scores)
        firsts = [plan[0] for plan, score in zip(CANDIDATES, scores, strict=True) if score == best]
        return default if default in firsts else firsts[0]

    def _returns(self, env: gym.Env, plan: tuple[int, ...], delay: int) -> int:
        """1 if ``plan`` then idling returns the ball; its first ``delay`` frames repeat
        the previous action, as a sticky action would."""
        sim = self.sim
        sim.sync(env)
        for _ in range(delay):
            sim.ale.act(self.last_action)
        frames = [a for a in plan for _ in range(sim.frame_skip)][delay:]
        prev_y = int(sim.ram()[BALL_Y])
        for t in range(4 * (FINAL_STEPS + 4)):
            sim.ale.act(frames[t] if t < len(frames) else NOOP)
            y = int(sim.ram()[BALL_Y])
            if y == 0 or y > LAND_Y + 16:
                return 0
            if y < prev_y:
                return 1
            prev_y = y
        return 0

    def _predict(self, env: gym.Env) -> None:
        """Simulate the ball, paddle idle, until it comes down to paddle height."""
        sim = self.sim
        sim.sync(env)
        self.path, self.landing = [], None
        prev_x, prev_y = int(sim.ram()[BALL_X]), int(sim.ram()[BALL_Y])
        for _ in range(MAX_PREDICT_STEPS):
            sim.step(NOOP)
            ram = sim.ram()
            x, y = int(ram[BALL_X]), int(ram[BALL_Y])
            if y == 0:
                return
            # Down at paddle height, or bounced off the simulator's idle paddle there.
            bounced = y < prev_y and prev_y >= LAND_Y - 12
            if (y >= LAND_Y and y > prev_y) or bounced:
                self.landing = float(prev_x if bounced else x)
                self.aim = int(self.rng.integers(-AIM, AIM + 1))
                return
            self.path.append((x, y))
            prev_x, prev_y = x, y

    def _steer(self, env: gym.Env, target: float) -> int:
        """The action among NOOP/LEFT/RIGHT whose paddle settles nearest ``target``."""
        sim = self.sim
        best, best_error = NOOP, np.inf
        for action in (NOOP, LEFT, RIGHT):  # NOOP first: it wins ties
            sim.sync(env)
            sim.step(action)
            for _ in range(SETTLE_STEPS):
                sim.step(NOOP)
            error = abs(int(sim.ram()[PADDLE_X]) - target)
            if error < best_error:
                best, best_error = action, error
        return best
