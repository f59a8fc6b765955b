from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gato.tokenizers.chat import encode_dialogue, encode_prompt
from gato.tokenizers.text import TextTokenizer

SENTENCES = [
    "The agent plays Pong and Breakout from pixels.",
    "A small red circle left of a large blue square.",
    "Gato is a generalist agent that captions images and chats.",
    "한국어 문장도 토큰으로 바뀝니다.",
    "Emoji too: 🐈 🎮 🚀",
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("text") / "corpus.txt"
    design = (Path(__file__).resolve().parents[2] / "DESIGN.md").read_text(encoding="utf-8")
    corpus.write_text(design + "\n".join(SENTENCES * 40), encoding="utf-8")
    return TextTokenizer.train([corpus], corpus.with_suffix(".model"), vocab_size=400)


@pytest.mark.parametrize(
    "text",
    [
        "Hello world, the agent plays Pong.",
        "안녕하세요, 고양이는 귀엽다",
        "🐈‍⬛ cat emoji and 🎮",
        "  two  spaces\nand a newline\ttab",
        "Ünïcödé ﬁ ligature ½",
    ],
)
def test_round_trip_is_exact_with_byte_fallback(tok, text):
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


def test_vocab_size_is_respected(tok):
    assert tok.vocab_size == 400
    ids = tok.encode("anything at all: 漢字 🧪")
    assert all(0 <= i < 400 for i in ids)


def test_save_load_and_bytes_round_trip(tok, tmp_path):
    path = tmp_path / "t.model"
    path.write_bytes(tok.model_bytes)
    again = TextTokenizer.load(path)
    assert again.encode("Pong from pixels") == tok.encode("Pong from pixels")
    assert TextTokenizer.from_bytes(tok.model_bytes).eos_id == tok.eos_id == 2


def test_missing_and_corrupt_models_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="SentencePiece model not found"):
        TextTokenizer.load(tmp_path / "nope.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        TextTokenizer.load(bad)


def test_training_on_too_little_text_for_the_vocab_says_so(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("just a few words\n")
    with pytest.raises(ValueError, match="too small for vocab_size"):
        TextTokenizer.train([small], tmp_path / "s.model", vocab_size=5000)


def test_decode_rejects_ids_outside_the_text_range(tok):
    with pytest.raises(ValueError, match="outside"):
        tok.decode([1, 400])


def test_chat_prompt_is_a_prefix_of_the_training_dialogue(tok):
    dialogue = [
        {"role": "user", "content": "What is Pong?"},
        {"role": "assistant", "content": "A game."},
        {"role": "user", "content": "Who plays it?"},
        {"role": "assistant", "content": "Gato."},
    ]
    train_ids = encode_dialogue(dialogue, tok)
    assert train_ids.count(tok.eos_id) == 2 and train_ids[-1] == tok.eos_id
    prompt = encode_prompt(dialogue[:3], tok)
    assert train_ids[: len(prompt)] == prompt
    reply = train_ids[len(prompt) : -1]
    assert tok.decode(reply) == "Gato."


@pytest.mark.parametrize(
    "messages, match",
    [
        ([], "non-empty"),
        ([{"role": "robot", "content": "hi"}], "role"),
        ([{"role": "user", "content": 3}], "string"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "system"),
    ],
)
def test_malformed_dialogues_are_rejected(tok, messages, match):
    with pytest.raises(ValueError, match=match):
        encode_dialogue(messages, tok)


def test_text_that_is_not_valid_unicode_is_a_value_error(tok):
    undecodable = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")  # bad bytes in argv
    with pytest.raises(ValueError, match="not valid Unicode at character 3"):
        tok.encode(undecodable)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=40))
def test_any_unicode_text_round_trips_exactly_inside_the_text_range(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text
