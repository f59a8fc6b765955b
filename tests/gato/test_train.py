"""`gato train`: loss goes down, resume repeats the run exactly, errors and signals are clean."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from gato.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gato.config import OptimConfig, load_run_config
from gato.data.mixture import Mixture
from gato.loss import frequency_loss
from gato.metrics import read_metrics
from gato.tokenizers.text import TextTokenizer
from gato.train import TrainingDiverged, param_groups, schedule_change, train

from ..conftest import CONFIGS, REPO

DEBUG = str(CONFIGS / "debug.toml")
# The episode entry of configs/debug.toml swapped for a second caption entry: runs that do
# not test episodes need no episode store.
TEXT_ONLY = [
    "data.mixture.0.kind=captions",
    "data.mixture.0.path=captions.npz",
    "data.mixture.0.task=captions2",
]


def _cfg(root, *overrides):
    return load_run_config(DEBUG, [f"data.dir={root}", *overrides])


def _losses(run):
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r}


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "gato", *args], capture_output=True, text=True, env=env, **kw
    )


def test_tiny_run_lowers_every_tasks_heldout_loss(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, "train.steps=40", "train.eval_interval=40", "train.eval_batches=2")
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.status == "done" and result.step == 40
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["step"] in (0, 40)]
    first = {k: v for k, v in evals[0].items() if k.startswith("eval/")}
    last = {k: v for k, v in evals[-1].items() if k.startswith("eval/")}
    assert set(first) == {"eval/fake", "eval/captions", "eval/chat"} == set(last)
    for task in first:
        assert last[task] < first[task] - 0.5, (task, first[task], last[task])
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert any("action_loss" in r for r in rows) and any("text_loss" in r for r in rows)
    assert all(0.0 <= r["data_wait_fraction"] <= 1.0 and r["tokens_per_s"] > 0 for r in rows)
    freq = {k: v for k, v in evals[0].items() if k.startswith("freq/")}
    assert set(freq) == {"freq/fake", "freq/captions", "freq/chat"}  # step 0 only
    assert not any(k.startswith("freq/") for k in evals[-1])
    mixture = Mixture(cfg, TextTokenizer.load(tiny_data / "text.model"))
    for k, task in enumerate(mixture.tasks):  # the same two held-out batches eval/ scored
        held = [mixture.heldout_batch(k, j) for j in range(2)]
        targets = torch.cat([b.tokens[:, 1:][b.loss_mask[:, 1:]] for b in held])
        assert freq[f"freq/{task}"] == pytest.approx(frequency_loss(targets), rel=1e-9)
    state = load_checkpoint(tmp_path / "run", with_optimizer=False).state
    assert state["tasks"] == ["fake", "captions", "chat"]  # what `gato eval --task all` plays
    assert state["image_size"] == [48, 48]  # what `gato caption` resizes user images to


def test_resume_repeats_the_losses_and_weights_of_an_uninterrupted_run(text_data, tmp_path):
    cfg = _cfg(text_data, *TEXT_ONLY, "train.steps=12", "train.checkpoint_interval=3")
    whole = train(cfg, tmp_path / "whole", progress=False)
    part = train(cfg, tmp_path / "cut", stop_at=6, progress=False)
    assert part.status == "paused" and part.step == 6
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.step == 12
    assert resumed.losses == whole.losses[6:]  # bit for bit
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")
    a = load_checkpoint(tmp_path / "whole").model
    b = load_checkpoint(tmp_path / "cut").model
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_says_when_a_changed_step_count_moves_the_learning_rate(text_data, tmp_path, capsys):
    cfg = _cfg(text_data, *TEXT_ONLY, "train.steps=12", "train.eval_interval=0")
    train(cfg, tmp_path / "cut", stop_at=6, progress=False)
    capsys.readouterr()
    train(cfg, tmp_path / "cut", stop_at=7, resume=True, progress=False)
    assert "learning-rate schedule" not in capsys.readouterr().err  # the same schedule
    shorter = _cfg(text_data, *TEXT_ONLY, "train.steps=9", "train.eval_interval=0")
    train(shorter, tmp_path / "cut", resume=True, progress=False)
    err = capsys.readouterr().err
    assert "the learning-rate schedule changes at step 7" in err
    assert "train.steps 12 -> 9" in err


def test_schedule_change_names_the_rates_before_and_after_or_nothing():
    schedule = ["optim.lr=1e-3", "optim.warmup=10", "optim.min_ratio=0.1"]
    cfg = load_run_config(DEBUG, ["train.steps=100", *schedule])
    saved = cfg.to_dict()
    assert schedule_change(saved, cfg, 50) is None
    longer = load_run_config(DEBUG, ["train.steps=200", *schedule])
    note = schedule_change(saved, longer, 50)
    assert note is not None and "train.steps 100 -> 200" in note
    assert "0.000628 -> 0.000905" in note  # the cosine at 40/90 and at 40/190 of its decay
    # in warm-up only the peak and the warm-up length matter
    assert schedule_change(saved, longer, 5) is None
    assert schedule_change({"train": {}}, cfg, 50) is None  # nothing saved to compare


def test_action_dropout_changes_the_run_and_resumes_bit_for_bit(tiny_data, tmp_path):
    base = ["train.steps=8", "train.checkpoint_interval=4", "train.eval_interval=0"]
    plain = train(_cfg(tiny_data, *base), tmp_path / "plain", progress=False)
    cfg = _cfg(tiny_data, *base, "train.action_dropout=0.5")
    whole = train(cfg, tmp_path / "whole", progress=False)
    # the debug model has no dropout: only the replaced action tokens move the first loss
    assert whole.losses[0] != plain.losses[0]
    train(cfg, tmp_path / "cut", stop_at=4, progress=False)
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.losses == whole.losses[4:]  # the draws come from the per-step seed


def test_checkpoint_holds_config_tokenizer_optimizer_and_data_position(text_data, tmp_path):
    cfg = _cfg(
        text_data, *TEXT_ONLY, "train.steps=4", "train.keep=2", "train.checkpoint_interval=1"
    )
    train(cfg, tmp_path / "run", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == [
        "step_00000003",
        "step_00000004",
    ]
    ck = load_checkpoint(tmp_path / "run")
    assert ck.config == json.loads(json.dumps(cfg.to_dict()))
    assert ck.text_model == (text_data / "text.model").read_bytes()
    assert ck.state["step"] == 4 and ck.state["data_position"]["next_step"] == 4
    assert ck.optimizer["state"]  # AdamW moments


def test_weight_decay_skips_biases_norms_and_embeddings():
    from gato.model import Gato

    cfg = load_run_config(DEBUG)
    model = Gato(cfg.model)
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert "tok_emb.weight" in skipped and "ln_f.weight" in skipped
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_embedding_eps_gives_the_embedding_tables_a_group_of_their_own():
    from gato.model import Gato

    model = Gato(load_run_config(DEBUG).model)
    decay, no_decay, tables = param_groups(model, 0.1, embedding_eps=1e-5)
    names = {id(p): n for n, p in model.named_parameters()}
    assert tables["eps"] == 1e-5 and tables["weight_decay"] == 0.0 and "eps" not in no_decay
    assert {names[id(p)] for p in tables["params"]} == {
        "tok_emb.weight", "patch_row.weight", "patch_col.weight", "obs_emb.weight"}  # fmt: skip
    assert not {names[id(p)] for p in no_decay["params"]} & {"tok_emb.weight"}
    count = sum(len(g["params"]) for g in (decay, no_decay, tables))
    assert count == len(list(model.parameters()))
    with pytest.raises(ValueError, match="optim.embedding_eps must be > 0"):
        OptimConfig(embedding_eps=0.0)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("optim.lrr=1", "unknown key 'optim.lrr'"),
        ("train.steps=many", "train.steps: expected int, got str"),
        ("data.mixture.1.path=nowhere.npz", "data.mixture[1].path: not found"),
        ("train.action_dropout=1", "train.action_dropout must be in [0, 1)"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(text_data, tmp_path, override, needle):
    run = tmp_path / "run"
    p = _cli("train", "--config", DEBUG, "--out", str(run), "--set", f"data.dir={text_data}",
             *sum((["--set", o] for o in TEXT_ONLY), []), "--set", override)  # fmt: skip
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert not run.exists()


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(text_data, tmp_path):
    cfg = _cfg(text_data, *TEXT_ONLY, "train.steps=8", "train.checkpoint_interval=2")
    run = tmp_path / "run"
    train(cfg, run, stop_at=4, progress=False)
    good = load_checkpoint(run).model
    # An infinite learning rate: the first update makes the weights inf, the next loss NaN.
    p = _cli("train", "--out", str(run), "--resume", "--no-progress", "--set", "optim.lr=inf")
    assert p.returncode == 3, p.stderr
    assert "stopped without saving" in p.stderr and "step_00000004" in p.stderr
    assert latest_checkpoint(run).name == "step_00000004"
    assert all(torch.equal(good[k], v) for k, v in load_checkpoint(run).model.items())
    with pytest.raises(TrainingDiverged):
        train(load_run_config(DEBUG, [f"data.dir={text_data}", *TEXT_ONLY, "optim.lr=inf"]),
              tmp_path / "fresh", progress=False)  # fmt: skip
    assert latest_checkpoint(tmp_path / "fresh") is None


@pytest.mark.parametrize(
    "signum, workers, to_group",
    [(signal.SIGINT, 0, False), (signal.SIGTERM, 1, True)],
    ids=["ctrl-c", "sigterm-to-trainer-and-loader-worker"],
)
def test_a_stop_signal_writes_a_final_checkpoint_and_exits_128_plus_signum(
    text_data, tmp_path, signum, workers, to_group
):
    # `pkill -f "gato train"` signals the DataLoader workers too (same command line): they
    # must leave shutdown to the trainer, which finishes its step and saves.
    run = tmp_path / "run"
    sets = [f"data.dir={text_data}", *TEXT_ONLY, "train.steps=100000", "train.eval_interval=0",
            f"data.workers={workers}"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gato", "train", "--config", DEBUG, "--out", str(run),
         "--no-progress", *sum((["--set", s] for s in sets), [])],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while (
        time.time() < deadline and len(_losses(run) if (run / "metrics.jsonl").exists() else {}) < 3
    ):
        time.sleep(0.05)
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "internal error" not in err
    last = max(_losses(run))
    assert latest_checkpoint(run).name == f"step_{last:08d}"
    assert "interrupted at step" in out


def _torchrun(nproc, *args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           "--standalone", "-m", "gato", "train", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


# Text only: training-mode randomness inside the model (dropout, here 0, and the patch
# position jitter of images) is drawn per process, so it cannot match across process
# counts; with no images the runs see the same computation up to reduction order.
DIALOGUES_ONLY = [
    "data.mixture.0.kind=dialogues",
    "data.mixture.0.path=chat.jsonl",
    "data.mixture.0.task=chat2",
    "data.mixture.1.kind=dialogues",
    "data.mixture.1.path=chat.jsonl",
    "data.mixture.1.task=chat3",
]


def _torchrun_sets(*sets):
    return sum((["--set", s] for s in sets), [])


def _parity_sets(text_data):
    sets = [f"data.dir={text_data}", *DIALOGUES_ONLY, "train.steps=6", "train.eval_interval=0",
            "train.checkpoint_interval=0", "train.threads=1"]  # fmt: skip
    return sets


def _assert_two_processes_match_one(text_data, tmp_path, *extra):
    """1 process x batch 4 vs ``torchrun`` 2 processes x batch 2 (+ ``extra`` sets), 6 steps."""
    sets = _parity_sets(text_data)
    single = _cfg(text_data, *sets[1:], "train.batch_size=4")
    train(single, tmp_path / "one", progress=False)
    args = ["--config", DEBUG, "--out", str(tmp_path / "two"), "--no-progress"]
    p = _torchrun(2, *args, *_torchrun_sets(*sets, "train.batch_size=2", *extra))
    assert p.returncode == 0, p.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one").model
    b = load_checkpoint(tmp_path / "two").model
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)  # fp32 reduction order
    ra, rb = (
        read_metrics(tmp_path / "one" / "metrics.jsonl"),
        read_metrics(tmp_path / "two" / "metrics.jsonl"),
    )
    la, lb = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert la.keys() == lb.keys()
    for s in la:
        assert abs(la[s] - lb[s]) < 1e-4
    ga = [r["grad_norm"] for r in ra if "grad_norm" in r]
    gb = [r["grad_norm"] for r in rb if "grad_norm" in r]
    assert len(ga) == len(gb) == 6
    torch.testing.assert_close(torch.tensor(gb), torch.tensor(ga), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(text_data, tmp_path):
    _assert_two_processes_match_one(text_data, tmp_path)


def test_fsdp_two_processes_match_one_process_and_its_checkpoint_loads_in_one_process(
    text_data, tmp_path
):
    _assert_two_processes_match_one(
        text_data, tmp_path, "train.fsdp=true", "train.checkpoint_interval=3"
    )
    # The checkpoint holds the full, unsharded weights: the inference loader takes it as is.
    from gato.loading import load_trained

    trained = load_trained(tmp_path / "two").model.state_dict()
    one = load_checkpoint(tmp_path / "one").model
    assert trained.keys() == one.keys()
    for k in one:
        torch.testing.assert_close(trained[k], one[k], rtol=1e-4, atol=1e-5)
    # ... and its optimizer state is the one-process one: cut at step 3, resumed in one
    # process, the run ends where the one-process run does (a parameter mix-up in the
    # optimizer state would not).
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copytree(tmp_path / "two" / "step_00000003", cut / "step_00000003")
    single = _cfg(text_data, *_parity_sets(text_data)[1:], "train.batch_size=4")
    resumed = train(single, cut, resume=True, progress=False)
    assert resumed.step == 6
    la = _losses(tmp_path / "one")
    assert len(resumed.losses) == 3
    for got, want in zip(resumed.losses, [la[s] for s in (4, 5, 6)], strict=True):
        assert abs(got - want) < 1e-4
    b = load_checkpoint(cut).model
    for k in one:
        torch.testing.assert_close(b[k], one[k], rtol=1e-4, atol=1e-5)


def test_fsdp_resume_repeats_the_losses_and_weights_of_an_uninterrupted_fsdp_run(
    tiny_data, tmp_path
):
    # The full debug mixture (episodes, captions, chat): ranks differ in which modules a
    # micro-batch uses (patch embedding, observation positions), the case FSDP must
    # reduce with zero gradients for the rank that did not use them.
    sets = [f"data.dir={tiny_data}", "train.steps=4", "train.eval_interval=0",
            "train.checkpoint_interval=2", "train.keep=5", "train.batch_size=2",
            "train.fsdp=true", "train.threads=1"]  # fmt: skip
    whole = tmp_path / "whole"
    p = _torchrun(
        2, "--config", DEBUG, "--out", str(whole), "--no-progress", *_torchrun_sets(*sets)
    )
    assert p.returncode == 0, p.stderr[-3000:]
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copytree(whole / "step_00000002", cut / "step_00000002")  # the run as cut at step 2
    p = _torchrun(2, "--resume", "--out", str(cut), "--no-progress", *_torchrun_sets(*sets))
    assert p.returncode == 0, p.stderr[-3000:]
    lw, lc = _losses(whole), _losses(cut)
    assert sorted(lc) == [3, 4]
    assert [lc[s] for s in (3, 4)] == [lw[s] for s in (3, 4)]  # bit for bit
    a, b = load_checkpoint(whole), load_checkpoint(cut)
    assert a.model.keys() == b.model.keys()
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    # The optimizer state is saved whole (moments of full parameters, not one rank's
    # shards), indexed like a one-process optimizer's.
    from gato.config import ModelConfig, from_dict
    from gato.model import Gato

    model = Gato(from_dict(ModelConfig, a.config["model"], "model"))
    params = [p for g in param_groups(model, 0.1) for p in g["params"]]
    assert len(a.optimizer["state"]) == len(params)
    for i, st in a.optimizer["state"].items():
        assert st["exp_avg"].shape == params[i].shape


@pytest.mark.slow
def test_sigkill_during_checkpoint_save_then_resume_equals_uninterrupted_run(text_data, tmp_path):
    sets = [f"data.dir={text_data}", *TEXT_ONLY, "train.steps=40", "train.eval_interval=0",
            "train.checkpoint_interval=1", "train.keep=3", "model.d_model=128",
            "model.d_ff=512", "model.n_layer=4"]  # fmt: skip
    # (a bigger model than the preset: longer saves for the kill to land in)
    whole = train(_cfg(text_data, *sets[1:]), tmp_path / "whole", progress=False)
    run = tmp_path / "run"
    killed_mid_save = False
    for attempt in range(8):  # a save takes milliseconds: retry until a kill lands inside one
        cmd = [sys.executable, "-m", "gato", "train", "--out", str(run), "--no-progress"]
        cmd += ["--resume"] if attempt else ["--config", DEBUG]
        proc = subprocess.Popen(
            cmd + sum((["--set", s] for s in sets), []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if run.is_dir() and any(p.name.startswith(".tmp-step_") for p in os.scandir(run)):
                if latest_checkpoint(run) is not None:  # at least one complete save before
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(timeout=30)
        if any(p.name.startswith(".tmp-step_") for p in os.scandir(run)):
            killed_mid_save = True  # the torn save is still on disk
            break
    assert killed_mid_save, "never caught the run inside a checkpoint save"
    before = latest_checkpoint(run)
    assert before is not None and load_checkpoint(before).state["step"] < 40
    resumed = train(_cfg(text_data, *sets[1:]), run, resume=True, progress=False)
    assert resumed.step == 40
    assert not any(p.name.startswith(".tmp-") for p in os.scandir(run))
    a, b = load_checkpoint(tmp_path / "whole").model, load_checkpoint(run).model
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.losses[-len(resumed.losses) :] == resumed.losses


def test_train_cli_is_registered():
    p = _cli("train", "--help")
    assert p.returncode == 0 and "--resume" in p.stdout
    assert shutil.which(sys.executable)
    assert (REPO / "configs" / "cpu-small.toml").is_file()
