import pytest
import torch

from gato.action_dropout import drop_actions, legal_ranges
from gato.envs.spec import ActionSpec
from gato.sequence import Kind, TokenBatch
from gato.tokenizers.vocab import Vocab

V = Vocab(text_size=100, bins=64)
K = Kind
RANGES = legal_ranges(
    V,
    {
        "discrete": ActionSpec(n=3),
        "two-dims": ActionSpec(low=(-1.0, -1.0), high=(1.0, 1.0)),
    },
)


def episode_batch(task: str, dims: int, steps: int, rows: int = 1) -> TokenBatch:
    """``rows`` rows of ``steps`` timesteps: 2 observation values, ``|``, ``dims`` actions."""
    step_kinds = [K.OBS_VALUE, K.OBS_VALUE, K.SEPARATOR] + [K.ACTION] * dims
    step_tokens = [V.bin_offset + 40, V.bin_offset + 41, V.separator] + [V.bin_offset] * dims
    kinds = torch.tensor([int(k) for k in step_kinds] * steps).repeat(rows, 1)
    tokens = torch.tensor(step_tokens * steps).repeat(rows, 1)
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=torch.zeros_like(tokens),
        loss_mask=kinds == K.ACTION,
        patches=torch.zeros(0, 1, 16, 16),
        patch_pos=torch.zeros(0, 4, dtype=torch.long),
        tasks=[task] * rows,
    )


def test_legal_ranges_are_the_policy_id_ranges():
    assert RANGES["discrete"].tolist() == [[V.bin_offset, V.bin_offset + 3]]
    assert RANGES["two-dims"].tolist() == [[V.bin_offset, V.bin_offset + V.bins]] * 2


def test_zero_probability_returns_the_batch_itself():
    batch = episode_batch("discrete", 1, 4)
    assert drop_actions(batch, 0.0, RANGES) is batch


def test_only_action_tokens_change_and_only_to_legal_ids():
    torch.manual_seed(0)
    batch = episode_batch("discrete", 1, 2000)
    out = drop_actions(batch, 0.5, RANGES)
    action = batch.kinds == K.ACTION
    assert torch.equal(out.tokens[~action], batch.tokens[~action])
    assert torch.equal(out.kinds, batch.kinds) and torch.equal(out.loss_mask, batch.loss_mask)
    dropped = out.tokens[action]
    assert bool(((dropped >= V.bin_offset) & (dropped < V.bin_offset + 3)).all())
    # every legal action is drawn; the unchanged id (bin_offset) also comes up by chance
    assert set(dropped.tolist()) == {V.bin_offset, V.bin_offset + 1, V.bin_offset + 2}
    changed = float((dropped != V.bin_offset).float().mean())
    assert changed == pytest.approx(0.5 * 2 / 3, abs=0.03)  # p x P(draw != the true action)


def test_replacement_rate_follows_p_per_dimension():
    torch.manual_seed(1)
    batch = episode_batch("two-dims", 2, 3000)
    out = drop_actions(batch, 0.25, RANGES)
    changed = (out.tokens != batch.tokens).view(3000, -1)[:, 3:]  # (steps, 2) action dims
    # a continuous draw hits the true bin 1/64 of the time
    expected = 0.25 * (1 - 1 / V.bins)
    assert changed.float().mean(dim=0).tolist() == pytest.approx([expected] * 2, abs=0.03)


def test_the_original_batch_is_not_modified():
    torch.manual_seed(2)
    batch = episode_batch("discrete", 1, 100)
    before = batch.tokens.clone()
    drop_actions(batch, 0.9, RANGES)
    assert torch.equal(batch.tokens, before)


def test_rows_without_actions_pass_through_and_unknown_tasks_are_errors():
    text = TokenBatch(
        tokens=torch.tensor([[5, 6, 7]]),
        kinds=torch.full((1, 3), int(K.TEXT)),
        obs_pos=torch.zeros(1, 3, dtype=torch.long),
        loss_mask=torch.ones(1, 3, dtype=torch.bool),
        patches=torch.zeros(0, 1, 16, 16),
        patch_pos=torch.zeros(0, 4, dtype=torch.long),
        tasks=["chat"],
    )
    assert drop_actions(text, 0.5, RANGES) is text
    with pytest.raises(ValueError, match="no legal action ids for task 'pong'"):
        drop_actions(episode_batch("pong", 1, 3), 0.5, RANGES)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        drop_actions(episode_batch("discrete", 1, 3), 1.0, RANGES)
