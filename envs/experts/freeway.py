"""Freeway expert: walk up the road, pausing now and then.

Always pressing UP scores about 21 with sticky actions: the chicken is knocked
back by cars but never stops. A rare NOOP (probability ``PAUSE``, from the
expert's rng) makes demonstrations differ in timing without costing a crossing.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from gato.envs.experts.base import Expert

NOOP, UP = 0, 2
PAUSE = 0.01  # chance of a NOOP per step


class FreewayExpert(Expert):
    def act(self, env: gym.Env, obs: Any) -> int:
        return NOOP if self.rng.random() < PAUSE else UP
