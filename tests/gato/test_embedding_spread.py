import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from gato.config import OptimConfig, load_preset
from gato.embedding_spread import (
    adam_steps_by_count,
    embedding_adam_state,
    mean_pairwise_cosine,
    piece_counts,
    spread_by_count,
)
from gato.loss import predicting, sequence_loss
from gato.model import Gato
from gato.sequence import Kind, TokenBatch
from gato.train import param_groups

from ..conftest import REPO

torch.set_num_threads(1)
CFG = load_preset("debug")


def test_mean_pairwise_cosine_is_the_mean_over_every_pair():
    rows = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    units = torch.nn.functional.normalize(rows.double(), dim=1)
    pairs = [float(units[i] @ units[j]) for i in range(7) for j in range(7) if i != j]
    assert mean_pairwise_cosine(rows) == pytest.approx(np.mean(pairs), abs=1e-9)


def test_rows_along_one_direction_score_one_and_opposite_rows_minus_one():
    v = torch.tensor([1.0, 2.0, -0.5])
    assert mean_pairwise_cosine(torch.stack([v, 3 * v, 0.1 * v])) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.stack([v, -2 * v])) == pytest.approx(-1.0)
    assert np.isnan(mean_pairwise_cosine(v[None]))


def test_spread_by_count_buckets_the_text_rows_by_their_counts():
    emb = torch.zeros(9, 2)  # 6 text pieces, then 3 other ids that are never bucketed
    emb[:6] = torch.tensor([[1, 0], [0, 2], [3, 0], [0, 4], [5, 0], [1, 1]], dtype=torch.float)
    emb[6:] = 100.0
    counts = np.array([0, 0, 5, 50, 500, 5000])
    rows = spread_by_count(emb, counts)
    assert [(r.label, r.pieces) for r in rows] == [
        ("0", 2), ("1-10", 1), ("11-100", 1), ("101-1,000", 1), ("> 1,000", 1)]  # fmt: skip
    assert rows[0].mean_norm == pytest.approx(1.5)
    assert rows[0].mean_cosine == pytest.approx(0.0)  # (1, 0) and (0, 2): orthogonal
    assert rows[0].own_norm == pytest.approx(1.25**0.5)  # both 0.5 * |(1, -2)| off the mean
    assert rows[4].mean_norm == pytest.approx(2**0.5) and np.isnan(rows[4].mean_cosine)
    assert rows[4].own_norm == 0.0  # one row is its bucket's mean
    with pytest.raises(ValueError, match="6 piece counts but only 4 rows"):
        spread_by_count(emb[:4], counts)


def test_a_shared_direction_raises_the_cosine_but_leaves_the_own_parts():
    own = torch.randn(50, 64, generator=torch.Generator().manual_seed(0))  # (n, d)
    shared = torch.zeros(64)
    shared[0] = 40.0  # five times an own part's norm (about 8)
    counts = np.full(50, 5)
    apart, together = spread_by_count(own, counts)[1], spread_by_count(own + shared, counts)[1]
    assert together.mean_cosine > 0.9 > 0.1 > abs(apart.mean_cosine)
    assert together.own_norm == pytest.approx(apart.own_norm, rel=1e-5)


def test_piece_counts_count_the_ids_training_encodes(text_data):
    from gato.data.dialogues import read_chat_jsonl
    from gato.tokenizers.chat import encode_dialogue
    from gato.tokenizers.text import TextTokenizer

    text = TextTokenizer.load(text_data / "text.model")
    dialogues = read_chat_jsonl(text_data / "chat.jsonl")[:3]
    counts = piece_counts(dialogues, text)
    ids = [i for d in dialogues for i in encode_dialogue(d, text)]
    assert counts.shape == (text.vocab_size,) and counts.sum() == len(ids)
    assert all(counts[i] == ids.count(i) for i in set(ids))


def text_batch(g: torch.Generator, pieces: int) -> TokenBatch:
    """Two 32-token text rows over the first ``pieces`` text ids only (all targets)."""
    tokens = torch.randint(pieces, (2, 32), generator=g)
    return TokenBatch(
        tokens=tokens,
        kinds=torch.full_like(tokens, int(Kind.TEXT)),
        obs_pos=torch.zeros_like(tokens),
        loss_mask=torch.ones_like(tokens, dtype=torch.bool),
        patches=torch.zeros(0, CFG.image_channels, CFG.patch_size, CFG.patch_size),
        patch_pos=torch.zeros(0, 4, dtype=torch.long),
    )


SHOWN = CFG.text_size // 2  # the batches below show pieces [0, SHOWN) only


def train_on_shown_pieces(
    tie_head: bool = True, embedding_eps: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The text pieces' input rows ``(text_size, d)`` before and after 30 AdamW steps on
    batches of the first ``SHOWN`` pieces."""
    torch.manual_seed(0)
    model = Gato(dataclasses.replace(CFG, tie_head=tie_head))
    groups = param_groups(model, 0.1, embedding_eps)
    opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95))
    before = model.tok_emb.weight[: CFG.text_size].detach().clone()
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        batch = text_batch(g, SHOWN)
        loss = sequence_loss(model(batch, at=predicting(batch)), batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, model.tok_emb.weight[: CFG.text_size].detach()


@pytest.mark.parametrize("tie_head", [True, False])
def test_only_a_tied_head_moves_the_input_rows_of_pieces_no_batch_shows(tie_head):
    """The premise of gato/embedding_spread.py: through a tied head, every target's softmax
    moves the rows of absent pieces, the same way for all of them (they grow alike); an
    untied head leaves an absent piece's input row exactly where it started."""
    before, after = (rows[SHOWN:] for rows in train_on_shown_pieces(tie_head))
    if tie_head:
        assert not torch.equal(after, before)
        assert mean_pairwise_cosine(after) > mean_pairwise_cosine(before) + 0.3
    else:
        assert torch.equal(after, before)


def test_an_embedding_eps_above_the_absent_rows_gradients_holds_them_and_not_the_rest():
    # In this small model the tied head's push on an absent piece's row is far larger
    # than in the cpu-small generalist (~3e-7), so the floor that holds it is larger too.
    moved = [(a - b).norm(dim=1) for b, a in (train_on_shown_pieces(embedding_eps=e)
                                              for e in (None, 3e-3))]  # fmt: skip
    (absent, shown), (absent_eps, shown_eps) = (
        (float(m[SHOWN:].mean()), float(m[:SHOWN].mean())) for m in moved
    )
    assert absent_eps < 0.25 * absent
    assert shown_eps > 0.8 * shown


def test_adam_steps_by_count_measures_the_moments_of_each_bucket():
    m = torch.tensor([[1e-6, -1e-6], [2e-3, 0.0], [5.0, 5.0]])  # the third row is no piece
    v = torch.tensor([[1e-12, 1e-12], [1.6e-5, 1.6e-5], [1.0, 1.0]])
    rows = adam_steps_by_count(m, v, 1e-8, np.array([0, 50]))
    assert [(r.label, r.pieces) for r in rows[:3]] == [("0", 1), ("1-10", 0), ("11-100", 1)]
    assert rows[0].grad_rms == pytest.approx(1e-6) and rows[0].step == pytest.approx(
        1e-6 / (1e-6 + 1e-8)
    )
    assert rows[2].grad_rms == pytest.approx(4e-3) and rows[2].step == pytest.approx(0.25, rel=1e-5)
    assert np.isnan(rows[1].grad_rms)  # an empty bucket
    with pytest.raises(ValueError, match="does not hold 3 embedding rows"):
        adam_steps_by_count(m[:2], v[:2], 1e-8, np.array([0, 50, 1]))


@pytest.mark.parametrize("embedding_eps", [None, 1e-5])
def test_embedding_adam_state_finds_the_token_embeddings_moments(embedding_eps):
    torch.manual_seed(0)
    model = Gato(CFG)
    optim = OptimConfig(embedding_eps=embedding_eps)
    opt = torch.optim.AdamW(param_groups(model, optim.weight_decay, embedding_eps), eps=optim.eps)
    batch = text_batch(torch.Generator().manual_seed(0), SHOWN)
    sequence_loss(model(batch, at=predicting(batch)), batch).loss.backward()
    opt.step()
    m, v, eps = embedding_adam_state(opt.state_dict(), model, optim)
    assert torch.equal(m, opt.state[model.tok_emb.weight]["exp_avg"])
    assert torch.equal(v, opt.state[model.tok_emb.weight]["exp_avg_sq"])
    assert eps == (embedding_eps or optim.eps)
    with pytest.raises(ValueError, match="no Adam moments for tok_emb"):
        embedding_adam_state({**opt.state_dict(), "state": {}}, model, optim)


def test_the_script_prints_a_table_of_two_checkpoints(tmp_path, text_data):
    run = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(
        f'[train]\nmodel = "debug"\nsteps = 2\nbatch_size = 2\n[data]\ndir = "{text_data}"\n'
        'tokenizer = "text.model"\n[[data.mixture]]\nkind = "dialogues"\npath = "chat.jsonl"\n'
    )
    untied = tmp_path / "untied"
    for out_dir, extra in ((run, []), (untied, ["--set", "model.tie_head=false"])):
        train_out = subprocess.run(
            [sys.executable, "-m", "gato", "train", "--config", str(config), "--out", str(out_dir),
             "--no-progress", *extra], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
        assert train_out.returncode == 0, train_out.stderr
    script = REPO / "scripts" / "embedding_spread.py"
    out = subprocess.run([sys.executable, str(script), str(run), str(run)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| times seen | pieces | run: norm | run: own | run: cosine | run:")
    assert len(lines) == 2 + 5  # header, rule, one line per count bucket
    assert all(len(line.split("|")) == 2 + 2 + 2 * 3 for line in lines)
    # the debug run's head is tied: its output rows are its input rows
    output = subprocess.run([sys.executable, str(script), "--rows", "output", str(run)],
                            capture_output=True, text=True)  # fmt: skip
    assert output.returncode == 0, output.stderr
    assert output.stdout.startswith("output rows;")
    first = subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True)
    assert output.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]
    # an untied head has rows of its own
    tables = [
        subprocess.run([sys.executable, str(script), *rows, str(untied)],
                       capture_output=True, text=True).stdout.splitlines()[1:]
        for rows in ([], ["--rows", "output"])
    ]  # fmt: skip
    assert tables[0] != tables[1]
    adam = subprocess.run([sys.executable, str(script), "--adam", str(run), str(untied)],
                          capture_output=True, text=True)  # fmt: skip
    assert adam.returncode == 0, adam.stderr
    adam_lines = [line for line in adam.stdout.split("Adam's state")[1].splitlines()
                  if line.startswith("| ")]  # fmt: skip
    assert adam_lines[0].startswith("| times seen | pieces | run: gradient RMS | run: step |")
    assert len(adam_lines) == 2 + 5
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "nothing")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
