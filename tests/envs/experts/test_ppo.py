import pytest
import torch

from gato.envs.experts.ppo import PPOConfig, export, make_ram_env, train
from gato.envs.experts.ram_policy import MlpPolicy, RamPolicySpec

SPEC = RamPolicySpec("Pong", (49, 54, 51, 50), history=2, actions=(0, 3, 4), hidden=(16, 16))


def test_exported_policy_gives_the_ppo_actors_logits():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", make_ram_env(SPEC, 0), policy_kwargs={"net_arch": [16, 16]})
    x = torch.randn(7, SPEC.n_features)
    want = model.policy.get_distribution(x).distribution.logits  # (7, 3), log-softmaxed
    got = torch.log_softmax(export(model.policy, SPEC)(x), -1)
    torch.testing.assert_close(got, want)


def test_export_refuses_a_spec_whose_widths_differ():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", make_ram_env(SPEC, 0), policy_kwargs={"net_arch": [16, 16]})
    wider = RamPolicySpec("Pong", SPEC.addresses, 2, SPEC.actions, hidden=(32, 16))
    with pytest.raises(ValueError, match="hidden widths"):
        export(model.policy, wider)


def test_train_writes_a_loadable_policy(tmp_path):
    config = PPOConfig(envs=1, n_steps=64, batch_size=32, epochs=1)
    path = train(SPEC, 128, tmp_path / "pong.safetensors", config=config, progress=False)
    policy = MlpPolicy.load(path)
    assert policy.spec == SPEC
    assert policy(torch.zeros(1, SPEC.n_features)).shape == (1, 3)
