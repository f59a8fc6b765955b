import numpy as np
import pytest
import torch

from gato.atomic import UMASK
from gato.envs.experts.ram_policy import (
    BREAKOUT,
    PONG,
    SPECS,
    MlpPolicy,
    RamPolicyExpert,
    RamPolicySpec,
    features,
    policy_file,
    positions,
)


def test_positions_scale_ram_bytes_to_minus_one_one():
    ram = np.zeros(128, np.uint8)
    ram[49], ram[54], ram[51], ram[50] = 0, 128, 255, 64
    assert positions(ram, PONG).tolist() == pytest.approx([-1.0, 0.0, 255 / 128 - 1, -0.5])


def test_features_are_history_oldest_first_then_previous_action_one_hot():
    hist = [np.full(4, i, np.float32) for i in range(4)]
    f = features(hist, 2, PONG)
    assert f.shape == (PONG.n_features,) == (19,)
    assert f[:16].tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert f[16:].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="4 steps"):
        features(hist[:3], 0, PONG)


def test_policy_file_round_trips_weights_and_spec(tmp_path):
    spec = RamPolicySpec("Pong", (49, 54), history=2, actions=(0, 3, 4), hidden=(8,))
    policy = MlpPolicy(spec)
    path = policy.save(tmp_path / "p.safetensors")
    loaded = MlpPolicy.load(path)
    assert loaded.spec == spec
    x = torch.randn(5, spec.n_features)
    assert torch.equal(loaded(x), policy(x))


def test_loading_a_file_without_a_spec_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a RAM policy"):
        MlpPolicy.load(tmp_path / "x.safetensors")


@pytest.mark.parametrize("game", sorted(SPECS))
def test_expert_acts_as_the_policy_on_the_training_wrappers_features(tmp_path, game):
    from gato.envs.experts.ppo import make_ram_env

    spec = SPECS[game]
    torch.manual_seed(0)
    path = MlpPolicy(spec).save(tmp_path / f"{game}.safetensors")
    policy, expert = MlpPolicy.load(path), RamPolicyExpert(path)
    env = make_ram_env(spec, seed=0)
    feats, _ = env.reset(seed=3)
    expert.reset(env, np.random.default_rng(0))
    chosen, seen = set(), set()
    for _ in range(200):
        action = expert.act(env, None)
        want = int(policy(torch.from_numpy(feats)[None]).argmax(-1))
        assert action == spec.actions[want]
        chosen.add(want)
        seen.add(feats.tobytes())
        feats, *_ = env.step(want)
    assert len(chosen) > 1  # the features change what it does: not a constant policy
    assert len(seen) > 20  # the addresses are live: the positions move as the game goes


def test_the_experts_numpy_logits_are_the_torch_policys(tmp_path):
    torch.manual_seed(1)
    path = MlpPolicy(PONG).save(tmp_path / "p.safetensors")
    policy, expert = MlpPolicy.load(path), RamPolicyExpert(path)
    x = np.random.default_rng(0).uniform(-1, 1, (50, PONG.n_features)).astype(np.float32)
    with torch.no_grad():
        want = policy(torch.from_numpy(x)).numpy()  # (50, A)
    got = np.stack([expert.logits(row) for row in x])  # (50, A)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_policy_file_takes_a_path_or_a_shipped_name(tmp_path, monkeypatch):
    import gato.envs.experts.ram_policy as ram_policy

    monkeypatch.setattr(ram_policy, "SHIPPED", tmp_path / "weights")
    shipped = MlpPolicy(PONG).save(tmp_path / "weights" / "pong-x.safetensors")
    mine = MlpPolicy(PONG).save(tmp_path / "mine.safetensors")
    assert policy_file(mine) == mine.resolve()
    assert policy_file("pong-x") == shipped
    with pytest.raises(FileNotFoundError, match=r"nor a shipped policy \(pong-x\)"):
        policy_file("pong-y")
    with pytest.raises(FileNotFoundError):
        policy_file(tmp_path / "pong-x")  # a path is a path, not a name


def test_the_shipped_pong_policy_wins_a_held_out_game():
    """`pong-ppo` (PPO, 8M steps) plays the task env itself, on a score-table seed."""
    from gato.envs import make
    from gato.envs.rollout import rollout

    path = policy_file("pong-ppo")
    assert MlpPolicy.load(path).spec == PONG
    episode = rollout(make("pong"), RamPolicyExpert(path), 1_000_000)
    assert episode.score > 0  # 21 points before the computer's 21


def test_the_shipped_breakout_policy_clears_bricks_in_a_held_out_game():
    """`breakout-ppo` (PPO, 8M steps) plays the task env itself, on a score-table seed."""
    from gato.envs import make
    from gato.envs.rollout import rollout

    path = policy_file("breakout-ppo")
    assert MlpPolicy.load(path).spec == BREAKOUT
    episode = rollout(make("breakout"), RamPolicyExpert(path), 1_000_000)
    assert episode.score > 20  # random play scores 1.1 a game (envs/scores.json)


def test_a_saved_policy_is_readable_as_the_umask_allows_not_owner_only(tmp_path):
    # safetensors' save_file writes 0600; a policy meant to be shipped must not be.
    path = MlpPolicy(PONG).save(tmp_path / "p.safetensors")
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK
