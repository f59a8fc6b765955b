"""Measure the Atari experts and a random policy: mean return, spread and speed.

    python scripts/measure_atari_experts.py [--games pong,breakout] [--episodes 20]

Seeds 0..N-1 for the env; the expert's rng is seeded with the same number.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gato.envs.atari import make_atari
from gato.envs.experts.boxing import BoxingExpert
from gato.envs.experts.breakout import BreakoutExpert
from gato.envs.experts.freeway import FreewayExpert
from gato.envs.experts.pong import PongExpert

GAMES = {
    "pong": ("Pong", PongExpert),
    "breakout": ("Breakout", BreakoutExpert),
    "freeway": ("Freeway", FreewayExpert),
    "boxing": ("Boxing", BoxingExpert),
}


def episode(env, policy, seed: int) -> tuple[float, int]:
    """Play one episode; returns (return, agent steps). ``policy`` None plays random."""
    rng = np.random.default_rng(seed)
    if policy is not None:
        policy.reset(env, rng)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    total, steps, done = 0.0, 0, False
    while not done:
        action = policy.act(env, obs) if policy is not None else env.action_space.sample()
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        steps += 1
        done = terminated or truncated
    return total, steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", default=",".join(GAMES))
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--random", action="store_true", help="also measure a random policy")
    args = parser.parse_args()
    for name in args.games.split(","):
        game, expert_cls = GAMES[name]
        env = make_atari(game)
        policies = [("expert", expert_cls())] + ([("random", None)] if args.random else [])
        for label, policy in policies:
            returns, steps, start = [], 0, time.perf_counter()
            for seed in range(args.episodes):
                ret, n = episode(env, policy, seed)
                returns.append(ret)
                steps += n
                print(f"  {name} {label} seed {seed}: {ret:.0f} ({n} steps)", flush=True)
            secs = time.perf_counter() - start
            r = np.array(returns)
            print(
                f"{name} {label}: mean {r.mean():.2f} +- {r.std():.2f}, min {r.min():.0f}, "
                f"max {r.max():.0f}, {steps / secs:.0f} steps/s over {args.episodes} episodes",
                flush=True,
            )


if __name__ == "__main__":
    main()
