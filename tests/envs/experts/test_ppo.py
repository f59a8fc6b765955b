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


def test_train_saves_the_policy_on_the_way_when_asked(tmp_path, monkeypatch):
    saves = []
    real_save = MlpPolicy.save
    monkeypatch.setattr(
        MlpPolicy, "save", lambda self, path: saves.append(path) or real_save(self, path)
    )
    config = PPOConfig(envs=1, n_steps=64, batch_size=32, epochs=1)
    out = tmp_path / "pong.safetensors"
    train(SPEC, 256, out, config=config, progress=False, save_every=128)
    assert saves == [out] * 3  # after 128 and 256 steps, then the final save


def test_cli_train_expert_writes_a_policy_and_refuses_to_overwrite_it(tmp_path, capsys):
    from gato.cli import main

    out = tmp_path / "pong.safetensors"
    argv = ["data", "train-expert", "--game", "pong", "--out", str(out), "--steps", "256",
            "--envs", "1"]  # fmt: skip
    assert main(argv) == 0
    assert f"{out}: pong policy after 256 agent steps" in capsys.readouterr().out
    assert MlpPolicy.load(out).spec.game == "Pong"
    before = out.read_bytes()
    assert main(argv) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_train_expert_help_names_every_game_with_a_spec():
    from gato.cli import build_parser
    from gato.envs.experts.ram_policy import SPECS

    data = build_parser()._subparsers._group_actions[0].choices["data"]
    command = data._subparsers._group_actions[0].choices["train-expert"]
    game = next(a for a in command._actions if a.dest == "game")
    assert game.help.endswith(f"games with a RAM spec: {', '.join(sorted(SPECS))})")


def test_load_actor_makes_the_ppo_actor_act_as_the_saved_policy():
    from stable_baselines3 import PPO

    from gato.envs.experts.ppo import load_actor

    saved = MlpPolicy(SPEC)
    model = PPO("MlpPolicy", make_ram_env(SPEC, 0), policy_kwargs={"net_arch": [16, 16]})
    x = torch.randn(7, SPEC.n_features)
    load_actor(model.policy, saved)
    want = torch.log_softmax(saved(x), -1)  # (7, 3)
    torch.testing.assert_close(model.policy.get_distribution(x).distribution.logits, want)
    wider = MlpPolicy(RamPolicySpec("Pong", SPEC.addresses, 2, SPEC.actions, hidden=(32, 16)))
    with pytest.raises(ValueError, match="widths"):
        load_actor(model.policy, wider)


def test_train_from_a_policy_of_another_spec_is_refused(tmp_path):
    other = MlpPolicy(RamPolicySpec("Pong", SPEC.addresses, 3, SPEC.actions, hidden=(16, 16)))
    config = PPOConfig(envs=1, n_steps=64, batch_size=32, epochs=1)
    with pytest.raises(ValueError, match="is not the game's"):
        train(SPEC, 128, tmp_path / "p.safetensors", config=config, progress=False, init=other)
    assert not (tmp_path / "p.safetensors").exists()


def test_cli_train_expert_continues_from_an_initial_policy(tmp_path, capsys, monkeypatch):
    from gato.cli import main
    from gato.envs.experts import ppo
    from gato.envs.experts.ram_policy import SPECS

    start = MlpPolicy(SPECS["pong"])
    start.save(tmp_path / "start.safetensors")
    seen = {}
    real_load_actor = ppo.load_actor

    def load_actor(sb3_policy, policy):
        seen["init"] = policy
        real_load_actor(sb3_policy, policy)

    monkeypatch.setattr(ppo, "load_actor", load_actor)
    out = tmp_path / "more.safetensors"
    argv = ["data", "train-expert", "--game", "pong", "--out", str(out), "--steps", "256",
            "--envs", "1", "--init", str(tmp_path / "start.safetensors")]  # fmt: skip
    assert main(argv) == 0
    for name, value in start.state_dict().items():
        torch.testing.assert_close(seen["init"].state_dict()[name], value)
    assert MlpPolicy.load(out).spec == SPECS["pong"]


def test_a_continued_run_trains_only_the_critic_during_its_warmup(tmp_path):
    saved = MlpPolicy(SPEC)
    before = {k: v.clone() for k, v in saved.state_dict().items()}
    out = tmp_path / "p.safetensors"
    config = PPOConfig(envs=1, n_steps=64, batch_size=32, epochs=1, critic_warmup=192)
    train(SPEC, 192, out, config=config, progress=False, init=saved)  # 3 updates, all warm-up
    for name, value in MlpPolicy.load(out).state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)  # the actor stood still
    train(SPEC, 256, out, config=config, progress=False, init=saved)  # the 4th update is not
    after = MlpPolicy.load(out).state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)  # then it learns
