"""A private emulator copy that experts use to look ahead without touching the episode.

Why a second ALE instead of ``cloneState``/``restoreState`` on the env's own one:
in ale-py 0.12 the state (with or without ``include_rng=True``) does not hold
the sticky-action memory, the action last executed. A lookahead that acts and
then restores leaves that memory set to its own last action, and the next real
frame may repeat it: the real trajectory changes (verified in
``tests/envs/experts/test_atari_experts.py``). The copy here loads the same ROM
with sticky actions off, so lookahead is deterministic, and the real emulator
is only ever read (``cloneState`` is a read).
"""

from __future__ import annotations

import ale_py
import gymnasium as gym
import numpy as np
from ale_py import roms

from gato.envs.experts.base import Expert


class AleSimulator:
    """A sticky-free ALE running the same ROM as ``env``; sync, then act freely.

    ``frame_skip`` is the number of emulator frames per agent step, as in the env.
    """

    def __init__(self, env: gym.Env, frame_skip: int = 4) -> None:
        self.game = env.unwrapped._game  # ROM id, e.g. "pong"
        self.frame_skip = frame_skip
        self.ale = ale_py.ALEInterface()
        self.ale.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.loadROM(roms.get_rom_path(self.game))

    def sync(self, env: gym.Env) -> None:
        """Copy the real emulator's state into the simulator."""
        self.ale.restoreState(env.unwrapped.ale.cloneState())

    def step(self, action: int) -> float:
        """One agent step (``frame_skip`` frames) of ``action``; returns the reward."""
        reward = 0.0
        for _ in range(self.frame_skip):
            reward += self.ale.act(action)
        return reward

    def ram(self) -> np.ndarray:
        """The simulator's 128 bytes of RAM, (128,) uint8."""
        return self.ale.getRAM()

    def game_over(self) -> bool:
        return self.ale.game_over()


class SimulatingExpert(Expert):
    """An Atari expert that plans in its own :class:`AleSimulator`.

    The simulator is built once, at the first ``reset`` (loading the ROM costs), and
    reused for every later episode of the same game.
    """

    def __init__(self) -> None:
        self.sim: AleSimulator | None = None

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        if self.sim is None:
            self.sim = AleSimulator(env)
