import json
from pathlib import Path

import pytest

from gato.data import dialogues as D
from gato.data import scenes

FIX = Path(__file__).parent / "fixtures"


def test_fixture_chat_file_reads():
    ds = D.read_chat_jsonl(FIX / "chat.jsonl")
    assert len(ds) == 2
    assert [m["role"] for m in ds[1]] == ["system", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"messages": [{"role": "user", "content": "hi"}', "not valid JSON"),
        ('{"msgs": []}', "missing key 'messages'"),
        ('{"messages": []}', "non-empty list"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "role 'bot'"),
        ('{"messages": [{"role": "user"}]}', "'role' and 'content'"),
        ('{"messages": [{"role": "user", "content": "  "}]}', "empty or non-string"),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}',
            "alternate",
        ),
        ('{"messages": [{"role": "user", "content": "a"}]}', "no assistant"),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}',
            "system message may only come first",
        ),
    ],
)
def test_malformed_chat_line_is_rejected_with_its_line_number(tmp_path, line, message):
    good = json.dumps(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    )
    path = tmp_path / "chat.jsonl"
    path.write_text(good + "\n" + good + "\n" + line + "\n")
    with pytest.raises(ValueError, match=r"chat\.jsonl:3: .*" + message):
        D.read_chat_jsonl(path)


def test_write_then_read_round_trips_and_validates(tmp_path):
    ds = D.read_chat_jsonl(FIX / "chat.jsonl")
    assert D.write_chat_jsonl(tmp_path / "out.jsonl", ds) == 2
    assert D.read_chat_jsonl(tmp_path / "out.jsonl") == ds
    with pytest.raises(ValueError, match="dialogue 0"):
        D.write_chat_jsonl(tmp_path / "bad.jsonl", [[{"role": "assistant", "content": "x"}]])


def test_fortune_dialogues_are_multi_turn_user_assistant():
    ds = D.fortune_dialogues(FIX / "fortunes")
    assert len(ds) == 3
    assert [m["role"] for m in ds[1]] == ["user", "assistant"] * 2
    assert ds[1][3]["content"] == "A naughty strawberry."


def test_wordnet_dialogues_sample_is_seeded_and_bounded():
    a = D.wordnet_dialogues(FIX / "wordnet", limit=2, seed=0)
    assert a == D.wordnet_dialogues(FIX / "wordnet", limit=2, seed=0)
    assert len(a) == 2 and len(D.wordnet_dialogues(FIX / "wordnet", limit=10, seed=0)) == 3
    full = D.wordnet_dialogues(FIX / "wordnet", limit=10, seed=0)
    assert full[0][1]["content"] == (
        'As a noun, "bank" means: sloping land (especially the slope beside a body of water). '
        'For example: "they pulled the canoe up on the bank".'
    )
    assert '"bank"' in full[0][0]["content"]


def test_jargon_and_faq_dialogues():
    j = D.jargon_dialogues(FIX / "jargon.txt.gz")
    assert j[0][0]["content"] == 'What does "kludge" mean in hacker jargon?'
    from gato.data import sources

    faq = D.faq_dialogues(sources.python_faq(FIX / "python-docs"))
    assert faq[0][0]["content"] == "What is Python?"


def test_scene_dialogues_answers_match_the_described_scene():
    ds = D.scene_dialogues(50, seed=4)
    assert ds == D.scene_dialogues(50, seed=4)
    for d in ds:
        first = d[0]["content"]
        assert first.startswith("Here is a scene: ")
        cap, _, question = first.removeprefix("Here is a scene: ").partition(". ")
        scene = scenes.parse_caption(cap)
        assert not {(o.colour, o.shape) for o in scene.objects} & scenes.HELDOUT_PAIRS
        if question == "How many objects are there?":
            assert d[1]["content"] == ("One.", "Two.", "Three.")[len(scene.objects) - 1]
        D.check_dialogue(d)
