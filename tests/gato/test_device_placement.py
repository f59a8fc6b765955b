"""Device placement without a GPU: every model path keeps its tensors on the model's device.

The stand-in device (``tests/gato/strict_device.py``) reports ``meta`` but keeps real
values, and raises :class:`DeviceMismatch` when a CPU tensor (e.g. a ``torch.arange(n)``
written without ``device=``) meets the device's tensors, as CUDA would. Plain ``meta``
cannot run these paths: the embedding and the loss index with boolean masks, which
need values. Each test also checks the results equal a plain CPU run, so a path that
silently fell back to the CPU would still have to compute the right thing.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gato.checkpoint import load_checkpoint
from gato.config import load_preset, load_run_config
from gato.data.captions import scene_arrays
from gato.data.dialogues import scene_dialogues
from gato.distributed import DistEnv
from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec
from gato.generate import GenerationConfig, caption_images, generate_texts, rank_labels
from gato.loading import tokenizers_for
from gato.loss import sequence_loss
from gato.model import Gato
from gato.policy import Policy
from gato.sampling import GREEDY, SamplingConfig
from gato.sequence import (
    TokenBatch,
    caption_row,
    collate,
    demonstration_prompt,
    dialogue_row,
    episode_row,
)
from gato.tokenizers.text import TextTokenizer
from gato.train import _Stats, _sum_over_ranks, train

from ..conftest import CONFIGS
from .strict_device import DeviceMismatch, is_on_device, strict_device, values

torch.set_num_threads(1)

# configs/debug.toml's episode entry swapped for a caption entry (no episode store needed).
TEXT_ONLY = [
    "data.mixture.0.kind=captions",
    "data.mixture.0.path=captions.npz",
    "data.mixture.0.task=captions2",
]

CFG = load_preset("debug")  # context 128
SPEC = TaskSpec(
    "t-image",
    {"image": ObsField(ObsKind.IMAGE, (16, 32, 1)), "state": ObsField(ObsKind.CONTINUOUS, (3,))},
    ActionSpec(low=(-1.0, 0.0), high=(1.0, 2.0)),
)  # 2 patches + 3 values | 2 continuous action tokens: 8 tokens a step


@pytest.fixture(scope="module")
def tok(text_data):
    return tokenizers_for(CFG, TextTokenizer.load(text_data / "text.model"))


def cpu_model(seed: int = 0) -> Gato:
    torch.manual_seed(seed)
    return Gato(CFG).eval()


def observations(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "image": rng.integers(0, 256, (n, 16, 32, 1), dtype=np.uint8),
        "state": rng.uniform(-2, 2, (n, 3)).astype(np.float32),
    }


def episode(steps: int, seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    obs = observations(steps, rng)
    actions = rng.uniform([-1.0, 0.0], [1.0, 2.0], (steps, 2)).astype(np.float32)
    return Episode(SPEC.name, obs, actions, np.zeros(steps, np.float32))


def mixed_batch(tok) -> TokenBatch:
    """An episode, a caption and a dialogue through the real builders and collate."""
    scenes = scene_arrays("train", 1, seed=0, image_size=48)
    rows = [
        episode_row(tok, SPEC, episode(6, seed=0)),
        caption_row(tok, scenes["images"][0], str(scenes["captions"][0])),
        dialogue_row(tok, scene_dialogues(1, seed=0)[0], context=CFG.context),
    ]
    return collate(rows, tok.vocab, context=CFG.context)


def on_device(model: Gato, device: torch.device) -> Gato:
    return model.to(device)  # in place: callers build a fresh CPU model first


def test_the_stand_in_device_refuses_a_cpu_tensor_like_cuda_does():
    with strict_device() as dev:
        x = torch.zeros(3, 4, device=dev)
        assert is_on_device(x + torch.arange(4, device=dev))
        assert is_on_device(x * torch.tensor(2.0))  # a 0-dim CPU scalar is fine on CUDA too
        with pytest.raises(DeviceMismatch):
            x + torch.arange(4)
        with pytest.raises(DeviceMismatch):
            torch.rand(3, device=dev, generator=torch.Generator())


def test_training_forward_loss_and_backward_of_a_mixed_batch_stay_on_the_device(tok):
    """Train mode (patch-position jitter draws random numbers on the batch's device)."""
    batch = mixed_batch(tok)
    assert {"t-image", "captions", "chat"} <= set(batch.tasks) and batch.patches.shape[0] > 0
    ref_model = cpu_model().train()
    torch.manual_seed(1)
    ref = sequence_loss(ref_model(batch), batch)
    ref.loss.backward()
    with strict_device() as dev:
        model = on_device(cpu_model().train(), dev)
        torch.manual_seed(1)
        logits = model(batch.to(dev))
        assert is_on_device(logits)
        out = sequence_loss(logits, batch.to(dev))
        out.loss.backward()
        assert is_on_device(out.loss)
        pairs = zip(model.named_parameters(), ref_model.parameters(), strict=True)
        for (name, p), q in pairs:
            assert is_on_device(p.grad), name
            torch.testing.assert_close(values(p.grad), q.grad, msg=name)
    assert float(values(out.loss.detach())) == pytest.approx(float(ref.loss.detach()), rel=1e-5)
    assert out.per_task.keys() == ref.per_task.keys()
    assert (out.text_tokens, out.action_tokens) == (ref.text_tokens, ref.action_tokens)


def test_kv_cache_prefill_steps_and_sliding_window_stay_on_the_device(tok):
    """Prefill 100 tokens, then 1-token and 8-token steps past the context (128)."""
    ep = episode(40, seed=1)  # 320 tokens
    full = collate([episode_row(tok, SPEC, ep)], tok.vocab)
    chunks = [(0, 100)] + [(t, t + 1) for t in range(100, 110)] + [(110, 118)]
    chunks += [(t, t + 8) for t in range(118, 318, 8)]  # past 2 x context: the cache slides
    cols = [_columns(full, lo, hi) for lo, hi in chunks]
    ref_model = cpu_model()
    ref_cache = ref_model.new_cache(1)
    with torch.no_grad():
        ref = [ref_model(c, cache=ref_cache) for c in cols]
    with strict_device() as dev, torch.no_grad():
        model = on_device(cpu_model(), dev)
        cache = model.new_cache(1)
        assert all(is_on_device(k) for k in cache.k + cache.v)
        for c, r in zip(cols, ref, strict=True):
            logits = model(c.to(dev), cache=cache)
            assert is_on_device(logits)
            torch.testing.assert_close(values(logits), r)
        assert cache.pos == 318 > 2 * CFG.context
        assert all(is_on_device(k) for k in cache.k + cache.v)


def _columns(batch: TokenBatch, lo: int, hi: int) -> TokenBatch:
    """Positions ``[lo, hi)`` of a one-row batch, with their patches."""
    is_image = batch.kinds[0] == 2  # Kind.IMAGE
    p0, p1 = int(is_image[:lo].sum()), int(is_image[:hi].sum())
    return dataclasses.replace(
        batch,
        tokens=batch.tokens[:, lo:hi],
        kinds=batch.kinds[:, lo:hi],
        obs_pos=batch.obs_pos[:, lo:hi],
        loss_mask=batch.loss_mask[:, lo:hi],
        patches=batch.patches[p0:p1],
        patch_pos=batch.patch_pos[p0:p1],
    )


def _play(policy: Policy, tok, n: int, steps: int) -> np.ndarray:
    """Prompted episodes of ``n`` envs; env 1 finishes after 3 steps (``keep``)."""
    rng = np.random.default_rng(0)
    demo = demonstration_prompt(tok, SPEC, episode(12, seed=2), budget=48)
    policy.reset(n, seeds=list(range(n)), prompts=[demo] * n)
    out = []
    for t in range(steps):
        obs = observations(n if t < 3 else n - 1, rng)
        out.append(policy.act(obs))
        if t == 2:
            policy.keep([0, 2])
    return np.concatenate(out)


@pytest.mark.parametrize(
    "sampling", [GREEDY, SamplingConfig(temperature=1.0)], ids=["greedy", "t1"]
)
def test_policy_acting_past_the_context_stays_on_the_device(tok, sampling):
    """Prompt prefill, action tokens, ``keep`` and 25 steps (200 tokens > context 128)."""
    ref = _play(Policy(cpu_model(), tok, SPEC, sampling), tok, n=3, steps=25)
    with strict_device() as dev:
        policy = Policy(on_device(cpu_model(), dev), tok, SPEC, sampling, device=dev)
        got = _play(policy, tok, n=3, steps=25)
        assert all(is_on_device(k) for k in policy.cache.k + policy.cache.v)
        assert policy.cache.pos > CFG.context
    np.testing.assert_allclose(got, ref)


@pytest.mark.parametrize(
    "sampling", [GREEDY, SamplingConfig(temperature=1.0)], ids=["greedy", "t1"]
)
def test_caption_and_chat_generation_stay_on_the_device(tok, sampling):
    """``generate`` with a KV cache; sampling with the default generator (no ``generator``)."""
    images = list(scene_arrays("test", 2, seed=0, image_size=48)["images"])
    prompts = [tok.text_model().encode("User: what is in the scene?\nGato:"), [5, 6, 7]]
    config = GenerationConfig(max_new_tokens=12, sampling=sampling)
    torch.manual_seed(3)
    ref_caps = caption_images(cpu_model(), tok, images, config)
    ref_text = [g.ids for g in generate_texts(cpu_model(), tok, prompts, config)]
    with strict_device() as dev:
        torch.manual_seed(3)
        caps = caption_images(on_device(cpu_model(), dev), tok, images, config)
        text = [g.ids for g in generate_texts(on_device(cpu_model(), dev), tok, prompts, config)]
    assert (caps, text) == (ref_caps, ref_text)


def test_sampling_with_a_cpu_generator_works_on_the_device_and_makes_the_same_draws(tok):
    """CUDA refuses a CPU generator for its tensors; generation samples on the CPU then."""
    images = list(scene_arrays("test", 2, seed=0, image_size=48)["images"])
    config = GenerationConfig(max_new_tokens=12, sampling=SamplingConfig(temperature=1.0))
    ref = caption_images(cpu_model(), tok, images, config, torch.Generator().manual_seed(5))
    with strict_device() as dev:
        model = on_device(cpu_model(), dev)
        got = caption_images(model, tok, images, config, torch.Generator().manual_seed(5))
    assert got == ref


def test_zero_shot_scoring_stays_on_the_device(tok):
    image = scene_arrays("test", 1, seed=0, image_size=48)["images"][0]
    labels = ["red circle", "blue square", "green triangle"]
    ref = rank_labels(cpu_model(), tok, image, labels)
    with strict_device() as dev:
        got = rank_labels(on_device(cpu_model(), dev), tok, image, labels)
    assert [r.label for r in got] == [r.label for r in ref]
    for g, r in zip(got, ref, strict=True):
        assert g.log_likelihood == pytest.approx(r.log_likelihood, rel=1e-5)


def test_a_training_run_of_two_steps_with_eval_and_checkpoint_runs_on_the_device(
    text_data, tmp_path
):
    """``gato.train.train`` in process: batches, loss, backward, AdamW, clip, eval, save.

    Plain ``train.device = "meta"`` could not train (no values); on the stand-in the
    loop runs for real, so it is the training loop itself that is checked.
    """
    cfg = load_run_config(
        str(CONFIGS / "debug.toml"),
        [f"data.dir={text_data}", *TEXT_ONLY, "train.steps=2", "train.eval_interval=2",
         "train.eval_batches=1", "data.workers=0", 'train.device="meta"'],
    )  # fmt: skip
    with strict_device():
        result = train(cfg, tmp_path / "run", progress=False)
    assert result.status == "done" and result.step == 2
    assert all(math.isfinite(x) for x in result.losses)
    weights = load_checkpoint(tmp_path / "run", with_optimizer=False).model
    assert all(not is_on_device(w) and torch.isfinite(w).all() for w in weights.values())


def test_cross_process_sums_run_on_the_training_device(monkeypatch):
    """NCCL reduces only CUDA tensors: the step's target count and stats go to the device."""
    seen = []

    def all_reduce(t, op=None):  # stands in for a 2-process job's NCCL all_reduce
        seen.append(is_on_device(t))
        t.mul_(2)

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    env = DistEnv(rank=0, world_size=2, local_rank=0)
    with strict_device() as dev:
        total = _sum_over_ranks(torch.tensor([3.0]), env, dev)
        stats = _Stats(["chat"])
        stats.v[:2] = (6.0, 3.0)  # loss sum 6 over 3 targets
        reduced = stats.reduce(env, 0, 1.0, dev)
    assert seen == [True, True]
    assert not is_on_device(total) and total.tolist() == [6.0]
    assert reduced.loss == 2.0 and not reduced.stop
