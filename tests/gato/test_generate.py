from pathlib import Path

import numpy as np
import pytest
import torch

from gato.config import ModelConfig
from gato.data import scenes
from gato.generate import (
    GenerationConfig,
    caption_images,
    caption_prompt,
    checkpoint_image_size,
    generate,
    generate_texts,
    generate_uncached,
    label_caption,
    npz_image_shape,
    rank_labels,
    score_continuations,
    text_row,
    with_image_size,
)
from gato.loading import tokenizers_for
from gato.model import Gato
from gato.sampling import SamplingConfig
from gato.sequence import Row, collate
from gato.tokenizers.text import TextTokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    design = (Path(__file__).resolve().parents[2] / "DESIGN.md").read_text(encoding="utf-8")
    caps = "\n".join(scenes.example("train", i, 0, 48).caption for i in range(200))
    corpus = folder / "corpus.txt"
    corpus.write_text(design + "\nUser: hello\nGato: hi there\n" + caps + "\n")
    return TextTokenizer.train([corpus], folder / "t.model", vocab_size=400)


def tiny_config(text_size: int, context: int = 96) -> ModelConfig:
    return ModelConfig(
        name="tiny", n_layer=2, n_head=2, d_model=32, d_ff=64, text_size=text_size,
        context=context, max_obs_tokens=64, patch_channels=8, patch_groups=4, dropout=0.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model_tok(text):
    cfg = tiny_config(text.vocab_size)
    torch.manual_seed(0)
    return Gato(cfg).eval(), tokenizers_for(cfg, text)


def scene_images(n: int, size: int = 48) -> list[np.ndarray]:
    return [scenes.example("test", i, 0, size).image for i in range(n)]


def ids_of(gens):
    return [g.ids for g in gens]


def test_greedy_generation_is_deterministic(model_tok):
    model, tok = model_tok
    prompts = [caption_prompt(tok, im) for im in scene_images(3)]
    cfg = GenerationConfig(max_new_tokens=12)
    assert ids_of(generate(model, tok, prompts, cfg)) == ids_of(generate(model, tok, prompts, cfg))


@pytest.mark.parametrize(
    "sampling",
    [SamplingConfig(0.0), SamplingConfig(1.0), SamplingConfig(0.8, top_k=5),
     SamplingConfig(1.0, top_p=0.9)],
)  # fmt: skip
def test_cached_and_uncached_generation_give_identical_tokens(model_tok, sampling):
    model, tok = model_tok
    prompts = [caption_prompt(tok, im) for im in scene_images(3)]
    cfg = GenerationConfig(max_new_tokens=15, sampling=sampling)
    cached = generate(model, tok, prompts, cfg, torch.Generator().manual_seed(3))
    uncached = generate_uncached(model, tok, prompts, cfg, torch.Generator().manual_seed(3))
    assert ids_of(cached) == ids_of(uncached)
    assert [g.stopped for g in cached] == [g.stopped for g in uncached]


def test_cached_generation_past_the_context_matches_the_reference(text):
    cfg = tiny_config(text.vocab_size, context=16)  # prompt 9 patches + 20 new > context
    torch.manual_seed(1)
    model, tok = Gato(cfg).eval(), tokenizers_for(cfg, text)
    prompts = [caption_prompt(tok, im) for im in scene_images(2)]
    gcfg = GenerationConfig(max_new_tokens=20, sampling=SamplingConfig(1.0))
    a = generate(model, tok, prompts, gcfg, torch.Generator().manual_seed(0))
    b = generate_uncached(model, tok, prompts, gcfg, torch.Generator().manual_seed(0))
    assert ids_of(a) == ids_of(b)


def restricted_logits(model, tok, prompt: Row, ids: list[int]) -> torch.Tensor:
    """(len(ids), text vocab) logits that chose each id, by a full forward pass."""
    row = Row.concat([prompt, text_row(tok, ids)])
    with torch.no_grad():
        logits = model(collate([row], tok.vocab))[0]
    n0 = len(prompt)
    return logits[n0 - 1 : n0 - 1 + len(ids), : tok.text.vocab_size]


def test_generation_emits_only_text_ids(model_tok):
    model, tok = model_tok
    prompts = [caption_prompt(tok, im) for im in scene_images(4)]
    gens = generate(model, tok, prompts, GenerationConfig(30, SamplingConfig(1.5)),
                    torch.Generator().manual_seed(0))  # fmt: skip
    assert all(0 <= i < tok.text.vocab_size for g in gens for i in g.ids)


def test_top_k_samples_only_among_the_k_most_likely(model_tok):
    model, tok = model_tok
    prompt = caption_prompt(tok, scene_images(1)[0])
    k = 3
    for seed in range(3):
        cfg = GenerationConfig(20, SamplingConfig(2.0, top_k=k))
        (g,) = generate(model, tok, [prompt], cfg, torch.Generator().manual_seed(seed))
        logits = restricted_logits(model, tok, prompt, g.ids)
        rank = (logits > logits.gather(1, torch.tensor(g.ids)[:, None])).sum(1)
        assert int(rank.max()) < k


def test_top_p_samples_only_inside_the_nucleus(model_tok):
    model, tok = model_tok
    prompt = caption_prompt(tok, scene_images(1)[0])
    p = 0.5
    for seed in range(3):
        cfg = GenerationConfig(20, SamplingConfig(1.0, top_p=p))
        (g,) = generate(model, tok, [prompt], cfg, torch.Generator().manual_seed(seed))
        probs = restricted_logits(model, tok, prompt, g.ids).softmax(-1)
        chosen = probs.gather(1, torch.tensor(g.ids)[:, None])  # (n, 1)
        # Mass of the tokens strictly more likely than the chosen one must be < p.
        before = (probs * (probs > chosen)).sum(1)
        assert bool((before < p).all())


def test_top_k_one_and_tiny_top_p_equal_greedy(model_tok):
    model, tok = model_tok
    prompts = [caption_prompt(tok, im) for im in scene_images(2)]
    greedy = ids_of(generate(model, tok, prompts, GenerationConfig(12)))
    for s in (SamplingConfig(1.0, top_k=1), SamplingConfig(1.0, top_p=1e-6)):
        got = generate(model, tok, prompts, GenerationConfig(12, s), torch.Generator())
        assert ids_of(got) == greedy


def eos_model(text, sign: float = 1.0):
    """A model whose every prediction is EOS (sign +1) or never EOS (sign -1)."""
    cfg = tiny_config(text.vocab_size)
    torch.manual_seed(0)
    m = Gato(cfg).eval()
    with torch.no_grad():
        v = torch.zeros(cfg.d_model)
        v[0] = 10.0
        m.tok_emb.weight[text.eos_id] = sign * v  # tied head: EOS logit = sign * 100
        m.ln_f.weight.zero_()
        m.ln_f.bias.copy_(v)
    return m


def test_generation_stops_at_eos_and_leaves_it_out(text):
    model = eos_model(text)
    tok = tokenizers_for(model.cfg, text)
    gens = generate(model, tok, [caption_prompt(tok, scene_images(1)[0])], GenerationConfig(10))
    assert gens[0].ids == [] and gens[0].stopped


def test_generation_stops_at_max_new_tokens_without_eos(text):
    model = eos_model(text, sign=-1.0)
    tok = tokenizers_for(model.cfg, text)
    (g,) = generate(model, tok, [text_row(tok, [5, 6, 7])], GenerationConfig(4))
    assert len(g.ids) == 4 and not g.stopped


def test_unequal_prompts_in_one_batch_are_refused(model_tok):
    model, tok = model_tok
    with pytest.raises(ValueError, match="one length"):
        generate(model, tok, [text_row(tok, [5, 6]), text_row(tok, [5])])


def test_text_prompts_of_different_lengths_are_grouped_and_keep_their_order(model_tok):
    model, tok = model_tok
    prompts = [[5, 6, 7], [8], [9, 10, 11], [12, 13]]
    cfg = GenerationConfig(6)
    together = generate_texts(model, tok, prompts, cfg)
    alone = [generate(model, tok, [text_row(tok, p)], cfg)[0] for p in prompts]
    assert ids_of(together) == ids_of(alone)


def test_batched_captions_equal_one_at_a_time(model_tok):
    model, tok = model_tok
    images = scene_images(3)
    batched = caption_images(model, tok, images, GenerationConfig(10))
    alone = [caption_images(model, tok, [im], GenerationConfig(10))[0] for im in images]
    assert batched == alone


def test_score_continuations_equals_summed_token_log_probs(model_tok):
    model, tok = model_tok
    prefix = caption_prompt(tok, scene_images(1)[0])
    cands = ["a small red circle", "a large blue square at the top"]
    scores = score_continuations(model, tok, prefix, cands)
    for c, s in zip(cands, scores.tolist(), strict=True):
        ids = tok.text.encode(c) + [tok.text.eos_id]
        logp = restricted_logits(model, tok, prefix, ids).log_softmax(-1)
        expected = float(logp.gather(1, torch.tensor(ids)[:, None]).sum())
        assert s == pytest.approx(expected, abs=1e-4)


def test_rank_labels_sorts_by_log_likelihood_and_shares_sum_to_one(model_tok):
    model, tok = model_tok
    ranking = rank_labels(model, tok, scene_images(1)[0], ["circle", "square", "apple"])
    lls = [r.log_likelihood for r in ranking]
    assert lls == sorted(lls, reverse=True)
    assert sum(r.probability for r in ranking) == pytest.approx(1.0)
    assert {r.caption for r in ranking} == {
        "a photo of a circle", "a photo of a square", "a photo of an apple"
    }  # fmt: skip


def test_label_caption_matches_the_fashion_template():
    from gato.data.captions import FASHION_CLASSES, fashion_caption

    for k, name in enumerate(FASHION_CLASSES):
        assert label_caption(name) == fashion_caption(k)
    with pytest.raises(ValueError, match="template"):
        label_caption("x", "a {colour}")


def test_user_images_of_any_size_get_the_trained_patch_count(model_tok):
    model, tok = model_tok
    sized = with_image_size(tok, (48, 48))
    for shape in [(1, 1, 3), (300, 517, 3), (48, 48, 3), (20, 90)]:
        image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        assert len(caption_prompt(sized, image)) == 9
    assert caption_images(model, sized, [np.zeros((7, 300, 3), np.uint8)], GenerationConfig(3))


def test_checkpoint_image_size_comes_from_state_or_the_caption_set(tmp_path, model_tok):
    import json

    from gato.data.captions import save_caption_set, scene_arrays

    _, tok = model_tok
    (tmp_path / "state.json").write_text(json.dumps({"image_size": [64, 64]}))
    assert checkpoint_image_size(tok, None, tmp_path) == (64, 64)
    save_caption_set(tmp_path / "c.npz", scene_arrays("train", 2, 0, 48))
    assert npz_image_shape(tmp_path / "c.npz") == (2, 48, 48, 3)
    with pytest.raises(ValueError, match="--image-size"):
        checkpoint_image_size(tok, None, tmp_path / "nowhere")
