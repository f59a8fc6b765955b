from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec
from gato.sequence import (
    Kind,
    Row,
    Tokenizers,
    caption_row,
    collate,
    decode_action,
    demonstration_prompt,
    dialogue_row,
    draw_row,
    draw_window,
    episode_row,
    episode_windows,
    legal_action_ids,
    observation_keys,
    observation_row,
    pack,
    sample_row,
    timestep_lengths,
    window_at,
)
from gato.tokenizers.chat import encode_dialogue
from gato.tokenizers.image import ImageTokenizer
from gato.tokenizers.text import TextTokenizer
from gato.tokenizers.vocab import Vocab

torch.set_num_threads(1)

VOCAB = Vocab(text_size=400)
IMAGE_TASK = TaskSpec(
    "grid",
    {"frame": ObsField(ObsKind.IMAGE, (32, 32, 1)), "state": ObsField(ObsKind.CONTINUOUS, (4,))},
    ActionSpec(n=3),
)
LOW, HIGH = (-2.0, 0.0), (2.0, 1.0)
CONTROL_TASK = TaskSpec(
    "reach", {"state": ObsField(ObsKind.CONTINUOUS, (3,))}, ActionSpec(low=LOW, high=HIGH)
)
DIALOGUE = [
    {"role": "system", "content": "You are Gato."},
    {"role": "user", "content": "What is Pong?"},
    {"role": "assistant", "content": "A game with two paddles."},
    {"role": "user", "content": "Who plays it?"},
    {"role": "assistant", "content": "The agent."},
]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    design = (Path(__file__).resolve().parents[2] / "DESIGN.md").read_text(encoding="utf-8")
    corpus = folder / "corpus.txt"
    corpus.write_text(design + "\nA small red circle left of a large blue square.\n" * 3)
    return TextTokenizer.train([corpus], folder / "t.model", vocab_size=400)


@pytest.fixture(scope="module")
def tok(text):
    return Tokenizers(VOCAB, text=text, image=ImageTokenizer(patch_size=16))


def image_episode(steps: int, seed: int = 0, task: str = "grid") -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        task=task,
        observations={
            "frame": rng.integers(0, 256, (steps, 32, 32, 1), dtype=np.uint8),
            "state": rng.normal(size=(steps, 4)).astype(np.float32),
        },
        actions=rng.integers(0, 3, steps),
        rewards=np.zeros(steps, np.float32),
    )


def control_episode(steps: int, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        task="reach",
        observations={"state": rng.normal(size=(steps, 3)).astype(np.float32)},
        actions=rng.uniform(LOW, HIGH, (steps, 2)).astype(np.float32),
        rewards=np.zeros(steps, np.float32),
    )


# -- timesteps --------------------------------------------------------------------------
def test_timestep_is_patches_then_values_then_separator_then_action(tok):
    ep = image_episode(3)
    row = episode_row(tok, IMAGE_TASK, ep)
    step = 4 + 4 + 1 + 1  # 2x2 patches, 4 values, |, 1 action
    assert len(row) == 3 * step
    assert timestep_lengths(tok, IMAGE_TASK, ep).tolist() == [step] * 3
    kinds = [Kind.IMAGE] * 4 + [Kind.OBS_VALUE] * 4 + [Kind.SEPARATOR, Kind.ACTION]
    assert row.kinds.tolist() == [int(k) for k in kinds] * 3
    for t in range(3):
        s = row.tokens[t * step : (t + 1) * step]
        assert (s[:4] == VOCAB.patch).all()
        assert s[4:8].tolist() == tok.continuous.encode(ep.observations["state"][t]).tolist()
        assert s[8] == VOCAB.separator
        assert s[9] == VOCAB.bin_offset + ep.actions[t]
    # local observation positions count the observation tokens; separator/action get 0
    assert row.obs_pos[:step].tolist() == list(range(8)) + [0, 0]


def test_observation_keys_are_text_then_images_then_sorted_tensors(tok):
    spec = TaskSpec(
        "mix",
        {
            "z_vec": ObsField(ObsKind.CONTINUOUS, (2,)),
            "b_img": ObsField(ObsKind.IMAGE, (16, 16, 3)),
            "a_disc": ObsField(ObsKind.DISCRETE, (1,)),
            "y_text": ObsField(ObsKind.TEXT, ()),
            "a_img": ObsField(ObsKind.IMAGE, (16, 16, 1)),
            "m_vec": ObsField(ObsKind.CONTINUOUS, (1,)),
        },
        ActionSpec(n=2),
    )
    assert observation_keys(spec) == ["y_text", "a_img", "b_img", "a_disc", "m_vec", "z_vec"]
    obs = {
        "z_vec": np.array([0.5, -0.5]),
        "b_img": np.full((16, 16, 3), 255, np.uint8),
        "a_disc": np.array([7]),
        "y_text": "red",
        "a_img": np.zeros((16, 16, 1), np.uint8),
        "m_vec": np.array([3.0]),
    }
    row = observation_row(tok, spec, obs)
    n_text = len(tok.text.encode("red"))
    expect_kinds = [Kind.TEXT] * n_text + [Kind.IMAGE] * 2 + [Kind.OBS_VALUE] * 4
    assert row.kinds.tolist() == [int(k) for k in expect_kinds + [Kind.SEPARATOR]]
    values = row.tokens[n_text + 2 : n_text + 6].tolist()
    assert values[0] == VOCAB.bin_offset + 7
    assert values[1:] == tok.continuous.encode([3.0, 0.5, -0.5]).tolist()
    # a_img (black) comes before b_img (white)
    assert row.patches[0].max() < 0 < row.patches[1].min()


def test_loss_mask_is_true_exactly_on_actions(tok):
    row = episode_row(tok, IMAGE_TASK, image_episode(4))
    assert (row.loss_mask == (row.kinds == Kind.ACTION)).all()
    batch = collate([row, row.slice(0, 7)], VOCAB)
    never = torch.isin(
        batch.kinds,
        torch.tensor([Kind.IMAGE, Kind.OBS_VALUE, Kind.SEPARATOR, Kind.PAD]),
    )
    assert not batch.loss_mask[never].any()
    assert batch.loss_mask[batch.kinds == Kind.ACTION].all()


def test_text_observations_are_text_targets_and_vary_timestep_length(tok):
    spec = TaskSpec(
        "babble",
        {"mission": ObsField(ObsKind.TEXT, ()), "x": ObsField(ObsKind.DISCRETE, (2,))},
        ActionSpec(n=4),
    )
    missions = ["go", "pick up the red circle left of a large blue square"]
    ep = Episode(
        "babble",
        {"mission": np.array(missions), "x": np.array([[1, 2], [3, 4]])},
        np.array([0, 3]),
        np.zeros(2),
    )
    lengths = timestep_lengths(tok, spec, ep)
    assert lengths.tolist() == [len(tok.text.encode(m)) + 2 + 1 + 1 for m in missions]
    row = episode_row(tok, spec, ep)
    assert len(row) == lengths.sum()
    assert not row.loss_mask[0]  # the window opens with text: nothing predicts it
    assert (row.loss_mask[1:] == np.isin(row.kinds[1:], [Kind.TEXT, Kind.ACTION])).all()
    windows = episode_windows(lengths, int(lengths.max()))
    assert windows == [(0, 1), (1, 2)]


def test_grey_images_are_broadcast_to_the_patch_channels(tok):
    row = episode_row(tok, IMAGE_TASK, image_episode(1))
    assert row.patches.shape == (4, 3, 16, 16)
    assert (row.patches[:, 0] == row.patches[:, 1]).all()
    assert (row.patches[:, 0] == row.patches[:, 2]).all()
    two = TaskSpec("two", {"f": ObsField(ObsKind.IMAGE, (16, 16, 2))}, ActionSpec(n=2))
    with pytest.raises(ValueError, match="channels"):
        observation_row(tok, two, {"f": np.zeros((16, 16, 2), np.uint8)})


def test_patches_follow_image_positions_in_order(tok):
    ep = image_episode(3, seed=1)
    row = episode_row(tok, IMAGE_TASK, ep)
    expect = np.concatenate([tok.image.encode(f) for f in ep.observations["frame"]])
    assert np.array_equal(row.patches[:, :1], expect)
    # patch positions: raster order of a 2x2 grid over 128 intervals, per frame
    assert row.patch_pos[:4].tolist() == [
        [0, 64, 0, 64],
        [0, 64, 64, 128],
        [64, 128, 0, 64],
        [64, 128, 64, 128],
    ]


def test_act_time_observation_matches_the_training_timestep(tok):
    ep = image_episode(3, seed=2)
    row = episode_row(tok, IMAGE_TASK, ep)
    obs = {k: v[1] for k, v in ep.observations.items()}
    act = observation_row(tok, IMAGE_TASK, obs)
    assert np.array_equal(act.tokens, row.tokens[10:19])
    assert np.array_equal(act.kinds, row.kinds[10:19])
    assert np.array_equal(act.obs_pos, row.obs_pos[10:19])
    assert np.array_equal(act.patches, row.patches[4:8])


def test_observation_dict_must_match_the_spec(tok):
    with pytest.raises(ValueError, match="observes keys"):
        observation_row(tok, IMAGE_TASK, {"frame": np.zeros((32, 32, 1), np.uint8)})
    bad = {"frame": np.zeros((32, 32, 1), np.uint8), "state": np.zeros(5)}
    with pytest.raises(ValueError, match="shape"):
        observation_row(tok, IMAGE_TASK, bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_observations_and_actions_are_errors(tok, bad):
    obs = {"state": np.array([0.0, bad, 1.0])}
    with pytest.raises(ValueError, match="not finite"):
        observation_row(tok, CONTROL_TASK, obs)
    ep = control_episode(2)
    ep.actions[1, 0] = bad
    with pytest.raises(ValueError):
        episode_row(tok, CONTROL_TASK, ep)


def test_values_at_the_edges_tokenize(tok):
    row = observation_row(tok, CONTROL_TASK, {"state": np.array([-1.0, 0.0, 1.0])})
    assert row.tokens[:3].tolist() == tok.continuous.encode([-1.0, 0.0, 1.0]).tolist()
    low = episode_row(tok, CONTROL_TASK, _one_step(np.array(LOW)))
    assert low.tokens[-2:].tolist() == [VOCAB.bin_offset, VOCAB.bin_offset]
    high = episode_row(tok, CONTROL_TASK, _one_step(np.array(HIGH)))
    assert high.tokens[-2:].tolist() == [VOCAB.bin_offset + VOCAB.bins - 1] * 2


def _one_step(action: np.ndarray) -> Episode:
    return Episode(
        "reach",
        {"state": np.zeros((1, 3), np.float32)},
        action[None].astype(np.float32),
        np.zeros(1),
    )


def test_actions_outside_the_space_are_errors(tok):
    ep = image_episode(2)
    ep.actions[0] = 3
    with pytest.raises(ValueError, match="outside"):
        episode_row(tok, IMAGE_TASK, ep)
    with pytest.raises(ValueError, match="outside its bounds"):
        episode_row(tok, CONTROL_TASK, _one_step(np.array([2.5, 0.5])))


def test_discrete_actions_round_trip_exactly(tok):
    assert [legal.tolist() for legal in legal_action_ids(VOCAB, IMAGE_TASK.action)] == [
        [400, 401, 402]
    ]
    for a in range(3):
        ids = episode_row(tok, IMAGE_TASK, _discrete_step(a)).tokens[-1:]
        assert decode_action(tok, IMAGE_TASK.action, ids) == a
    with pytest.raises(ValueError, match="outside"):
        decode_action(tok, IMAGE_TASK.action, np.array([VOCAB.bin_offset + 3]))


def _discrete_step(a: int) -> Episode:
    ep = image_episode(1)
    ep.actions[0] = a
    return ep


def test_continuous_actions_round_trip_within_half_a_bin(tok):
    legal = legal_action_ids(VOCAB, CONTROL_TASK.action)
    assert len(legal) == 2 and all(len(ids) == VOCAB.bins for ids in legal)
    ep = control_episode(50, seed=3)
    row = episode_row(tok, CONTROL_TASK, ep)
    action_ids = row.tokens[row.kinds == Kind.ACTION].reshape(50, 2)
    half_bin = (np.array(HIGH) - np.array(LOW)) / VOCAB.bins / 2
    for ids, a in zip(action_ids, ep.actions, strict=True):
        back = decode_action(tok, CONTROL_TASK.action, ids)
        assert np.all(np.abs(back - a) <= half_bin + 1e-6)
        assert np.all((back >= LOW) & (back <= HIGH))


# -- windows ----------------------------------------------------------------------------
def test_windows_fit_the_context_and_hold_whole_timesteps(tok):
    ep = image_episode(23)
    lengths = timestep_lengths(tok, IMAGE_TASK, ep)
    for context in (10, 25, 64, 1000):
        spans = episode_windows(lengths, context)
        assert spans[0][0] == 0 and spans[-1][1] == 23
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        for start, stop in spans:
            row = episode_row(tok, IMAGE_TASK, ep, start, stop)
            assert len(row) <= context and len(row) == 10 * (stop - start)
            assert row.kinds[0] == Kind.IMAGE and row.kinds[-1] == Kind.ACTION
        assert all(stop - start == min(context // 10, 23) for start, stop in spans[:-1])
    assert window_at(lengths, 20, 64) == (20, 23)
    assert window_at(lengths, 3, 64) == (3, 9)
    with pytest.raises(ValueError, match="more than the context"):
        episode_windows(lengths, 9)


def test_zero_length_episodes_give_empty_rows_and_no_windows(tok):
    ep = image_episode(0)
    assert len(episode_row(tok, IMAGE_TASK, ep)) == 0
    lengths = timestep_lengths(tok, IMAGE_TASK, ep)
    assert episode_windows(lengths, 100) == []
    with pytest.raises(ValueError, match="no timesteps"):
        draw_window([lengths], ["grid"], 0, np.random.default_rng(0), 100)


# -- captions and dialogues ------------------------------------------------------------
def test_caption_is_patches_then_text_and_eos_with_loss_on_all_text(tok, text):
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    row = caption_row(tok, image, "a red circle")
    ids = text.encode("a red circle")
    n = 6  # 2x3 patches
    assert len(row) == n + len(ids) + 1
    assert row.kinds.tolist() == [Kind.IMAGE] * n + [Kind.TEXT] * (len(ids) + 1)
    assert row.tokens[n:].tolist() == ids + [text.eos_id]
    assert row.loss_mask.tolist() == [False] * n + [True] * (len(ids) + 1)
    assert row.patches.shape == (6, 3, 16, 16)
    short = caption_row(tok, image, "a red circle", context=n + 2)
    assert len(short) == n + 2 and short.tokens[n:].tolist() == ids[:2]
    with pytest.raises(ValueError, match="no room"):
        caption_row(tok, image, "x", context=6)


def test_dialogue_uses_the_chat_format_with_loss_on_text(tok, text):
    row = dialogue_row(tok, DIALOGUE)
    assert row.tokens.tolist() == encode_dialogue(DIALOGUE, text)
    assert (row.kinds == Kind.TEXT).all()
    assert not row.loss_mask[0] and row.loss_mask[1:].all()
    cut = dialogue_row(tok, DIALOGUE, context=7)
    assert cut.tokens.tolist() == encode_dialogue(DIALOGUE, text)[:7]


# -- prompting --------------------------------------------------------------------------
def test_prompting_fraction_source_and_placement(tok):
    steps = [12, 30, 7, 18]
    lengths = [np.full(n, 10) for n in steps] + [np.full(9, 10)]
    tasks = ["grid"] * 4 + ["other"]
    rng = np.random.default_rng(0)
    draws = [draw_window(lengths, tasks, i % 4, rng, 100) for i in range(4000)]
    prompted = [d for d in draws if d.prompt is not None]
    assert abs(len(prompted) / len(draws) - 0.25) < 0.03
    ends = [d for d in prompted if d.prompt_from_end]
    assert abs(len(ends) / len(prompted) - 0.5) < 0.06
    for d in prompted:
        p, w = d.prompt, d.window
        assert p.episode != w.episode and tasks[p.episode] == "grid"
        assert 10 * (p.stop - p.start) <= 50 and 10 * (p.stop - p.start + w.stop - w.start) <= 100
        if d.prompt_from_end:
            assert p.stop == steps[p.episode]
    starts = {d.prompt.start for d in prompted if not d.prompt_from_end and d.prompt.episode == 1}
    assert starts == set(range(0, 30 - 5 + 1))  # uniform over every full-window start
    for d in draws:
        if d.prompt is None:
            assert 10 * (d.window.stop - d.window.start) == min(100, 10 * steps[d.window.episode])


def test_prompt_draws_are_deterministic_and_carry_no_loss(tok):
    episodes = [image_episode(12, seed=s) for s in range(3)]
    specs = {"grid": IMAGE_TASK}
    a = [sample_row(tok, specs, episodes, 0, np.random.default_rng(5), 60, 1.0) for _ in range(2)]
    assert np.array_equal(a[0].tokens, a[1].tokens)
    lengths = [timestep_lengths(tok, IMAGE_TASK, e) for e in episodes]
    draw = draw_window(lengths, ["grid"] * 3, 0, np.random.default_rng(5), 60, 1.0)
    row = draw_row(tok, specs, episodes, draw)
    n_prompt = 10 * (draw.prompt.stop - draw.prompt.start)
    assert n_prompt > 0 and len(row) <= 60
    assert not row.loss_mask[:n_prompt].any()
    assert (row.loss_mask[n_prompt:] == (row.kinds[n_prompt:] == Kind.ACTION)).all()
    demo = episodes[draw.prompt.episode]
    expect = episode_row(tok, IMAGE_TASK, demo, draw.prompt.start, draw.prompt.stop)
    assert np.array_equal(row.tokens[:n_prompt], expect.tokens)


def test_a_lone_episode_is_never_prompted_with_itself():
    lengths = [np.full(20, 10), np.full(20, 10)]
    rng = np.random.default_rng(0)
    draws = [draw_window(lengths, ["a", "b"], 0, rng, 100, prompt_fraction=1.0) for _ in range(50)]
    assert all(d.prompt is None for d in draws)


def test_demonstration_prompt_is_the_end_of_the_demo(tok):
    demo = image_episode(9, seed=4)
    prompt = demonstration_prompt(tok, IMAGE_TASK, demo, 35)
    expect = episode_row(tok, IMAGE_TASK, demo, 6, 9)
    assert np.array_equal(prompt.tokens, expect.tokens) and not prompt.loss_mask.any()


# -- batches ----------------------------------------------------------------------------
def test_collate_pads_and_concatenates_patches_row_major(tok):
    ep = image_episode(3, seed=5)
    long = episode_row(tok, IMAGE_TASK, ep)
    cap = caption_row(tok, np.zeros((16, 16), np.uint8), "a red circle", task="captions")
    chat = dialogue_row(tok, DIALOGUE)
    batch = collate([cap, long, chat], VOCAB)
    width = max(len(cap), len(long), len(chat))
    assert batch.shape == (3, width)
    assert batch.tokens.dtype == torch.int64 and batch.loss_mask.dtype == torch.bool
    assert batch.tasks == ["captions", "grid", "chat"]
    assert batch.patches.shape == (1 + 12, 3, 16, 16) and batch.patch_pos.shape == (13, 4)
    assert torch.equal(batch.patches[0], torch.from_numpy(cap.patches[0]))
    assert torch.equal(batch.patches[1:], torch.from_numpy(long.patches))
    assert int((batch.kinds == Kind.IMAGE).sum()) == batch.patches.shape[0]
    pad = batch.kinds[0, len(cap) :]
    assert (pad == Kind.PAD).all() and (batch.tokens[0, len(cap) :] == VOCAB.pad).all()
    assert not batch.loss_mask[0, len(cap) :].any()
    fixed = collate([cap], VOCAB, context=64)
    assert fixed.shape == (1, 64)
    with pytest.raises(ValueError, match="longer than the context"):
        collate([long], VOCAB, context=10)


def test_packing_fills_rows_in_order_without_cross_example_targets(tok, text):
    image = np.zeros((16, 16, 3), np.uint8)
    caps = [caption_row(tok, image, "a red circle " * k) for k in range(1, 8)]
    chats = [dialogue_row(tok, DIALOGUE[: k + 2]) for k in range(3)]
    rows = caps + chats
    context = 128
    packed = pack(rows, context)
    assert sum(len(r) for r in packed) == sum(len(r) for r in rows)
    assert all(len(r) <= context for r in packed) and len(packed) < len(rows)
    joined = Row.concat(packed)
    assert np.array_equal(joined.tokens, Row.concat(rows).tokens)
    # each chat's first token is no target, even in the middle of a packed row
    starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
    assert not joined.loss_mask[starts].any()
    batch = collate(rows, VOCAB, context=context, pack_rows=True)
    assert batch.shape == (len(packed), context)
    assert batch.patches.shape[0] == len(caps)
    assert "captions+chat" in batch.tasks


# -- properties -------------------------------------------------------------------------
FIELD = st.one_of(
    st.tuples(st.just(ObsKind.IMAGE), st.sampled_from([(16, 16, 1), (16, 32, 3), (32, 16, 1)])),
    st.tuples(st.just(ObsKind.CONTINUOUS), st.sampled_from([(1,), (3,), (2, 2)])),
    st.tuples(st.just(ObsKind.DISCRETE), st.sampled_from([(1,), (4,)])),
    st.tuples(st.just(ObsKind.TEXT), st.just(())),
)
EDGE = st.sampled_from([-1.0, 0.0, 1.0, 1e6, -1e-9])
WORDS = st.sampled_from(["", "red", "a small red circle", "Gato 🎮", "left\nright"])


@st.composite
def task_and_episode(draw):
    fields = draw(st.dictionaries(st.sampled_from("abcdefg"), FIELD, max_size=4))
    discrete = draw(st.booleans())
    action = (
        ActionSpec(n=draw(st.integers(1, 18))) if discrete else ActionSpec(low=(-1.0,), high=(2.0,))
    )
    spec = TaskSpec(
        "prop", {k: ObsField(kind, shape) for k, (kind, shape) in fields.items()}, action
    )
    steps = draw(st.integers(0, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    obs = {}
    for k, (kind, shape) in fields.items():
        if kind is ObsKind.IMAGE:
            obs[k] = rng.integers(0, 256, (steps, *shape), dtype=np.uint8)
        elif kind is ObsKind.CONTINUOUS:
            x = rng.normal(size=(steps, *shape)) * 10
            if steps and draw(st.booleans()):
                x.reshape(steps, -1)[0, 0] = draw(EDGE)
            obs[k] = x.astype(np.float32)
        elif kind is ObsKind.DISCRETE:
            obs[k] = rng.integers(0, 1024, (steps, *shape))
        else:
            obs[k] = [draw(WORDS) for _ in range(steps)]
    if discrete:
        actions = rng.integers(0, action.n, steps)
    else:
        actions = rng.uniform(-1.0, 2.0, (steps, 1)).astype(np.float32)
        if steps and draw(st.booleans()):
            actions[0, 0] = draw(st.sampled_from([-1.0, 0.0, 2.0]))  # the bounds exactly, and 0
    return spec, Episode("prop", obs, actions, np.zeros(steps, np.float32))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(task_and_episode(), st.integers(20, 200))
def test_any_mix_of_modalities_gives_consistent_rows(tok, case, context):
    spec, ep = case
    row = episode_row(tok, spec, ep)
    lengths = timestep_lengths(tok, spec, ep)
    assert len(row) == lengths.sum()
    assert int((row.kinds == Kind.IMAGE).sum()) == len(row.patches) == len(row.patch_pos)
    assert int((row.kinds == Kind.SEPARATOR).sum()) == len(ep)
    assert int((row.kinds == Kind.ACTION).sum()) == len(ep) * spec.action.dims
    targets = np.isin(row.kinds, [Kind.TEXT, Kind.ACTION])
    targets[:1] = False
    assert (row.loss_mask == targets).all()
    assert (row.tokens[row.kinds == Kind.IMAGE] == VOCAB.patch).all()
    values = row.tokens[np.isin(row.kinds, [Kind.OBS_VALUE, Kind.ACTION])]
    assert ((values >= VOCAB.bin_offset) & (values < VOCAB.separator)).all()
    acts = row.tokens[row.kinds == Kind.ACTION].reshape(len(ep), spec.action.dims)
    for ids, a in zip(acts, ep.actions, strict=True):
        back = decode_action(tok, spec.action, ids)
        if spec.action.is_discrete:
            assert back == a
        else:
            assert np.all(np.abs(back - a) <= 3.0 / VOCAB.bins / 2 + 1e-6)
    if len(ep) and lengths.max() <= context:
        for start, stop in episode_windows(lengths, context):
            assert stop > start and lengths[start:stop].sum() <= context
        batch = collate([row.slice(0, min(len(row), context))], VOCAB, context=context)
        assert batch.shape == (1, context)
        assert int((batch.kinds == Kind.IMAGE).sum()) == batch.patches.shape[0]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(task_and_episode(), st.sampled_from([np.nan, np.inf, -np.inf]), st.integers(0, 2**16))
def test_a_non_finite_observation_anywhere_is_a_clear_error(tok, case, bad, seed):
    spec, ep = case
    keys = [k for k, f in spec.observation.items() if f.kind is ObsKind.CONTINUOUS]
    if not keys or len(ep) == 0:
        return
    rng = np.random.default_rng(seed)
    x = ep.observations[keys[int(rng.integers(len(keys)))]].reshape(-1)
    x[int(rng.integers(x.size))] = bad
    with pytest.raises(ValueError, match="not finite"):
        episode_row(tok, spec, ep)


def test_a_task_without_observations_gives_separator_then_action_per_step(tok):
    spec = TaskSpec("blind", {}, ActionSpec(n=4))
    ep = Episode("blind", {}, np.array([0, 3, 1]), np.zeros(3, np.float32))
    row = episode_row(tok, spec, ep)
    assert row.kinds.tolist() == [Kind.SEPARATOR, Kind.ACTION] * 3
    assert [decode_action(tok, spec.action, row.tokens[i : i + 1]) for i in (1, 3, 5)] == [0, 3, 1]
    empty = episode_row(tok, spec, Episode("blind", {}, np.zeros(0, np.int64), np.zeros(0)))
    assert len(empty) == 0
