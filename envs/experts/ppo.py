"""Train a RAM policy expert with PPO (stable-baselines3) and export it to safetensors.

``gato data train-expert --game pong --out pong.safetensors`` calls
``train(PONG, 8_000_000, "pong.safetensors", save_every=500_000)``. stable-baselines3
is needed only here (``pip install -e ".[rl]"``); playing the exported policy
(:class:`gato.envs.experts.ram_policy.RamPolicyExpert`) needs only torch.

The training envs are the task's game with the same dynamics as ``gato.envs.make``
(ALE v5, full action set, sticky actions 0.25 per emulator frame, 4 frames per agent
step, the 27,000-step cap) but with the ALE's own frame skip and RAM observations:
nothing is rendered or resized, about twice as fast. The task env's random no-op
starts are left out; sticky actions vary the episodes. Demonstrations are recorded
in the task env itself (``gato data collect``), so its score filter judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from gato.envs.experts.ram_policy import MlpPolicy, RamFeatures, RamPolicySpec


@dataclass(frozen=True)
class PPOConfig:
    """PPO's settings (the Atari settings of Schulman et al. 2017, a wider batch)."""

    envs: int = 8  # parallel envs, one process each
    n_steps: int = 256  # steps per env between updates
    batch_size: int = 512
    epochs: int = 4
    lr: float = 2.5e-4
    clip: float = 0.1
    entropy: float = 0.01
    gamma: float = 0.99
    gae_lambda: float = 0.95
    # A run started from a saved policy (``train(init=...)``) has a fresh critic, whose
    # first advantages are noise: for this many agent steps only the critic learns.
    # Without it, continuing pong-ppo (8M steps) lost 11.0 -> 6.2 of training return
    # in its first 1.4M steps.
    critic_warmup: int = 300_000


def make_ram_env(spec: RamPolicySpec, seed: int) -> gym.Env:
    """The spec's game with RAM observations seen through :class:`RamFeatures`."""
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(
        f"ALE/{spec.game}-v5",
        frameskip=4,
        repeat_action_probability=0.25,
        full_action_space=True,
        obs_type="ram",
        max_episode_steps=27000,
    )
    env = RamFeatures(env, spec)
    env.reset(seed=seed)  # seeds the env: stable-baselines3's vector envs reset it unseeded
    return env


def _actor_modules(sb3_policy) -> list:
    """The actor of stable-baselines3's ``ActorCriticPolicy``: its hidden layers and head."""
    return [sb3_policy.mlp_extractor.policy_net, sb3_policy.action_net]


def _copy_linears(src: list, dst: list, mismatch: str) -> None:
    """Copy the weights of Linear layers ``src`` into ``dst`` (same shapes, else ValueError)."""
    if [tuple(m.weight.shape) for m in src] != [tuple(m.weight.shape) for m in dst]:
        raise ValueError(mismatch)
    for s, d in zip(src, dst, strict=True):
        d.weight.data.copy_(s.weight.data)
        d.bias.data.copy_(s.bias.data)


def _ppo_linears(sb3_policy) -> list:
    actor, head = _actor_modules(sb3_policy)
    return [m for m in actor if hasattr(m, "weight")] + [head]


def export(sb3_policy, spec: RamPolicySpec) -> MlpPolicy:
    """Copy the actor of stable-baselines3's ``ActorCriticPolicy`` into an :class:`MlpPolicy`."""
    policy = MlpPolicy(spec)
    mismatch = "the PPO actor's layers do not match the spec's hidden widths"
    _copy_linears(_ppo_linears(sb3_policy), policy.linears(), mismatch)
    return policy.eval()


def load_actor(sb3_policy, policy: MlpPolicy) -> None:
    """Copy an :class:`MlpPolicy` into the actor of stable-baselines3's ``ActorCriticPolicy``.

    The inverse of :func:`export`: a run started from a saved policy acts as that policy
    from its first step. The critic is not in the file and starts fresh.
    """
    mismatch = "the saved policy's layers do not match the PPO actor's widths"
    _copy_linears(policy.linears(), _ppo_linears(sb3_policy), mismatch)


def _critic_warmup_callback(steps: int):
    """Freeze the actor until ``steps`` agent steps have been played, then train it too."""
    from stable_baselines3.common.callbacks import BaseCallback

    class CriticWarmup(BaseCallback):
        def _set_actor(self, trainable: bool) -> None:
            for module in _actor_modules(self.model.policy):
                module.requires_grad_(trainable)  # Adam skips parameters without a gradient

        def _on_training_start(self) -> None:
            self._set_actor(False)

        def _on_rollout_end(self) -> None:  # runs before the update on this rollout
            if self.num_timesteps > steps:  # this rollout ran past the warm-up
                self._set_actor(True)

        def _on_step(self) -> bool:
            return True

    return CriticWarmup()


def _progress_callback(steps: int, enabled: bool, save_every: int, save):
    """A tqdm bar over agent steps showing the mean return of the last 100 episodes.

    Every ``save_every`` agent steps (0: never) it calls ``save(policy)``, so a long run
    that is stopped still leaves its latest policy behind.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=steps, desc="ppo", unit="step", disable=not enabled)
            self.saved = 0  # agent steps at the last save

        def _on_rollout_end(self) -> None:
            returns = [e["r"] for e in self.model.ep_info_buffer]
            self.bar.update(self.num_timesteps - self.bar.n)
            if returns:
                self.bar.set_postfix(ret=f"{sum(returns) / len(returns):.1f}")
            if save_every and self.num_timesteps - self.saved >= save_every:
                save(self.model.policy)
                self.saved = self.num_timesteps

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            self.bar.update(self.num_timesteps - self.bar.n)
            self.bar.close()

    return Progress()


def train(
    spec: RamPolicySpec,
    steps: int,
    out: str | Path,
    *,
    seed: int = 0,
    config: PPOConfig = PPOConfig(),
    progress: bool = True,
    save_every: int = 0,
    init: MlpPolicy | None = None,
) -> Path:
    """Train a policy for ``steps`` agent steps (all envs together) and save it to ``out``.

    ``save_every`` > 0 also writes ``out`` every that many agent steps on the way (each
    write atomic), so a stopped run keeps its latest policy. ``init`` starts the actor from
    a saved policy of the same spec (to train an expert further); its critic starts fresh
    and alone learns for the first ``config.critic_warmup`` agent steps.
    """
    if init is not None and init.spec != spec:
        raise ValueError(f"the initial policy's spec {init.spec} is not the game's {spec}")
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor
    except ImportError as e:
        raise RuntimeError(
            "training an expert needs stable-baselines3: pip install -e '.[rl]'"
        ) from e
    import functools

    import torch

    if steps <= 0:
        raise ValueError("--steps must be positive")
    torch.set_num_threads(1)  # a small MLP: the envs take the other cores
    factories = [functools.partial(make_ram_env, spec, seed + i) for i in range(config.envs)]
    vec = SubprocVecEnv(factories) if config.envs > 1 else DummyVecEnv(factories)
    model = PPO(
        "MlpPolicy",
        VecMonitor(vec),
        n_steps=config.n_steps,
        batch_size=min(config.batch_size, config.n_steps * config.envs),  # <= one rollout
        n_epochs=config.epochs,
        learning_rate=config.lr,
        clip_range=config.clip,
        ent_coef=config.entropy,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        policy_kwargs={"net_arch": list(spec.hidden)},
        seed=seed,
        device="cpu",
        verbose=0,
    )

    if init is not None:
        load_actor(model.policy, init)

    def save(sb3_policy) -> None:
        export(sb3_policy, spec).save(out)

    try:
        callbacks = [_progress_callback(steps, progress, save_every, save)]
        if init is not None and config.critic_warmup > 0:
            callbacks.append(_critic_warmup_callback(config.critic_warmup))
        model.learn(steps, callback=callbacks)
    finally:
        vec.close()
    return export(model.policy, spec).save(out)
