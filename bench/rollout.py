"""Agent env steps/s for N = 1, 8, 32 vector envs, vs the raw env, and where a step's time goes.

For each N, in the same run: a gymnasium ``SyncVectorEnv`` of N envs stepped with
random actions (the raw env's speed), then the same vector env driven by the
:class:`~gato.policy.Policy` of a randomly initialised CPU preset. The agent loop's
time is split into the model's forwards, the env's ``step``, tokenization (observation
rows, collation, action decoding) and sampling. Target: the model's forward is at
least 70% of the loop (everything else is overhead). The cache runs across episode
boundaries here (throughput only; the evaluation loop resets it per episode).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import ale_py
import gymnasium as gym
import harness
import torch

from gato.config import load_preset
from gato.envs import registry
from gato.evaluate import make_vector_env
from gato.loading import tokenizers_for
from gato.model import Gato
from gato.policy import Policy
from gato.sampling import SamplingConfig

gym.register_envs(ale_py)


@dataclass(frozen=True)
class RolloutTask:
    task: str  # registry name
    raw_env: Callable[[], gym.Env]  # the bare emulator/simulator, no wrappers of ours
    steps: int  # timed agent steps per N in full mode


TASKS = [
    RolloutTask("cartpole", lambda: gym.make("CartPole-v1"), steps=200),
    # ALE v5 defaults: frame skip 4, sticky actions 0.25; one step = 4 frames, as ours
    RolloutTask("pong", lambda: gym.make("ALE/Pong-v5", full_action_space=True), steps=60),
]
QUICK_TASKS = ["cartpole"]  # classic only: seconds


def raw_env_seconds(make_env: Callable[[], gym.Env], n: int, steps: int) -> float:
    """Seconds for ``steps`` random-action steps of ``n`` bare envs in a SyncVectorEnv."""
    vec = gym.vector.SyncVectorEnv([make_env for _ in range(n)])
    vec.reset(seed=list(range(n)))
    vec.action_space.seed(0)
    actions = [vec.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:
        vec.step(a)
    elapsed = time.perf_counter() - t
    vec.close()
    return elapsed


def agent_loop(
    model: Gato, task: str, n: int, steps: int, chunks: int, warmup: int
) -> tuple[list[float], dict[str, float], int]:
    """Run the policy on N envs: seconds of each chunk of ``steps // chunks`` steps, the
    time split of all timed steps (shares of the loop's time) and the final cache size."""
    tok = tokenizers_for(model.cfg)
    spec = registry.spec(task)
    device = model.tok_emb.weight.device
    policy = Policy(model, tok, spec, SamplingConfig(temperature=1.0), device=device)
    vec = make_vector_env(task, n)
    obs, _ = vec.reset(seed=list(range(n)))
    policy.reset(n, seeds=list(range(n)))
    for _ in range(warmup):
        obs, *_ = vec.step(policy.act(obs))
    policy.times = type(policy.times)()
    env_s, chunk_s = 0.0, []
    for _ in range(chunks):
        t = time.perf_counter()
        for _ in range(steps // chunks):
            actions = policy.act(obs)
            e = time.perf_counter()
            obs, *_ = vec.step(actions)
            env_s += time.perf_counter() - e
        chunk_s.append(time.perf_counter() - t)
    vec.close()
    total, pt = sum(chunk_s), policy.times
    share = {
        "model": pt.model / total,
        "env": env_s / total,
        "tokenize": pt.tokenize / total,
        "sample": pt.sample / total,
        "other": max(0.0, total - env_s - pt.total) / total,
    }
    return chunk_s, share, policy.cache.pos


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("rollout", __doc__.splitlines()[0])
    p.add_argument("--preset", default=None, help="model preset (default cpu-small; quick: debug)")
    p.add_argument("--tasks", default=None, help="comma list (default: cartpole,pong)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = args.preset or ("debug" if args.quick else "cpu-small")
    names = args.tasks.split(",") if args.tasks else QUICK_TASKS if args.quick else None
    tasks = [t for t in TASKS if names is None or t.task in names]
    if names and len(tasks) != len(names):
        raise ValueError(f"tasks {names}: known {[t.task for t in TASKS]}")
    ns = (1, 2) if args.quick else (1, 8, 32)
    chunks = 3 if args.quick else 5
    warmup = 2 if args.quick else 10
    torch.manual_seed(0)
    model = Gato(load_preset(preset)).to(args.device).eval()
    figures: dict[str, dict] = {}
    for rt in tasks:
        steps = 2 * chunks if args.quick else rt.steps
        per_chunk = steps // chunks
        for n in ns:
            raw = [raw_env_seconds(rt.raw_env, n, per_chunk * 5) for _ in range(chunks)]
            chunk_s, share, cache_pos = agent_loop(model, rt.task, n, steps, chunks, warmup)
            agent = harness.Timed.of("agent", "env steps/s", n * per_chunk, chunk_s)
            figures[f"{rt.task}_n{n}"] = harness.compare(
                agent,
                harness.Timed.of("raw env, random actions", "env steps/s", n * per_chunk * 5, raw),
                share=share,
                model_share_ratio_to_target=share["model"] / 0.7,
                cache_tokens_at_end=cache_pos,
            )
    config = {
        "preset": preset,
        "tasks": [t.task for t in tasks],
        "raw_envs": {"cartpole": "CartPole-v1", "pong": "ALE/Pong-v5 (skip 4, sticky 0.25)"},
        "envs": list(ns),
        "steps": {t.task: (2 * chunks if args.quick else t.steps) for t in tasks},
        "repeats": chunks,
        "warmup": warmup,
        "sampling": "temperature 1.0",
        "params": model.param_counts().total,
    }
    return harness.write_result(
        args.out, "rollout", config, figures, args.device, __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
