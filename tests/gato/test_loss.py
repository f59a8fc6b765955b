import math

import pytest
import torch
import torch.nn.functional as F

from gato.loss import frequency_loss, predicting, sequence_loss
from gato.sequence import Kind, TokenBatch
from gato.tokenizers.vocab import Vocab

V = Vocab(text_size=100, bins=16)
K = Kind


def batch_of(rows: list[list[tuple[Kind, int]]], tasks: list[str]) -> TokenBatch:
    """A hand-made batch with the builders' mask rule: text and action targets only."""
    B, T = len(rows), max(len(r) for r in rows)
    tokens = torch.full((B, T), V.pad)
    kinds = torch.full((B, T), int(K.PAD))
    for b, row in enumerate(rows):
        for t, (kind, tok) in enumerate(row):
            tokens[b, t], kinds[b, t] = tok, int(kind)
    loss_mask = (kinds == K.TEXT) | (kinds == K.ACTION)
    loss_mask[:, 0] = False
    n = int((kinds == K.IMAGE).sum())
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=torch.zeros(B, T, dtype=torch.long),
        loss_mask=loss_mask,
        patches=torch.zeros(n, 3, 16, 16),
        patch_pos=torch.zeros(n, 4, dtype=torch.long),
        tasks=tasks,
    )


EPISODE = [(K.IMAGE, V.patch)] * 2 + [(K.OBS_VALUE, V.bin_offset + 3), (K.SEPARATOR, V.separator)]
EPISODE += [(K.ACTION, V.bin_offset + 1), (K.ACTION, V.bin_offset + 2)]
EPISODE *= 2  # two timesteps
CAPTION = [(K.IMAGE, V.patch)] * 3 + [(K.TEXT, 5), (K.TEXT, 6), (K.TEXT, 7)]
DIALOGUE = [(K.TEXT, t) for t in (10, 11, 12, 13, 14)]


def mixed() -> TokenBatch:
    return batch_of([EPISODE, CAPTION, DIALOGUE], ["pong", "captions", "chat"])


def grad_of_loss(batch: TokenBatch, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*batch.tokens.shape, V.size, generator=g, requires_grad=True)
    sequence_loss(logits, batch).loss.backward()
    return logits.grad.abs().sum(-1)  # (B, T): how much each predicting position matters


def test_only_text_and_action_targets_carry_loss():
    batch = mixed()
    grad = grad_of_loss(batch)
    target_kinds = batch.kinds[:, 1:]  # kind of what position t-1 predicts
    carries = grad[:, :-1] > 0
    for kind in (K.IMAGE, K.OBS_VALUE, K.SEPARATOR, K.PAD):
        assert not carries[target_kinds == kind].any(), kind.name
    for kind in (K.TEXT, K.ACTION):
        assert carries[target_kinds == kind].all(), kind.name
    assert not grad[:, -1].any()  # the last position predicts nothing in the row


def test_a_captions_text_and_an_episodes_actions_carry_loss():
    out = sequence_loss(torch.zeros(3, 12, V.size), mixed())
    assert out.action_tokens == 4  # 2 timesteps x 2 actions
    assert out.text_tokens == 3 + 4  # caption's 3 pieces, dialogue minus its first
    assert out.tokens == 11


def test_loss_is_the_mean_cross_entropy_of_next_token_targets():
    batch = mixed()
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(*batch.tokens.shape, V.size, generator=g)
    out = sequence_loss(logits, batch)
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), batch.tokens[:, 1:], reduction="none")
    mask = batch.loss_mask[:, 1:]
    assert math.isclose(float(out.loss), float(nll[mask].mean()), rel_tol=1e-6)
    kinds = batch.kinds[:, 1:]
    text = nll[mask & (kinds == K.TEXT)].mean()
    action = nll[mask & (kinds == K.ACTION)].mean()
    assert math.isclose(out.text_loss, float(text), rel_tol=1e-6)
    assert math.isclose(out.action_loss, float(action), rel_tol=1e-6)


def test_per_task_sums_add_up_and_group_rows_by_task():
    batch = batch_of([EPISODE, DIALOGUE, EPISODE], ["pong", "chat", "pong"])
    logits = torch.randn(3, 12, V.size, generator=torch.Generator().manual_seed(2))
    out = sequence_loss(logits, batch)
    assert set(out.per_task) == {"pong", "chat"}
    assert out.per_task["pong"].tokens == 8 and out.per_task["chat"].tokens == 4
    total = sum(t.loss_sum for t in out.per_task.values())
    assert math.isclose(total / out.tokens, float(out.loss), rel_tol=1e-5)


def test_bf16_logits_are_scored_in_float32():
    batch = mixed()
    logits = torch.randn(*batch.tokens.shape, V.size, generator=torch.Generator().manual_seed(3))
    low = logits.bfloat16()
    out = sequence_loss(low, batch)
    assert out.loss.dtype == torch.float32
    assert math.isclose(float(out.loss), float(sequence_loss(low.float(), batch).loss))


def test_a_batch_without_targets_has_zero_loss_and_no_modality_losses():
    batch = batch_of([[(K.IMAGE, V.patch)] * 3 + [(K.OBS_VALUE, V.bin_offset)]], ["x"])
    logits = torch.zeros(1, 4, V.size, requires_grad=True)
    out = sequence_loss(logits, batch)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.tokens == 0
    assert out.text_loss is None and out.action_loss is None


def test_a_mask_on_an_image_target_is_refused():
    batch = mixed()
    batch.loss_mask[1, 1] = True  # the caption's second patch
    with pytest.raises(ValueError, match="marks a IMAGE target"):
        sequence_loss(torch.zeros(3, 12, V.size), batch)


def test_logits_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="disagree"):
        sequence_loss(torch.zeros(3, 11, V.size), mixed())


def test_logits_at_the_predicting_positions_only_give_the_same_loss():
    batch = mixed()
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(*batch.tokens.shape, V.size, generator=g)
    at = predicting(batch)  # (B, T)
    assert int(at.sum()) == int(batch.loss_mask.sum()) and not at[:, -1].any()
    full, picked = sequence_loss(logits, batch), sequence_loss(logits[at], batch)
    assert math.isclose(float(full.loss), float(picked.loss), rel_tol=1e-6)
    assert full.per_task == picked.per_task and full.text_loss == picked.text_loss


def test_picked_logits_for_the_wrong_number_of_positions_are_refused():
    with pytest.raises(ValueError, match="11 targets"):
        sequence_loss(torch.zeros(10, V.size), mixed())


def test_frequency_loss_is_the_entropy_of_the_targets_frequencies():
    assert frequency_loss(torch.tensor([3, 7, 9, 11])) == pytest.approx(math.log(4))
    assert frequency_loss(torch.tensor([5, 5, 5])) == 0.0
    # 3/4 of one id, 1/4 of another
    assert frequency_loss(torch.tensor([2, 2, 2, 8])) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    )
    assert math.isnan(frequency_loss(torch.tensor([], dtype=torch.long)))


def test_no_context_free_prediction_beats_the_frequency_loss():
    targets = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 3, 3])
    floor = frequency_loss(targets)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):  # one logit vector for every target: a context-free predictor
        logits = torch.randn(4, generator=gen).expand(len(targets), 4)
        assert F.cross_entropy(logits, targets).item() > floor
    p = torch.bincount(targets).double() / len(targets)
    at_p = F.cross_entropy(p.log().expand(len(targets), 4), targets).item()
    assert at_p == pytest.approx(floor)
