"""Experts learned by reinforcement: a small MLP that reads object positions from RAM.

The paper's experts are reinforcement-learning agents, so their action is a function
of what they observe. Hand-written planners (``pong.py``) can win where simple
reactive rules cannot, but a planner picks among equally good plans at random and
acts on states it simulates, and no learner here has cloned one (see
docs/results/findings.md). A policy trained by PPO on a few positions read from the
emulator's RAM is reactive by construction: its greedy action is a fixed function
of the last ``history`` steps' positions and its previous action, all of which the
agent can see in its frames and its own action tokens.

Features, shape ``(history * len(addresses) + len(actions),)`` float32: the
positions of the last ``history`` agent steps, oldest first, each ``ram[a] / 128 - 1``
(so in [-1, 1)), then a one-hot of the previous action (the first step repeats its
positions and counts the previous action as ``actions[0]``). Actions are indices
into ``actions``, full-action-set ids.

Weights are a torch :class:`MlpPolicy` in a safetensors file with its
:class:`RamPolicySpec` in the metadata; :class:`RamPolicyExpert` plays them in numpy
(one state a step: torch's thread pool, busy or oversubscribed, made each step cost
milliseconds instead of microseconds); training uses stable-baselines3's PPO
(:mod:`gato.envs.experts.ppo`), needed only to make new weights. Trained policies
shipped with the package live in ``weights/`` and are found by name
(:func:`policy_file`: ``breakout-ppo``, ``pong-ppo``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from gato.envs.experts.base import Expert


@dataclass(frozen=True)
class RamPolicySpec:
    """What a RAM policy reads and how it acts.

    Attributes:
        game: ALE game name ("Pong").
        addresses: RAM bytes read each step (object positions).
        history: agent steps of positions in the features.
        actions: full-action-set ids the policy chooses among.
        hidden: widths of the MLP's hidden layers (tanh).
    """

    game: str
    addresses: tuple[int, ...]
    history: int
    actions: tuple[int, ...]
    hidden: tuple[int, ...] = (128, 128)

    @property
    def n_features(self) -> int:
        return self.history * len(self.addresses) + len(self.actions)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RamPolicySpec:
        d = json.loads(text)
        return cls(
            d["game"], tuple(d["addresses"]), int(d["history"]), tuple(d["actions"]),
            tuple(d["hidden"]),
        )  # fmt: skip


# Pong: ball x (0 when no ball), ball y, our paddle y, the computer's paddle y (see
# pong.py); NOOP, RIGHT (our paddle up), LEFT (down).
PONG = RamPolicySpec("Pong", addresses=(49, 54, 51, 50), history=4, actions=(0, 3, 4))

# Breakout: ball x, ball y (0 when no ball), paddle x (see breakout.py); every action holds
# the fire button (FIRE, RIGHTFIRE, LEFTFIRE), so whatever a clone of it picks also serves.
BREAKOUT = RamPolicySpec("Breakout", addresses=(99, 101, 72), history=4, actions=(1, 11, 12))

# The games a RAM policy can be trained for (`gato data train-expert --game`), by task name.
SPECS: dict[str, RamPolicySpec] = {"pong": PONG, "breakout": BREAKOUT}

# Trained policies shipped with the package (``NAME.safetensors``), usable by name.
SHIPPED = Path(__file__).parent / "weights"


def shipped_policies() -> list[str]:
    """The names of the policies shipped in :data:`SHIPPED`."""
    return sorted(p.stem for p in SHIPPED.glob("*.safetensors"))


def policy_file(name_or_path: str | Path) -> Path:
    """A policy file: ``name_or_path`` if it is a file, else the shipped policy of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    if path.name == str(name_or_path) and (SHIPPED / f"{path.name}.safetensors").is_file():
        return SHIPPED / f"{path.name}.safetensors"
    shipped = ", ".join(shipped_policies()) or "none"
    raise FileNotFoundError(f"{name_or_path}: no such file, nor a shipped policy ({shipped})")


def positions(ram: np.ndarray, spec: RamPolicySpec) -> np.ndarray:
    """The spec's RAM bytes scaled to [-1, 1): ``(len(addresses),)`` float32."""
    return ram[list(spec.addresses)].astype(np.float32) / 128.0 - 1.0


def features(history: Sequence[np.ndarray], last_action: int, spec: RamPolicySpec) -> np.ndarray:
    """``(n_features,)`` float32 from the last ``spec.history`` positions (oldest first)."""
    if len(history) != spec.history:
        raise ValueError(f"need {spec.history} steps of positions, got {len(history)}")
    one_hot = np.zeros(len(spec.actions), np.float32)
    one_hot[last_action] = 1.0
    return np.concatenate([*history, one_hot])


def advance(history: list[np.ndarray], now: np.ndarray, spec: RamPolicySpec) -> list[np.ndarray]:
    """The last ``spec.history`` positions after ``now`` (from empty: ``now`` repeated).

    The one rule for both the training view (:class:`RamFeatures`) and the expert, so
    what the policy was trained on and what it plays from cannot drift apart.
    """
    return (history or [now] * spec.history)[1:] + [now]


def env_game(env: gym.Env) -> str | None:
    """The ALE game an env plays (``"Pong"`` for ``ALE/Pong-v5``), None if not an ALE env."""
    env_spec = env.unwrapped.spec
    if env_spec is None or not env_spec.id.startswith("ALE/"):
        return None
    return env_spec.id.removeprefix("ALE/").split("-")[0]


class MlpPolicy(nn.Module):
    """Features ``(B, n_features)`` -> action logits ``(B, len(actions))``; tanh MLP."""

    def __init__(self, spec: RamPolicySpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        width = spec.n_features
        for h in spec.hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, len(spec.actions)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def linears(self) -> list[nn.Linear]:
        """The linear layers, input first (the tanh between them has no weights)."""
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def save(self, path: str | Path) -> Path:
        """Write the weights and the spec (metadata) to a safetensors file."""
        from safetensors.torch import save_file

        from gato.atomic import give_default_mode

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(tmp), metadata={"spec": self.spec.to_json()})
        give_default_mode(tmp)  # save_file writes 0600
        tmp.replace(path)  # a crash leaves the old file or the new one, never half of one
        return path

    @classmethod
    def load(cls, path: str | Path) -> MlpPolicy:
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such RAM policy file")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # safetensors' own error type is not a ValueError
            raise ValueError(f"{path}: not a safetensors file ({e})") from e
        if "spec" not in meta:
            raise ValueError(f"{path}: not a RAM policy (no spec in its metadata)")
        policy = cls(RamPolicySpec.from_json(meta["spec"]))
        policy.load_state_dict(load_file(str(path)))
        return policy.eval()


class RamFeatures(gym.Wrapper):
    """An ALE env seen through a RAM policy's features and actions (for training).

    Observation ``Box(-1, 1, (n_features,), float32)``; action ``Discrete(len(actions))``,
    played as ``spec.actions[a]``. Rewards and episode ends are the env's.
    """

    def __init__(self, env: gym.Env, spec: RamPolicySpec) -> None:
        super().__init__(env)
        self.policy_spec = spec
        self.action_space = gym.spaces.Discrete(len(spec.actions))
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (spec.n_features,), np.float32)
        self._history: list[np.ndarray] = []
        self._last = 0

    def _see(self) -> None:
        now = positions(self.env.unwrapped.ale.getRAM(), self.policy_spec)
        self._history = advance(self._history, now, self.policy_spec)

    def _features(self) -> np.ndarray:
        return features(self._history, self._last, self.policy_spec)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        _, info = self.env.reset(**kwargs)
        self._history, self._last = [], 0
        self._see()
        return self._features(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        _, reward, terminated, truncated, info = self.env.step(
            self.policy_spec.actions[int(action)]
        )
        self._see()
        self._last = int(action)
        return self._features(), float(reward), terminated, truncated, info


class RamPolicyExpert(Expert):
    """Plays a trained :class:`MlpPolicy` greedily from the env's RAM (deterministic).

    The same state always gets the same action, so its demonstrations carry no
    tie-breaking noise for a learner to chase; sticky actions and no-op starts vary
    the episodes.
    """

    def __init__(self, path: str | Path) -> None:
        policy = MlpPolicy.load(path)
        self.spec = policy.spec
        # (weight (out, in), bias (out,)) per linear layer, float32, for numpy inference
        self._layers = [
            (m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
            for m in policy.linears()
        ]
        self._history: list[np.ndarray] = []
        self._last = 0

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        if env_game(env) != self.spec.game:
            other = env.unwrapped.spec.id if env.unwrapped.spec else type(env.unwrapped).__name__
            raise ValueError(f"this RAM policy plays ALE/{self.spec.game}, not {other}")
        self._history, self._last = [], 0  # filled from the first observed state

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Features ``(F,)`` float32 -> action logits ``(len(actions),)``: the MLP in numpy."""
        for i, (weight, bias) in enumerate(self._layers):
            x = x @ weight.T + bias
            if i < len(self._layers) - 1:
                x = np.tanh(x)
        return x

    def act(self, env: gym.Env, obs: Any) -> int:
        now = positions(env.unwrapped.ale.getRAM(), self.spec)
        self._history = advance(self._history, now, self.spec)
        x = features(self._history, self._last, self.spec)  # (F,)
        self._last = int(self.logits(x).argmax())
        return self.spec.actions[self._last]
