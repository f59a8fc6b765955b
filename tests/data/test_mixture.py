"""Mixture sampler: rows from (seed, step, row), filled to the context, held-out kept apart."""

import numpy as np
import pytest
import torch

from gato.config import load_run_config
from gato.data.mixture import (
    EpisodeSource,
    Mixture,
    Split,
    micro_batch_loader,
    split_items,
)
from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec
from gato.sequence import Kind, Tokenizers
from gato.tokenizers.text import TextTokenizer
from gato.tokenizers.vocab import Vocab

from ..conftest import CONFIGS


def _text_mixture(root, *overrides, seed=0):
    cfg = load_run_config(
        CONFIGS / "debug.toml",
        [
            f"data.dir={root}",
            "data.mixture.0.kind=captions",  # the episode entry -> a second caption entry
            "data.mixture.0.path=captions.npz",
            "data.mixture.0.task=captions2",
            f"train.seed={seed}",
            *overrides,
        ],
    )
    return Mixture(cfg, TextTokenizer.load(root / "text.model")), cfg


def _same(a, b):
    return (
        all(
            torch.equal(getattr(a, k), getattr(b, k))
            for k in ("tokens", "kinds", "obs_pos", "loss_mask", "patches", "patch_pos")
        )
        and a.tasks == b.tasks
    )


def test_a_batch_is_a_function_of_seed_step_and_row(text_data):
    mix, _ = _text_mixture(text_data)
    again, _ = _text_mixture(text_data)
    other, _ = _text_mixture(text_data, seed=1)
    assert _same(mix.train_batch(5, 0, 4), again.train_batch(5, 0, 4))
    assert not _same(mix.train_batch(5, 0, 4), mix.train_batch(6, 0, 4))
    assert not _same(mix.train_batch(5, 0, 4), other.train_batch(5, 0, 4))


def test_global_batch_is_the_same_however_it_is_split(text_data):
    mix, _ = _text_mixture(text_data)
    whole = mix.train_batch(3, 0, 4)
    halves = [mix.train_batch(3, 0, 2), mix.train_batch(3, 2, 2)]
    assert torch.equal(whole.tokens, torch.cat([h.tokens for h in halves]))
    assert torch.equal(whole.patches, torch.cat([h.patches for h in halves]))


def test_rows_are_filled_to_the_context(text_data):
    mix, cfg = _text_mixture(text_data)
    batch = mix.train_batch(0, 0, 16)
    assert batch.shape == (16, cfg.context)
    real = (batch.kinds != Kind.PAD).sum(1)
    # A caption example is 9 patches + a short caption (< 30 tokens): rows stop only when
    # the next example does not fit.
    assert int(real.min()) > cfg.context - 40
    assert not bool(batch.loss_mask[:, 0].any())


def test_sources_are_picked_by_weight(text_data):
    mix, _ = _text_mixture(text_data, "data.mixture.0.weight=6", "data.mixture.1.weight=1")
    tasks = [mix.train_row(s, r).task for s in range(40) for r in range(5)]
    share = tasks.count("captions2") / len(tasks)
    assert abs(share - 6 / 8) < 0.1, share


def test_heldout_items_never_appear_in_training_rows():
    train, held = split_items(10, 0.2)
    assert list(held) == [8, 9] and list(train) == list(range(8))
    assert list(split_items(1, 0.5)[1]) == [0]  # a single item is shared (documented)
    spec = TaskSpec("toy", {"state": ObsField(ObsKind.CONTINUOUS, (2,))}, ActionSpec(n=3))
    # Episode e has every action equal to e % 3 and observation value e: identifiable.
    episodes = [
        Episode(
            "toy",
            {"state": np.full((6, 2), float(e), np.float32)},
            np.full(6, e % 3, np.int64),
            np.zeros(6, np.float32),
        )
        for e in range(4)
    ]
    tok = Tokenizers(vocab=Vocab(text_size=16))
    src = EpisodeSource(tok, spec, episodes, "toy", prompt_fraction=0.5, heldout_fraction=0.25)
    held_value = tok.continuous.encode(np.array([3.0]))[0]
    for i in range(30):
        row = src.row(Split.TRAIN, np.random.default_rng(i), 40)
        assert held_value not in row.tokens[row.kinds == Kind.OBS_VALUE]
        row = src.row(Split.HELDOUT, np.random.default_rng(i), 40)
        assert set(row.tokens[row.kinds == Kind.OBS_VALUE]) == {held_value}


def test_background_workers_give_the_batches_of_the_main_process(text_data):
    mix, _ = _text_mixture(text_data)
    direct = [mix.train_batch(s, (r * 2 + m) * 4, 4) for s in (2, 3) for r in (1,) for m in (0, 1)]
    loaded = list(micro_batch_loader(mix, 2, 4, accum=2, rank=1, world=2, workers=2))
    assert len(loaded) == 4
    assert all(_same(a, b) for a, b in zip(direct, loaded, strict=True))


def test_heldout_batches_are_per_task_and_fixed(text_data):
    mix, cfg = _text_mixture(text_data)
    assert mix.tasks == ["captions2", "captions", "chat"]
    b = mix.heldout_batch(2, 0)
    assert set(b.tasks) == {"chat"} and b.shape == (cfg.train.batch_size, cfg.context)
    assert _same(b, mix.heldout_batch(2, 0))


def test_heldout_batches_of_a_task_draw_on_each_of_its_sources(text_data, tmp_path):
    from gato.data.dialogues import read_chat_jsonl, scene_dialogues, write_chat_jsonl
    from gato.data.mixture import split_items
    from gato.sequence import dialogue_row

    write_chat_jsonl(tmp_path / "chat2.jsonl", scene_dialogues(16, seed=1))
    mix, cfg = _text_mixture(
        text_data, "data.mixture.0.kind=dialogues", f"data.mixture.0.path={tmp_path}/chat2.jsonl",
        "data.mixture.0.task=chat",
    )  # fmt: skip
    assert mix.tasks == ["chat", "captions"]

    def heldout_ids(path):  # the token ids of each held-out dialogue of one file
        d = read_chat_jsonl(path)
        held = split_items(len(d), cfg.data.heldout_fraction)[1]
        return [dialogue_row(mix.tok, d[int(i)]).tokens for i in held]

    firsts = {
        "chat2": heldout_ids(tmp_path / "chat2.jsonl"),
        "chat": heldout_ids(text_data / "chat.jsonl"),
    }
    seen = set()
    for index in range(4):
        b = mix.heldout_batch(0, index)
        for row in b.tokens:  # a row starts with its first whole dialogue
            owners = {n for n, ds in firsts.items() for d in ds
                      if torch.equal(row[: len(d)], torch.as_tensor(d))}  # fmt: skip
            assert len(owners) == 1
            seen |= owners
    assert seen == {"chat", "chat2"}


def test_a_source_that_cannot_be_read_names_the_entry(text_data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    with pytest.raises(ValueError, match=r"data.mixture\[2\].*bad.jsonl"):
        _text_mixture(text_data, f"data.mixture.2.path={bad}")
