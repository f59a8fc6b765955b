"""Caption metrics, and the key check: a short training run on procedural scenes captions
held-out scenes far above chance.

The model is trained in the test by a minimal loop over the project's own pieces
(``caption_row`` -> ``collate`` -> ``Gato`` -> ``sequence_loss`` -> AdamW), then saved as a
checkpoint that the CLI tests below load like any other.
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gato.checkpoint import Checkpoint, save_checkpoint
from gato.cli import main
from gato.config import ModelConfig
from gato.data import scenes
from gato.generate import GenerationConfig, caption_images, rank_labels
from gato.loading import tokenizers_for
from gato.loss import sequence_loss
from gato.model import Gato
from gato.sequence import caption_row, collate, dialogue_row
from gato.tokenizers.text import TextTokenizer
from gato.vl_metrics import (
    VLEvalConfig,
    caption_score,
    chat_perplexity,
    scene_caption_scores,
    token_f1,
    vl_rows,
    zero_shot_accuracy,
)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


def scenes_with(split: str, n: int, max_objects: int, size: int, start: int = 0):
    """The first ``n`` scenes of ``split`` with at most ``max_objects`` objects."""
    out, i = [], start
    while len(out) < n:
        ex = scenes.example(split, i, 0, size)
        if len(ex.scene.objects) <= max_objects:
            out.append(ex)
        i += 1
    return out


@dataclasses.dataclass
class ShortRun:
    model: Gato
    tok: object
    checkpoint: Path
    max_objects: int
    size: int
    seconds: float


def train_captioner(
    root: Path, max_objects: int, steps: int, d_model: int, size: int = 48, examples: int = 3000
) -> ShortRun:
    """Train a tiny captioner on the scenes' train split; save it as a checkpoint."""
    torch.set_num_threads(1)  # CLI tests before may have set 2; 1 is fastest on shared cores
    t0 = time.perf_counter()
    train = scenes_with("train", examples, max_objects, size)
    corpus = root / "corpus.txt"
    design = (REPO / "DESIGN.md").read_text(encoding="utf-8")
    corpus.write_text(design + "\n".join(e.caption for e in train[:2000]) + "\n")
    text = TextTokenizer.train([corpus], root / "t.model", vocab_size=400)
    cfg = ModelConfig(
        name="captioner", n_layer=2, n_head=4, d_model=d_model, d_ff=4 * d_model,
        text_size=text.vocab_size, context=128, max_obs_tokens=64, patch_channels=16,
        patch_groups=4, dropout=0.0,
    )  # fmt: skip
    tok = tokenizers_for(cfg, text)
    rows = [caption_row(tok, e.image, e.caption) for e in train]
    torch.manual_seed(0)
    model = Gato(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    rng = np.random.default_rng(0)
    model.train()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 20)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = 3e-3 * warm * cosine
        batch = collate([rows[i] for i in rng.integers(0, len(rows), 32)], tok.vocab)
        loss = sequence_loss(model(batch), batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    seconds = time.perf_counter() - t0
    path = save_checkpoint(
        root / "run",
        steps,
        Checkpoint(
            model=model.state_dict(),
            config={"model": dataclasses.asdict(cfg)},
            text_model=text.model_bytes,
            state={"step": steps, "image_size": [size, size]},
        ),
    )
    return ShortRun(model, tok, path, max_objects, size, seconds)


@pytest.fixture(scope="module")
def one_object(tmp_path_factory):
    # Measured (2 shared, loaded cores, 1 thread): 400 steps in 21-34 s with data and
    # tokenizer; exact match on 200 held-out one-object scenes 0.455, token F1 0.89
    # (chance: 1 / 324 train captions ~ 0.003). 300 steps gave only 0.09: keep 400.
    return train_captioner(tmp_path_factory.mktemp("cap1"), max_objects=1, steps=400, d_model=64)


# Bars set from measurements (README "Captioning, chat and classification"), with margin.
ONE_OBJECT_BAR = 0.20  # measured 0.455
THREE_OBJECT_BAR = 0.30  # measured 0.615


def test_short_run_captions_held_out_one_object_scenes_far_above_chance(one_object):
    test = scenes_with("test", 200, 1, one_object.size)
    preds = caption_images(one_object.model, one_object.tok, [e.image for e in test],
                           GenerationConfig(40), batch_size=50)  # fmt: skip
    score = caption_score(preds, test, "test")
    print(f"one-object short run: exact {score.exact:.3f}, token F1 {score.token_f1:.3f}, "
          f"train {one_object.seconds:.1f} s")  # fmt: skip
    assert score.exact >= ONE_OBJECT_BAR  # chance ~ 0.003
    assert score.token_f1 > 0.8


@pytest.mark.slow
def test_longer_run_captions_held_out_scenes_of_up_to_three_objects(tmp_path):
    # Measured: 1500 steps, d 96 (~9 min on loaded cores): exact 0.615 and object recall
    # 0.71 on 200 test scenes (1-3 objects); on unseen combinations (heldout) only 0.03
    # exact, 0.29 object recall: no bar on those, the figure is reported.
    run = train_captioner(tmp_path, max_objects=3, steps=1500, d_model=96)
    score = scene_caption_scores(run.model, run.tok, "test", 200, run.size, max_new_tokens=64)
    held = scene_caption_scores(run.model, run.tok, "heldout", 200, run.size, max_new_tokens=64)
    print(f"three-object run: test {score}, heldout {held}, train {run.seconds:.0f} s")
    assert score.exact >= THREE_OBJECT_BAR


def test_trained_captioner_ranks_the_true_caption_first(one_object):
    test = scenes_with("test", 20, 1, one_object.size, start=500)
    wrong = scenes_with("test", 4, 1, one_object.size, start=900)
    hits = 0
    for e in test:
        labels = [e.caption] + [w.caption for w in wrong if w.caption != e.caption][:4]
        ranking = rank_labels(one_object.model, one_object.tok, e.image, labels, "{label}")
        hits += ranking[0].label == e.caption
    assert hits / len(test) >= 0.6  # chance 0.2


def test_zero_shot_accuracy_counts_the_argmax_caption(one_object):
    test = scenes_with("test", 10, 1, one_object.size, start=1200)
    classes = [e.caption for e in test]
    images = np.stack([e.image for e in test])
    zs = zero_shot_accuracy(one_object.model, one_object.tok, images, np.arange(10), classes)
    assert zs.chance == pytest.approx(0.1) and zs.n == 10
    assert zs.accuracy >= 0.5


def test_token_f1_is_bag_of_words_f1():
    assert token_f1("a red circle", "a red circle") == 1.0
    assert token_f1("a red circle", "a blue square") == pytest.approx(1 / 3)
    assert token_f1("", "a") == 0.0 and token_f1("", "") == 1.0


def test_caption_score_of_true_and_wrong_captions():
    ex = scenes_with("test", 4, 3, 48)
    perfect = caption_score([e.caption for e in ex], ex, "test")
    assert (perfect.exact, perfect.token_f1, perfect.object_recall) == (1.0, 1.0, 1.0)
    garbage = caption_score(["nothing here"] * 4, ex, "test")
    assert garbage.exact == 0.0 and garbage.token_f1 == 0.0


def test_chat_perplexity_of_an_untrained_model_is_near_the_vocabulary_size(one_object):
    tok = one_object.tok
    cfg = dataclasses.replace(one_object.model.cfg)
    torch.manual_seed(0)
    model = Gato(cfg).eval()
    dialogues = [[{"role": "user", "content": "What is at the top?"},
                  {"role": "assistant", "content": "A small red circle."}]] * 3  # fmt: skip
    pp = chat_perplexity(model, tok, dialogues)
    v = cfg.vocab.size
    assert 0.5 * v < pp.perplexity < 2 * v
    assert pp.tokens == 3 * (len(dialogue_row(tok, dialogues[0])) - 1)


def test_chat_rows_pool_every_source_and_give_each_its_own(one_object):
    tok, model = one_object.tok, one_object.model
    short = [[{"role": "user", "content": "What is at the top?"},
              {"role": "assistant", "content": "A small red circle."}]] * 2  # fmt: skip
    long = [[{"role": "user", "content": "What does the word lantern mean?"},
             {"role": "assistant", "content": "A light with a case that shields its flame, "
                                              "carried by a handle."}]] * 3  # fmt: skip
    cfg = VLEvalConfig(scenes=1, dialogues={"scenes": short, "wordnet": long})
    rows = {r.task: r for r in vl_rows(model, tok, cfg) if r.metric == "perplexity"}
    assert set(rows) == {"chat", "chat/scenes", "chat/wordnet"}
    whole = chat_perplexity(model, tok, short + long)  # the row over every dialogue at once
    assert rows["chat"].value == pytest.approx(whole.perplexity, rel=1e-4)
    assert rows["chat"].n == 5 and rows["chat/wordnet"].n == 3
    assert rows["chat/scenes"].value == pytest.approx(
        chat_perplexity(model, tok, short).perplexity, rel=1e-4
    )
    alone = {r.task for r in vl_rows(model, tok, VLEvalConfig(scenes=1, dialogues={"s": short}))}
    assert "chat" in alone and "chat/s" not in alone  # one source: its row is the pooled one


# -- CLI on the trained checkpoint ---------------------------------------------------------


def save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


def test_cli_caption_prints_one_caption_per_image_of_any_size(one_object, tmp_path, capsys):
    from PIL import Image

    test = scenes_with("test", 3, 1, one_object.size, start=300)
    paths = [save_png(tmp_path / f"{i}.png", e.image) for i, e in enumerate(test)]
    big = tmp_path / "big.jpg"  # 4x the size, JPEG: resized back to the trained 48x48
    Image.fromarray(test[0].image).resize((192, 192), Image.NEAREST).save(big, quality=95)
    assert main(["caption", "--checkpoint", str(one_object.checkpoint), *map(str, paths),
                 str(big)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    assert [ln.split("\t")[0] for ln in lines] == [*map(str, paths), str(big)]
    got = [ln.split("\t")[1] for ln in lines]
    direct = caption_images(one_object.model, one_object.tok, [e.image for e in test])
    assert got[:3] == direct


def test_cli_classify_prints_a_ranking_with_scores(one_object, tmp_path, capsys):
    e = scenes_with("test", 1, 1, one_object.size, start=400)[0]
    obj = e.scene.objects[0]
    image = save_png(tmp_path / "x.png", e.image)
    other = "triangle" if obj.shape != "triangle" else "square"
    labels = [f"{obj.size} {obj.colour} {obj.shape}", f"{obj.size} {obj.colour} {other}"]
    template = "a {label} " + scenes.PLACES[obj.cell]
    code = main(["classify", "--checkpoint", str(one_object.checkpoint), str(image),
                 "--labels", ",".join(labels), "--template", template])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:2] == ["rank", "label"] and len(out) == 3
    scores = [float(line.split()[-2]) for line in out[1:]]
    assert scores == sorted(scores, reverse=True)


def test_cli_eval_vl_reports_every_row_as_json(one_object, capsys, tmp_path):
    code = main(["eval-vl", "--checkpoint", str(one_object.checkpoint), "--scenes", "5",
                 "--fashion-dir", str(REPO / "tests/data/fixtures/fashion-mnist"),
                 "--fashion", "5", "--json"])  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {(r["task"], r["metric"]) for r in rows}
    assert {("captions/test", "exact"), ("captions/heldout", "token_f1"),
            ("fashion-mnist", "zero_shot_accuracy"), ("chat", "perplexity")} <= keys  # fmt: skip
    fm = next(r for r in rows if r["task"] == "fashion-mnist")
    assert fm["n"] == 5 and fm["chance"] == pytest.approx(0.1) and 0 <= fm["value"] <= 1


def test_heldout_and_training_dialogues_are_the_mixtures_two_splits(tmp_path):
    from gato.config import run_config_from_dict
    from gato.data.dialogues import scene_dialogues, write_chat_jsonl
    from gato.vl_metrics import heldout_dialogues, training_dialogues

    dialogues = scene_dialogues(8, seed=0)
    write_chat_jsonl(tmp_path / "chat.jsonl", dialogues)
    run = run_config_from_dict({
        "train": {"model": "debug"},
        "data": {"dir": str(tmp_path), "heldout_fraction": 0.25,
                 "mixture": [{"kind": "dialogues", "path": "chat.jsonl"},
                             {"kind": "dialogues", "path": "gone.jsonl"}]},
    })  # fmt: skip
    assert heldout_dialogues(run) == {"chat": dialogues[-2:]}  # the missing file is skipped
    assert training_dialogues(run) == {"chat": dialogues[:-2]}
