import json
from pathlib import Path

import numpy as np
import pytest

from gato.cli import main
from gato.data import build
from gato.data.dialogues import read_chat_jsonl

FIX = Path(__file__).parent / "fixtures"
SMALL = build.SceneCounts(train=12, test=4, heldout=4)


def test_scenes_build_is_deterministic_and_rerun_skips(tmp_path):
    a = build.build_scenes(tmp_path / "a", SMALL, seed=5, image_size=48)
    b = build.build_scenes(tmp_path / "b", SMALL, seed=5, image_size=48)
    for split in ("train", "test", "heldout"):
        za, zb = (np.load(d / "scenes" / f"{split}.npz") for d in (tmp_path / "a", tmp_path / "b"))
        assert np.array_equal(za["images"], zb["images"])
        assert list(za["captions"]) == list(zb["captions"])
    assert a["stats"] == b["stats"] and a["stats"]["train"]["images"] == 12
    again = build.build_scenes(tmp_path / "a", SMALL, seed=5, image_size=48)
    assert again["built_at"] == a["built_at"]  # skipped: manifest untouched
    other = build.build_scenes(tmp_path / "a", SMALL, seed=6, image_size=48)
    assert other["params"]["seed"] == 6  # new parameters: rebuilt
    (tmp_path / "a" / "scenes" / "test.npz").unlink()
    rebuilt = build.build_scenes(tmp_path / "a", SMALL, seed=6, image_size=48)
    assert (tmp_path / "a" / "scenes" / "test.npz").is_file() and rebuilt["params"]["seed"] == 6


def test_unknown_or_missing_named_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus source"):
        build.build_corpus(tmp_path, names=["nope"])


def _fixture_data_dir(tmp_path):
    d = tmp_path / "data"
    build.build_corpus(d, text_files=[FIX / "corpus.txt"], names=[])
    build.build_dialogues(
        d, chat_files=[FIX / "chat.jsonl"], names=["scenes"], scene_dialogues=30, seed=0
    )
    build.build_scenes(d, SMALL, seed=0, image_size=48)
    return d


def test_tokenizer_trained_on_fixtures_encodes_every_fixture_dialogue_without_unk(tmp_path):
    from gato.tokenizers.chat import encode_dialogue

    d = _fixture_data_dir(tmp_path)
    m = build.build_tokenizer(d, vocab_size=400, sample_mb=1.0, seed=0)
    assert m["stats"]["vocab_size"] == 400
    assert set(m["stats"]["tokens"]) == {
        "corpus/user",
        "dialogues/scenes",
        "dialogues/user",
        "scenes/train",
    }  # held-out scene captions left out
    from gato.tokenizers.text import TextTokenizer

    tok = TextTokenizer.load(d / "tokenizer" / "text.model")
    for dialogue in read_chat_jsonl(FIX / "chat.jsonl") + read_chat_jsonl(
        d / "dialogues" / "scenes.jsonl"
    ):
        ids = encode_dialogue(dialogue, tok)
        assert tok.unk_id not in ids
        assert ids.count(tok.eos_id) == sum(m["role"] == "assistant" for m in dialogue)
    unseen = "日本語 🦎 Ωmega"  # characters in no fixture: byte fallback, never unk
    assert tok.unk_id not in tok.encode(unseen) and tok.decode(tok.encode(unseen)) == unseen
    assert (
        build.build_tokenizer(d, vocab_size=400, sample_mb=1.0, seed=0)["built_at"] == m["built_at"]
    )


def test_sample_lines_shares_the_budget_and_takes_small_sources_whole():
    per = {"big": ["x" * 99] * 1000, "small": ["y" * 9] * 10}
    s = build.sample_lines(per, budget_bytes=10_100, seed=0)
    assert s["small"] == per["small"]  # 100 bytes, under its share
    assert 100 * (len(s["big"]) - 1) < 10_000 <= 100 * len(s["big"])
    assert s == build.sample_lines(per, budget_bytes=10_100, seed=0)


def test_cli_data_scenes_and_dialogues_with_user_chat(tmp_path, capsys):
    d = str(tmp_path / "data")
    assert (
        main(
            [
                "data",
                "scenes",
                "--data-dir",
                d,
                "--train",
                "3",
                "--test",
                "2",
                "--heldout",
                "2",
                "--image-size",
                "48",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["heldout"]["images"] == 2
    assert (
        main(
            [
                "data",
                "dialogues",
                "--data-dir",
                d,
                "--sources",
                "scenes",
                "--scene-dialogues",
                "4",
                "--chat",
                str(FIX / "chat.jsonl"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["user"]["dialogues"] == 2 and out["stats"]["scenes"]["dialogues"] == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [}\n')
    assert (
        main(["data", "dialogues", "--data-dir", d, "--sources", "scenes", "--chat", str(bad)]) == 2
    )
    assert "bad.jsonl:1: not valid JSON" in capsys.readouterr().err


def test_missing_debian_sources_are_skipped_with_install_hints_or_named_errors(
    tmp_path, monkeypatch, capsys
):
    from gato.data import sources

    monkeypatch.setattr(sources.Source, "locate", lambda self, root="/": None)
    m = build.build_corpus(tmp_path, text_files=[FIX / "corpus.txt"])
    assert m["stats"]["missing"]["fortunes"] == "apt-get install fortunes fortunes-min"
    assert m["stats"]["missing"]["wordnet"] == "apt-get install wordnet-base"
    assert "fortunes" not in m["files"] and "user.txt" in m["files"]
    assert "`apt-get install dict-gcide`" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        build.build_dialogues(tmp_path, names=["wordnet"])
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        build.build_captions(tmp_path, fashion=True)


def test_user_captions_are_validated_and_merged_with_absolute_paths(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "c.jsonl").write_text(json.dumps({"image": "a.png", "caption": "dark"}) + "\n")
    m = build.build_captions(tmp_path / "data", [tmp_path / "c.jsonl"], fashion=False)
    assert m["stats"]["user"] == {"images": 1, "files": 1}
    line = json.loads((tmp_path / "data" / "captions" / "user.jsonl").read_text())
    assert line == {"image": str((tmp_path / "a.png").resolve()), "caption": "dark"}


def test_dialogue_and_corpus_builds_are_byte_identical_for_a_seed(tmp_path):
    for d in ("a", "b"):
        build.build_dialogues(
            tmp_path / d,
            chat_files=[FIX / "chat.jsonl"],
            names=["scenes"],
            scene_dialogues=25,
            seed=3,
        )
        build.build_corpus(tmp_path / d, text_files=[FIX / "corpus.txt"], names=[])
    for rel in ("dialogues/scenes.jsonl", "dialogues/user.jsonl", "corpus/user.txt"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
