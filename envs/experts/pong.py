"""Pong expert: plan the last steps before each hit over real action sequences.

Our paddle is driven by an emulated analogue controller: each emulator frame of
RIGHT/LEFT moves a hidden potentiometer by about 5.5 y units and the paddle in
RAM follows it a step or two later. An agent step is 4 frames, so a settled
paddle can only be placed on a 22-unit grid, while the band of paddle heights
that returns the ball is about 27 units wide and the band that wins the point
(a steep return off the paddle's edge that the computer misses) only about
15. Steering to a paddle target therefore cannot aim finely enough; timing can:
a paddle still moving at the hit frame meets the ball at heights off the grid.

So, once the ball is a few steps from our paddle, the expert copies the real
state into a sticky-free emulator (:class:`AleSimulator`) and plays every
candidate "wait w steps, hold UP or DOWN for k steps, then idle" forward to the
hit and on until the computer misses (+1), returns (0) or we miss (-1); plans
sharing a prefix share its simulation (cloned states), and the rally after our
hit is simulated once per distinct ball path. Winners are re-played with each
action change one frame late, as a sticky action would make it, and the best few
are ranked by their expected outcome over 0, 1 or 2 frames of delay at every
change: edge hits sit next to misses, so a plan needs margin on both sides. The
plan is kept while the real paddle and ball follow its predicted course, or
while its rest still wins from the real state, and is redone otherwise. Until
then the paddle is steered towards where the ball will arrive.

RAM (verified): 49 ball x (0 when no ball), 54 ball y, 51 our paddle y (the
right one, 38 top .. 203 bottom), 50 the computer's. With the full action set
RIGHT (3) moves our paddle up and LEFT (4) down; UP/DOWN do nothing in Pong.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from gato.envs.experts.ale_sim import SimulatingExpert

NOOP, PADDLE_UP, PADDLE_DOWN = 0, 3, 4
BALL_X, BALL_Y, PADDLE_Y = 49, 54, 51
HOME_Y = 120  # where the paddle waits while the ball is away
AIM = -8  # paddle y - ball y steered for before planning (middle of the return band)
HORIZON = 8  # plan once the ball is this many steps from our paddle (enough to cross)
MAX_FLIGHT = 120  # agent steps simulated for the ball's flight to us
MAX_RALLY = 80  # agent steps simulated after our hit until the computer hits or misses
SETTLE_STEPS = 3  # idle steps after which the paddle has caught up with its controller
STEP_Y = 22  # paddle travel per agent step of RIGHT/LEFT (4 frames of about 5.5)
HOLD_STEPS = 5  # steps a held direction is simulated for when steering
FINALISTS = 6  # plans whose expected outcome under sticky delays is computed
DELAY_P = (0.75, 0.1875, 0.0625)  # P(an action change is 0, 1, 2+ frames late)
KEY_LEN = 7  # frame of our hit, then ball (x, y) for 3 steps: identifies the return


@dataclass
class Rollout:
    """Where a simulated play stands."""

    t: int  # emulator frames played
    prev_x: int  # ball x after the last step
    key: tuple[int, ...] | None = None  # set at our hit, see KEY_LEN
    result: int | None = None  # +1 won, 0 returned by the computer, -1 lost


@dataclass
class Plan:
    """Agent actions to play and the (paddle y, ball x, ball y) expected after each."""

    actions: list[int]
    course: list[tuple[int, int, int]]
    wins: bool  # whether the plan is expected to win the point


class PongExpert(SimulatingExpert):
    """Wins Pong against the computer with sticky actions (see the module docstring)."""

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)  # builds self.sim once
        self.flight: list[tuple[int, int]] = []  # predicted ball (x, y) until it reaches us
        self.plan: Plan | None = None
        self.prev_x, self.prev_paddle = 0, 0
        self.last_action = NOOP

    def act(self, env: gym.Env, obs: Any) -> int:
        action = self._choose(env)
        self.last_action = action
        return action

    def _choose(self, env: gym.Env) -> int:
        ram = env.unwrapped.ale.getRAM()
        now = (int(ram[PADDLE_Y]), int(ram[BALL_X]), int(ram[BALL_Y]))
        ball_x, prev_x = now[1], self.prev_x
        self.prev_x = ball_x
        paddle_moved, self.prev_paddle = now[0] != self.prev_paddle, now[0]
        if self.plan is not None and self.plan.actions:
            expected = self.plan.course.pop(0) if self.plan.course else None
            if expected == now:  # on course: keep playing the plan
                return self.plan.actions.pop(0)
            if self.plan.wins and self._still_wins(env, self.plan):  # off course, still fine
                return self.plan.actions.pop(0)
        self.plan = None
        if ball_x == 0 or ball_x <= prev_x:  # no ball, or it moves away
            self.flight = []
            return self._steer(env, HOME_Y, paddle_moved)
        if self.flight and self.flight[0] == now[1:]:
            self.flight.pop(0)
        else:  # first sight of this approach, or the ball left the predicted flight
            self._predict_flight(env)
        if not self.flight:  # the point is decided before the ball reaches us
            return self._steer(env, HOME_Y, paddle_moved)
        if len(self.flight) <= HORIZON:
            self.plan = self._plan(env, len(self.flight))
            return self.plan.actions.pop(0)
        return self._steer(env, self.flight[-1][1] + AIM, paddle_moved)

    def _predict_flight(self, env: gym.Env) -> None:
        """Simulate the ball, paddle idle, to the step before it turns or passes us."""
        sim = self.sim
        sim.sync(env)
        self.flight = []
        prev_x = int(sim.ram()[BALL_X])
        for _ in range(MAX_FLIGHT):
            reward = sim.step(NOOP)
            ram = sim.ram()
            x, y = int(ram[BALL_X]), int(ram[BALL_Y])
            if reward != 0 or x == 0 or x < prev_x:
                if reward > 0:  # the computer misses: nothing to plan for
                    self.flight = []
                return
            self.flight.append((x, y))
            prev_x = x

    def _steer(self, env: gym.Env, target: float, moving: bool) -> int:
        """NOOP if the idle paddle settles nearest ``target``, else the direction whose
        held paddle passes nearest it (held, not tapped: after a long hold against the
        screen edge the controller is wound past it and one tap barely moves it).
        ``moving``: whether the paddle moved in the last step (else it has settled)."""
        if not moving and abs(self.prev_paddle - target) <= STEP_Y / 2:
            return NOOP  # settled within half a step's travel: no tap gets closer
        sim = self.sim
        sim.sync(env)
        for _ in range(SETTLE_STEPS + 1):
            sim.step(NOOP)
        best, best_error = NOOP, abs(int(sim.ram()[PADDLE_Y]) - target)
        for action in (PADDLE_UP, PADDLE_DOWN):
            sim.sync(env)
            for _ in range(HOLD_STEPS):
                sim.step(action)
                error = abs(int(sim.ram()[PADDLE_Y]) - target)
                if error < best_error - 2:
                    best, best_error = action, error

        return best

    # --- planning the hit -------------------------------------------------------------

    def _plan(self, env: gym.Env, to_hit: int) -> Plan:
        """Best "wait, hold, idle" plan for a ball ``to_hit`` steps from our paddle."""
        steps = to_hit + 2  # the plan covers the hit itself
        self.known: dict[tuple[int, ...], int] = {}  # ball after our hit -> outcome
        self.limit = (steps + MAX_RALLY) * self.sim.frame_skip  # frames simulated at most
        outcomes = self._search(env, steps)
        candidates = [[NOOP] * steps]
        for w in range(steps):
            for move in (PADDLE_UP, PADDLE_DOWN):
                for k in range(1, steps - w + 1):
                    candidates.append([NOOP] * w + [move] * k + [NOOP] * (steps - w - k))
        best = max(outcomes)
        finalists = [c for c, o in zip(candidates, outcomes, strict=True) if o == best]
        if best >= 0 and len(finalists) > 1:
            # Robustness, cheaply first: each action change one frame late.
            scores = []
            for plan in finalists:
                changes = self._changes(plan)
                late = [self._outcome(env, self._frames(plan, {c: 1})) for c in changes] or [best]
                moves = sum(a != NOOP for a in plan)  # fewer changes and moves: less to go wrong
                scores.append(min(late) + 0.1 * np.mean(late) - 0.01 * len(changes) - 0.001 * moves)
            order = np.argsort(scores, kind="stable")[::-1][:FINALISTS]
            finalists = [finalists[i] for i in order]
            # Then the few best by the expected outcome over 0, 1, 2+ frames of delay
            # at every change, as sticky actions delay them.
            values = [
                self._expected(env, plan, best) + 1e-3 * scores[i]
                for plan, i in zip(finalists, order, strict=True)
            ]
            top = max(values)
            finalists = [p for p, v in zip(finalists, values, strict=True) if v >= top - 1e-9]
        plan = finalists[int(self.rng.integers(len(finalists)))]
        return Plan(actions=list(plan), course=self._course(env, plan), wins=best > 0)

    def _still_wins(self, env: gym.Env, plan: Plan) -> bool:
        """Whether the rest of ``plan`` still wins from the real state (a sticky action
        has moved it off course); if so its course is recomputed from here."""
        self.known = {}
        self.limit = (len(plan.actions) + MAX_RALLY) * self.sim.frame_skip
        if self._outcome(env, self._frames(plan.actions, {})) <= 0:
            return False
        plan.course = self._course(env, plan.actions)
        return True

    def _search(self, env: gym.Env, steps: int) -> list[int]:
        """Outcomes of all plans of ``steps`` steps: idle, then for each wait w, each
        direction and each hold k, "w NOOPs, k holds, NOOPs", in that order.

        Plans sharing a prefix share its simulation: the emulator state after each
        prefix is cloned and restored (the simulator has no sticky actions to upset).
        """
        ale, skip = self.sim.ale, self.sim.frame_skip
        self.sim.sync(env)
        idle, holds = (NOOP,) * skip, {m: (m,) * skip for m in (PADDLE_UP, PADDLE_DOWN)}
        waited = Rollout(t=0, prev_x=int(self.sim.ram()[BALL_X]))  # after w NOOPs
        waited_state = ale.cloneState()
        by_wait: list[list[int]] = []  # per w: outcomes for UP k = 1.., then DOWN k = 1..
        for w in range(steps):
            if waited.result is not None:  # decided while waiting: nothing later matters
                by_wait += [[waited.result] * 2 * (steps - v) for v in range(w, steps)]
                break
            row = []
            for move in (PADDLE_UP, PADDLE_DOWN):
                ale.restoreState(waited_state)
                held = replace(waited)
                for k in range(1, steps - w + 1):
                    self._advance(held, holds[move])
                    if held.result is not None:  # decided while holding
                        row += [held.result] * (steps - w - k + 1)
                        break
                    held_state = ale.cloneState()
                    row.append(self._finish(replace(held)))
                    ale.restoreState(held_state)
            by_wait.append(row)
            ale.restoreState(waited_state)
            self._advance(waited, idle)
            waited_state = ale.cloneState()
        outcome_idle = waited.result if waited.result is not None else self._finish(waited)
        return [outcome_idle] + [o for row in by_wait for o in row]

    def _changes(self, plan: list[int]) -> list[int]:
        """Step indices where ``plan`` changes action (from the last real one at 0)."""
        previous = [self.last_action, *plan[:-1]]
        return [i for i, (a, b) in enumerate(zip(previous, plan, strict=True)) if a != b]

    def _frames(self, plan: list[int], delays: dict[int, int]) -> list[int]:
        """Per-frame actions of ``plan``; at each step ``i`` in ``delays`` the first
        ``delays[i]`` frames repeat the previous action, as sticky actions would."""
        skip = self.sim.frame_skip
        frames = [a for a in plan for _ in range(skip)]
        for i, delay in delays.items():
            previous = plan[i - 1] if i > 0 else self.last_action
            frames[i * skip : i * skip + delay] = [previous] * delay
        return frames

    def _expected(self, env: gym.Env, plan: list[int], nominal: int) -> float:
        """Mean outcome of ``plan`` over sticky delays of 0, 1 or 2 frames per change."""
        changes = self._changes(plan)
        value = 0.0
        for delays in itertools.product(range(len(DELAY_P)), repeat=len(changes)):
            p = float(np.prod([DELAY_P[d] for d in delays]))
            if any(delays):
                value += p * self._outcome(
                    env, self._frames(plan, dict(zip(changes, delays, strict=True)))
                )
            else:
                value += p * nominal
        return value

    def _course(self, env: gym.Env, plan: list[int]) -> list[tuple[int, int, int]]:
        """(paddle y, ball x, ball y) after each step of ``plan``, from the real state."""
        sim = self.sim
        sim.sync(env)
        course = []
        for action in plan:
            sim.step(action)
            ram = sim.ram()
            course.append((int(ram[PADDLE_Y]), int(ram[BALL_X]), int(ram[BALL_Y])))
        return course

    def _outcome(self, env: gym.Env, frames: list[int]) -> int:
        """+1 if playing ``frames`` (then idling) from the real state wins the point,
        0 if the computer returns the ball, -1 if we miss."""
        sim, skip = self.sim, self.sim.frame_skip
        sim.sync(env)
        rollout = Rollout(t=0, prev_x=int(sim.ram()[BALL_X]))
        for i in range(0, len(frames), skip):
            self._advance(rollout, frames[i : i + skip])
            if rollout.result is not None:
                return rollout.result
        return self._finish(rollout)

    def _finish(self, rollout: Rollout) -> int:
        """Idle until the point or the computer's return decides ``rollout``."""
        idle = (NOOP,) * self.sim.frame_skip
        while rollout.result is None:
            self._advance(rollout, idle)
        return rollout.result

    def _advance(self, rollout: Rollout, frames: Sequence[int]) -> None:
        """Play one agent step of per-frame ``frames`` and update ``rollout``.

        Returns along the same ball path end the same way, so the rally after our
        hit is simulated once per distinct path (``self.known``).
        """
        ale = self.sim.ale
        reward = 0.0
        for action in frames:
            reward += ale.act(action)
        rollout.t += len(frames)
        ram = ale.getRAM()
        x, key = int(ram[BALL_X]), rollout.key
        if reward != 0:
            self._decide(rollout, int(np.sign(reward)))
            return
        if key is None and 0 < x < rollout.prev_x:  # we hit the ball
            key = rollout.key = (rollout.t,)
        if key is not None and len(key) < KEY_LEN:
            key = rollout.key = (*key, x, int(ram[BALL_Y]))
            if len(key) == KEY_LEN and key in self.known:
                rollout.result = self.known[key]
                return
        if key is not None and x > rollout.prev_x:  # the computer returned it
            self._decide(rollout, 0)
        elif rollout.t >= self.limit:
            self._decide(rollout, 0)
        rollout.prev_x = x

    def _decide(self, rollout: Rollout, result: int) -> None:
        rollout.result = result
        if rollout.key is not None and len(rollout.key) == KEY_LEN:
            self.known[rollout.key] = result
