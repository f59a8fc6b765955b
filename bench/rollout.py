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

import harness
import torch

from gato.config import load_preset
from gato.envs import registry
from gato.evaluate import make_vector_env
from gato.loading import tokenizers_for
from gato.model import Gato
from gato.policy import Policy
from gato.sampling import SamplingConfig


def raw_env_rate(task: str, n: int, steps: int) -> float:
    """Env steps/s (summed over the N envs) with random actions."""
    vec = make_vector_env(task, n)
    vec.reset(seed=list(range(n)))
    vec.action_space.seed(0)
    actions = [vec.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:
        vec.step(a)
    elapsed = time.perf_counter() - t
    vec.close()
    return n * steps / elapsed


def agent_loop(model: Gato, task: str, n: int, steps: int, warmup: int) -> dict:
    """Run the policy on N envs; rates and the time split of the timed steps."""
    tok = tokenizers_for(model.cfg)
    spec = registry.spec(task)
    policy = Policy(model, tok, spec, SamplingConfig(temperature=1.0))
    vec = make_vector_env(task, n)
    obs, _ = vec.reset(seed=list(range(n)))
    policy.reset(n, seeds=list(range(n)))
    for _ in range(warmup):
        obs, *_ = vec.step(policy.act(obs))
    policy.times = type(policy.times)()
    env_s = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        actions = policy.act(obs)
        e = time.perf_counter()
        obs, *_ = vec.step(actions)
        env_s += time.perf_counter() - e
    total = time.perf_counter() - t
    vec.close()
    pt = policy.times
    other = max(0.0, total - env_s - pt.total)
    return {
        "agent_steps_per_s": n * steps / total,
        "step_ms": 1000 * total / steps,
        "share": {
            "model": pt.model / total,
            "env": env_s / total,
            "tokenize": pt.tokenize / total,
            "sample": pt.sample / total,
            "other": other / total,
        },
        "cache_tokens_at_end": policy.cache.pos,
    }


def main(argv: list[str] | None = None) -> dict:
    p = harness.parser("rollout", __doc__.splitlines()[0])
    p.add_argument("--preset", default=None, help="model preset (default cpu-small; quick: debug)")
    p.add_argument("--task", default="cartpole", help="task (default cartpole)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = args.preset or ("debug" if args.quick else "cpu-small")
    ns = (1, 2) if args.quick else (1, 8, 32)
    steps = 5 if args.quick else 200
    warmup = 2 if args.quick else 20
    torch.manual_seed(0)
    model = Gato(load_preset(preset)).to(args.device).eval()
    figures: dict[str, dict] = {}
    for n in ns:
        raw = raw_env_rate(args.task, n, steps * 5)
        agent = agent_loop(model, args.task, n, steps, warmup)
        agent["raw_env_steps_per_s"] = raw
        agent["vs_raw_env"] = agent["agent_steps_per_s"] / raw
        agent["model_share_ratio_to_target"] = agent["share"]["model"] / 0.7
        figures[f"n{n}"] = agent
    config = {
        "preset": preset,
        "task": args.task,
        "envs": list(ns),
        "steps": steps,
        "warmup": warmup,
        "sampling": "temperature 1.0",
        "params": model.param_counts().total,
    }
    result = harness.write_result(args.out, "rollout", config, figures, args.device)
    for name, f in figures.items():
        s = f["share"]
        print(
            f"{name:4s} agent {f['agent_steps_per_s']:9.1f} steps/s  raw env "
            f"{f['raw_env_steps_per_s']:11.1f}  model {s['model']:.0%} env {s['env']:.0%} "
            f"tokenize {s['tokenize']:.0%} sample {s['sample']:.0%} other {s['other']:.0%}"
        )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
