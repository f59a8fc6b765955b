"""Boxing expert: line up with the opponent at punching distance and punch.

Keeps the opponent at a horizontal distance in ``[NEAR, FAR]`` and the same
height, moving and punching in one combined action (the full action set has
every direction + FIRE). A little random vertical jitter (the expert's rng)
varies the approach between demonstrations.

RAM (verified): 32 player x, 34 player y, 33 opponent x, 35 opponent y.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from gato.envs.experts.base import Expert

PLAYER_X, OPPONENT_X, PLAYER_Y, OPPONENT_Y = 32, 33, 34, 35
NEAR, FAR = 14, 26  # horizontal distance band for a punch (bodies block at about 14)
ALIGN = 4  # vertical misalignment tolerated
JITTER = 0.05

# (horizontal, vertical, fire) -> full-action-set id; vertical -1 is UP (y decreases).
ACTIONS = {
    (0, 0, 0): 0, (0, 0, 1): 1, (0, -1, 0): 2, (1, 0, 0): 3, (-1, 0, 0): 4, (0, 1, 0): 5,
    (1, -1, 0): 6, (-1, -1, 0): 7, (1, 1, 0): 8, (-1, 1, 0): 9, (0, -1, 1): 10,
    (1, 0, 1): 11, (-1, 0, 1): 12, (0, 1, 1): 13, (1, -1, 1): 14, (-1, -1, 1): 15,
    (1, 1, 1): 16, (-1, 1, 1): 17,
}  # fmt: skip


def sign(v: int) -> int:
    return (v > 0) - (v < 0)


class BoxingExpert(Expert):
    def act(self, env: gym.Env, obs: Any) -> int:
        ram = env.unwrapped.ale.getRAM()
        dx = int(ram[OPPONENT_X]) - int(ram[PLAYER_X])
        dy = int(ram[OPPONENT_Y]) - int(ram[PLAYER_Y])
        if abs(dx) > FAR:
            h = sign(dx)
        elif abs(dx) < NEAR:
            h = -sign(dx) if dx != 0 else 1
        else:
            h = 0
        v = sign(dy) if abs(dy) > ALIGN else 0
        if self.rng.random() < JITTER:
            v = int(self.rng.integers(-1, 2))
        fire = int(abs(dy) <= 2 * ALIGN and abs(dx) <= FAR + 4)
        return ACTIONS[(h, v, fire)]
