import json
import pickle

import pytest
import torch

from gato.atomic import UMASK
from gato.checkpoint import (
    Checkpoint,
    checkpoint_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _trained_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    for _ in range(3):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def _ckpt(model, opt) -> Checkpoint:
    return Checkpoint(
        model=model.state_dict(),
        config={"model": {"preset": "debug"}, "lr": 1e-3},
        text_model=b"\x08\x01fake-spm-bytes",
        optimizer=opt.state_dict(),
        state={"data_position": [3, 14], "numpy_rng": {"state": 2**70}},
        tensors={"torch_rng": torch.get_rng_state()},
    )


def test_round_trip_restores_weights_optimizer_and_state_exactly(tmp_path):
    model, opt = _trained_optimizer()
    path = save_checkpoint(tmp_path, 3, _ckpt(model, opt))
    assert path.name == "step_00000003"
    back = load_checkpoint(tmp_path)
    for k, v in model.state_dict().items():
        assert torch.equal(back.model[k], v)
    assert back.text_model == b"\x08\x01fake-spm-bytes"
    assert back.state["step"] == 3 and back.state["data_position"] == [3, 14]
    assert back.state["numpy_rng"]["state"] == 2**70
    assert torch.equal(back.tensors["torch_rng"], torch.get_rng_state())

    # The restored optimizer continues exactly like the original.
    model2, opt2 = _trained_optimizer()
    opt2.load_state_dict(back.optimizer)
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_keep_last_k_and_latest(tmp_path):
    model, opt = _trained_optimizer()
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, _ckpt(model, opt), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000030", "step_00000040"]
    assert latest_checkpoint(tmp_path).name == "step_00000040"


def test_checkpoint_step_reads_the_manifest_without_the_weights(tmp_path):
    model, opt = _trained_optimizer()
    for step in (10, 20):
        save_checkpoint(tmp_path, step, _ckpt(model, opt))
    assert checkpoint_step(tmp_path / "step_00000010") == 10
    assert checkpoint_step(tmp_path) == 20  # a run directory: its newest
    # corrupt weights do not matter to it (load_checkpoint would refuse them) ...
    (tmp_path / "step_00000020" / "model.safetensors").write_bytes(b"cut")
    assert checkpoint_step(tmp_path) == 20
    # ... a manifest without a step does
    manifest = tmp_path / "step_00000020" / "manifest.json"
    manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items()
                                    if k != "step"}))  # fmt: skip
    with pytest.raises(ValueError, match="manifest.json has no step"):
        checkpoint_step(tmp_path)


def test_a_half_written_save_is_ignored_and_cleaned(tmp_path):
    model, opt = _trained_optimizer()
    save_checkpoint(tmp_path, 1, _ckpt(model, opt))
    leftover = tmp_path / ".tmp-step_00000002-abc"  # what a SIGKILL mid-save leaves
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "step_00000001"
    assert load_checkpoint(tmp_path).state["step"] == 1
    save_checkpoint(tmp_path, 2, _ckpt(model, opt))
    assert not leftover.exists()


def test_flipped_byte_is_reported_with_the_file_name(tmp_path):
    model, opt = _trained_optimizer()
    path = save_checkpoint(tmp_path, 1, _ckpt(model, opt))
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.safetensors is corrupt"):
        load_checkpoint(path)


def test_truncated_safetensors_without_a_manifest_entry_is_a_clear_error(tmp_path):
    model, opt = _trained_optimizer()
    path = save_checkpoint(tmp_path, 1, _ckpt(model, opt))
    manifest = json.loads((path / "manifest.json").read_text())
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    manifest["sha256"]["model.safetensors"] = (
        __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    )  # a consistent manifest, so the safetensors parser itself must object
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_directory_of_pickles_is_refused_and_nothing_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "ckpt"
    bad.mkdir()
    (bad / "model.pt").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match="refusing to load .*model.pt"):
        load_checkpoint(bad)
    assert not (tmp_path / "PWNED").exists()


def test_a_pickle_renamed_to_safetensors_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, opt = _trained_optimizer()
    path = save_checkpoint(tmp_path / "run", 1, _ckpt(model, opt))
    (path / "manifest.json").unlink()  # no checksums to catch it first
    (path / "model.safetensors").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_missing_empty_or_file_paths_raise_clear_errors(tmp_path, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hi")
    err = FileNotFoundError if make == "missing" else ValueError
    with pytest.raises(err, match="not found|not a checkpoint|must be a directory"):
        load_checkpoint(target)


def test_a_pickle_next_to_valid_weights_is_refused_and_nothing_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, opt = _trained_optimizer()
    path = save_checkpoint(tmp_path / "run", 1, _ckpt(model, opt))
    (path / "extra_state.PKL").write_bytes(pickle.dumps(_Evil()))
    for target in (path, tmp_path / "run"):  # the checkpoint itself or its run directory
        with pytest.raises(ValueError, match=r"refusing to load .*extra_state\.PKL"):
            load_checkpoint(target)
    assert not (tmp_path / "PWNED").exists()
    pickle.loads((path / "extra_state.PKL").read_bytes())  # control: loading it would run it
    assert (tmp_path / "PWNED").exists()


def test_a_checkpoint_is_readable_as_the_umask_allows_not_owner_only(tmp_path):
    # mkdtemp makes the folder 0700 and safetensors writes 0600; both are opened up.
    path = save_checkpoint(tmp_path, 1, _ckpt(*_trained_optimizer()))
    assert path.stat().st_mode & 0o777 == 0o777 & ~UMASK
    for f in path.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~UMASK, f.name
