import dataclasses

import pytest
import torch

from gato.config import ModelConfig, load_preset
from gato.loss import sequence_loss
from gato.model import Gato, last_positions
from gato.sequence import Kind, TokenBatch

torch.set_num_threads(1)

CFG = load_preset("debug")
V = CFG.vocab


# --- hand-built rows (the real builders live in gato.sequence) ------------------------


def randint(high: int, n: int, g: torch.Generator) -> list[int]:
    return torch.randint(high, (n,), generator=g).tolist()


def episode_row(g: torch.Generator, steps: int, patches: int = 4, values: int = 3) -> list:
    """Timesteps ``[patches, values] | [2 actions]`` as (kind, id) pairs."""
    row = []
    for _ in range(steps):
        row += [(Kind.IMAGE, V.patch)] * patches
        row += [(Kind.OBS_VALUE, V.bin_offset + v) for v in randint(V.bins, values, g)]
        row += [(Kind.SEPARATOR, V.separator)]
        row += [(Kind.ACTION, V.bin_offset + a) for a in randint(18, 2, g)]
    return row


def caption_row(g: torch.Generator, patches: int = 4, words: int = 8) -> list:
    text = [(Kind.TEXT, t) for t in randint(V.text_size, words, g)]
    return [(Kind.IMAGE, V.patch)] * patches + text


def dialogue_row(g: torch.Generator, words: int = 20) -> list:
    return [(Kind.TEXT, t) for t in randint(V.text_size, words, g)]


def make_batch(rows: list[list], g: torch.Generator, tasks: list[str] | None = None) -> TokenBatch:
    """Right-padded TokenBatch with random 2x2-grid patches and builder-style masks."""
    B, T = len(rows), max(len(r) for r in rows)
    tokens = torch.full((B, T), V.pad)
    kinds = torch.full((B, T), int(Kind.PAD))
    obs_pos = torch.zeros(B, T, dtype=torch.long)
    patch_pos = []
    for b, row in enumerate(rows):
        local, n_img = 0, 0
        for t, (kind, tok) in enumerate(row):
            tokens[b, t], kinds[b, t] = tok, int(kind)
            if kind in (Kind.IMAGE, Kind.OBS_VALUE):
                obs_pos[b, t] = local
                local += 1
            else:
                local = 0
            if kind == Kind.IMAGE:
                i, j = divmod(n_img % 4, 2)  # 2x2 grid over 128 positions
                patch_pos.append([64 * i, 64 * i + 64, 64 * j, 64 * j + 64])
                n_img += 1
    n = int((kinds == Kind.IMAGE).sum())
    loss_mask = (kinds == Kind.TEXT) | (kinds == Kind.ACTION)
    loss_mask[:, 0] = False
    patches = (torch.rand(n, 3, 16, 16, generator=g) * 2 - 1) / 4
    return TokenBatch(
        tokens=tokens,
        kinds=kinds,
        obs_pos=obs_pos,
        loss_mask=loss_mask,
        patches=patches,
        patch_pos=torch.tensor(patch_pos, dtype=torch.long).reshape(-1, 4),
        tasks=tasks or [f"task{b}" for b in range(B)],
    )


def columns(batch: TokenBatch, lo: int, hi: int) -> TokenBatch:
    """Positions ``[lo, hi)`` of every row, with their patches."""
    is_image = batch.kinds == Kind.IMAGE
    index = (torch.cumsum(is_image.flatten(), 0) - 1).view(is_image.shape)  # patch of (b, t)
    keep = index[:, lo:hi][is_image[:, lo:hi]]
    return TokenBatch(
        tokens=batch.tokens[:, lo:hi],
        kinds=batch.kinds[:, lo:hi],
        obs_pos=batch.obs_pos[:, lo:hi],
        loss_mask=batch.loss_mask[:, lo:hi],
        patches=batch.patches[keep],
        patch_pos=batch.patch_pos[keep],
        tasks=batch.tasks,
    )


def mixed_batch(seed: int = 0) -> TokenBatch:
    g = torch.Generator().manual_seed(seed)
    rows = [episode_row(g, 4), caption_row(g), dialogue_row(g, 30)]
    return make_batch(rows, g, tasks=["pong", "captions", "chat"])


def model(cfg: ModelConfig = CFG, seed: int = 0) -> Gato:
    torch.manual_seed(seed)
    return Gato(cfg).eval()


# --- forward ---------------------------------------------------------------------------


def test_forward_gives_logits_over_the_whole_vocabulary():
    batch = mixed_batch()
    logits = model()(batch)
    assert logits.shape == (3, batch.tokens.shape[1], V.size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("t", [3, 10, 22])
def test_changing_token_t_plus_1_leaves_earlier_logits_unchanged(t):
    m = model()
    batch = mixed_batch()
    before = m(batch)
    changed = dataclasses.replace(batch, tokens=batch.tokens.clone())
    # a neighbouring id wherever position t+1 holds an id (not a patch, pad or separator)
    k = batch.kinds[:, t + 1]
    is_id = (k == Kind.TEXT) | (k == Kind.OBS_VALUE) | (k == Kind.ACTION)
    changed.tokens[:, t + 1] += is_id.long()
    after = m(changed)
    assert torch.equal(before[:, : t + 1], after[:, : t + 1])
    assert not torch.allclose(before[2, t + 1 :], after[2, t + 1 :])


def test_changing_a_later_image_patch_leaves_earlier_logits_unchanged():
    m = model()
    batch = mixed_batch()
    # the episode row's second timestep starts at 10; its first patch is patch index 4
    assert batch.kinds[0, 10] == Kind.IMAGE
    patches = batch.patches.clone()
    patches[4] = -patches[4]
    before, after = m(batch), m(dataclasses.replace(batch, patches=patches))
    assert torch.equal(before[0, :10], after[0, :10])
    assert not torch.allclose(before[0, 10:], after[0, 10:])
    assert torch.equal(before[1:], after[1:])  # other rows' patches untouched


def test_logits_at_chosen_positions_match_the_full_forward():
    m = model()
    batch = mixed_batch()
    at = torch.rand(batch.tokens.shape, generator=torch.Generator().manual_seed(1)) < 0.3
    assert torch.allclose(m(batch, at=at), m(batch)[at], atol=1e-6)
    cache = m.new_cache(3)  # and through the KV cache, at each row's last position
    step = m(batch, cache=cache, at=last_positions(batch))
    assert step.shape == (3, V.size) and torch.allclose(step, m(batch)[:, -1], atol=1e-5)


def test_each_modality_is_embedded_only_where_it_occurs():
    m = model()
    batch = mixed_batch()
    seen = {}

    def count(key, n):
        def hook(mod, inp, out):  # returns None: the module's output is kept
            seen.setdefault(key, n(inp[0]))

        return hook

    m.tok_emb.register_forward_hook(count("tok", torch.numel))
    m.patch_emb.register_forward_hook(count("img", len))
    m.obs_emb.register_forward_hook(count("obs", torch.numel))
    assert torch.equal(m(batch), model()(batch))  # the hooks changed nothing
    kinds = batch.kinds
    assert seen["tok"] == int((kinds != Kind.IMAGE).sum())
    assert seen["img"] == int((kinds == Kind.IMAGE).sum()) == len(batch.patches)
    assert seen["obs"] == int(((kinds == Kind.IMAGE) | (kinds == Kind.OBS_VALUE)).sum())


def test_local_observation_positions_only_affect_observation_tokens():
    m = model()
    batch = mixed_batch()
    obs_pos = batch.obs_pos.clone()
    is_action = batch.kinds == Kind.ACTION
    obs_pos[is_action] = 7  # not an observation: must be ignored
    assert torch.equal(m(batch), m(dataclasses.replace(batch, obs_pos=obs_pos)))
    obs_pos[0, 5] += 1  # an observation value: must matter
    assert batch.kinds[0, 5] == Kind.OBS_VALUE
    assert not torch.equal(m(batch), m(dataclasses.replace(batch, obs_pos=obs_pos)))


def test_eval_patch_positions_are_the_interval_middle_and_deterministic():
    m = model()
    intervals = torch.tensor([[0, 64, 64, 128], [10, 11, 5, 9]])
    assert m.patch_positions(intervals).tolist() == [[31, 95], [10, 6]]
    batch = mixed_batch()
    assert torch.equal(m(batch), m(batch))


def test_train_patch_positions_are_sampled_inside_the_interval():
    m = model().train()
    intervals = torch.tensor([[0, 64, 64, 128], [10, 11, 5, 9]]).repeat(500, 1)
    pos = m.patch_positions(intervals)
    lo, hi = intervals[:, 0::2], intervals[:, 1::2]
    assert ((pos >= lo) & (pos < hi)).all()
    assert len(pos[0::2, 0].unique()) > 40  # spread over the 64 positions
    assert set(pos[1::2, 1].tolist()) == {5, 6, 7, 8}


def test_train_patch_positions_without_jitter_are_the_eval_positions():
    m = model(dataclasses.replace(CFG, patch_jitter=False)).train()
    intervals = torch.tensor([[0, 64, 64, 128], [10, 11, 5, 9]]).repeat(50, 1)
    assert m.patch_positions(intervals).tolist() == [[31, 95], [10, 6]] * 50


def test_grey_patches_are_repeated_to_the_model_channels():
    m = model()
    batch = mixed_batch()
    grey = batch.patches[:, :1]
    rgb = dataclasses.replace(batch, patches=grey.repeat(1, 3, 1, 1))
    assert torch.equal(m(dataclasses.replace(batch, patches=grey)), m(rgb))


def test_rows_longer_than_the_context_use_a_sliding_window():
    m = model(dataclasses.replace(CFG, context=16))
    batch = long_episode(4)  # 40 tokens
    full = m(batch)
    # in a 1-layer model token 19 is seen by the queries 19..34 only
    one = model(dataclasses.replace(CFG, context=16, n_layer=1))
    changed = dataclasses.replace(batch, tokens=batch.tokens.clone())
    changed.tokens[:, 19] += 1  # an action token
    assert batch.kinds[0, 19] == Kind.ACTION
    assert torch.equal(one(batch)[:, 35:], one(changed)[:, 35:])
    assert not torch.allclose(one(batch)[:, 34], one(changed)[:, 34])
    assert full.shape == (2, 40, V.size)


def test_untied_head_has_its_own_matrix_and_is_counted():
    tied, untied = Gato(CFG), Gato(dataclasses.replace(CFG, tie_head=False))
    assert tied.param_counts().head == 0
    assert untied.param_counts().head == V.size * CFG.d_model
    assert untied.param_counts().total == tied.param_counts().total + V.size * CFG.d_model
    assert untied.head.weight.data_ptr() != untied.tok_emb.weight.data_ptr()
    assert sum(p.numel() for p in tied.parameters()) == tied.param_counts().total


# --- KV cache --------------------------------------------------------------------------


def long_episode(steps: int, seed: int = 1) -> TokenBatch:
    g = torch.Generator().manual_seed(seed)
    return make_batch([episode_row(g, steps), episode_row(g, steps)], g)


def test_cache_matches_recompute_for_prefill_then_50_single_tokens():
    m = model()
    batch = long_episode(10)  # 2 rows of 100 tokens, context 128
    full = m(batch)
    cache = m.new_cache(2)
    got = [m(columns(batch, 0, 50), cache=cache)]
    for t in range(50, 100):
        got.append(m(columns(batch, t, t + 1), cache=cache))
    assert cache.pos == 100
    assert (torch.cat(got, dim=1) - full).abs().max() < 1e-4


def test_cache_matches_recompute_a_timestep_at_a_time():
    m = model()
    batch = long_episode(10)
    full = m(batch)
    cache = m.new_cache(2)
    got = [m(columns(batch, t, t + 10), cache=cache) for t in range(0, 100, 10)]
    assert (torch.cat(got, dim=1) - full).abs().max() < 1e-4


def stream(m: Gato, batch: TokenBatch, chunks: list[int]) -> torch.Tensor:
    """Logits of the whole batch fed through one cache in chunks of the given sizes."""
    cache, got, t, i = m.new_cache(batch.tokens.shape[0]), [], 0, 0
    T = batch.tokens.shape[1]
    while t < T:
        n = min(chunks[i % len(chunks)], T - t)
        got.append(m(columns(batch, t, t + n), cache=cache))
        t, i = t + n, i + 1
        assert cache.length <= 2 * m.cfg.context + max(chunks)
    assert cache.pos == T
    return torch.cat(got, dim=1)


@pytest.mark.parametrize("chunks", [[1], [10], [7, 1, 1, 37, 3]])
def test_sliding_cache_matches_recomputing_the_last_context_tokens_at_their_positions(chunks):
    # One layer: the kept keys depend on their own token only, so the cache must equal
    # recomputing the last ctx tokens from their absolute start position exactly.
    ctx = 32
    m = model(dataclasses.replace(CFG, context=ctx, n_layer=1))
    batch = long_episode(15)  # 150 tokens: far past the context
    with torch.no_grad():
        got = stream(m, batch, chunks)
    worst = 0.0
    for q in range(0, 150, 3):
        start = max(0, q - ctx + 1)
        with torch.no_grad():
            ref = m(columns(batch, start, q + 1), start_pos=start)[:, -1]
        worst = max(worst, float((got[:, q] - ref).abs().max()))
    assert worst < 1e-4


@pytest.mark.parametrize("chunks", [[1], [10], [7, 1, 1, 37, 3]])
def test_sliding_cache_matches_the_sliding_window_forward_in_every_layer(chunks):
    ctx = 32
    m = model(dataclasses.replace(CFG, context=ctx))  # 2 layers
    batch = long_episode(15)
    with torch.no_grad():
        assert (stream(m, batch, chunks) - m(batch)).abs().max() < 1e-4


def test_start_pos_shifts_positions_so_uncached_windows_differ():
    m = model()
    batch = columns(long_episode(4), 0, 30)
    assert not torch.allclose(m(batch), m(batch, start_pos=100))


def test_cache_refuses_a_batch_of_another_size():
    m = model()
    with pytest.raises(ValueError, match="cache holds 1 rows"):
        m(columns(long_episode(2), 0, 5), cache=m.new_cache(1))


# --- training --------------------------------------------------------------------------


def test_one_optimiser_step_on_a_mixed_batch_reduces_its_loss():
    m = model().train()
    batch = mixed_batch()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    before = sequence_loss(m(batch), batch).loss
    before.backward()
    opt.step()
    after = sequence_loss(m(batch), batch).loss
    assert after < before


def test_overfitting_a_tiny_batch_drives_the_loss_below_0_1():
    torch.manual_seed(0)
    m = Gato(CFG).train()
    batch = mixed_batch(seed=3)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    steps = 0
    loss = sequence_loss(m(batch), batch).loss
    while loss >= 0.1 and steps < 400:
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        loss = sequence_loss(m(batch), batch).loss
    assert loss < 0.1, f"loss {float(loss):.3f} after {steps} steps"


def test_bf16_autocast_forward_and_cache_run():
    m = model()
    batch = long_episode(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full = m(batch)
        cache = m.new_cache(2, dtype=torch.bfloat16)
        step = m(columns(batch, 0, 10), cache=cache)
    assert full.dtype == torch.bfloat16 and torch.isfinite(full).all()
    assert (step.float() - full[:, :10].float()).abs().max() < 0.1


def test_compiled_model_matches_eager_logits_and_gradients():
    # train.compile: torch.compile once turned the masked embedding writes into NaN
    eager, compiled = model(), model()  # eval mode: no dropout, fixed patch positions
    batch = mixed_batch()
    step = torch.compile(compiled)
    losses = []
    for m in (eager, step):
        loss = sequence_loss(m(batch), batch).loss
        loss.backward()
        losses.append(loss)
    assert torch.isfinite(losses[1]) and abs(float(losses[0] - losses[1])) < 1e-4
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-3), name
