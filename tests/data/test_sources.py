from pathlib import Path

import pytest

from gato.data import corpus, sources

FIX = Path(__file__).parent / "fixtures"


def test_missing_source_says_which_apt_package_to_install(tmp_path):
    assert sources.FORTUNES.locate(root=tmp_path) is None
    with pytest.raises(FileNotFoundError, match=r"apt-get install fortunes fortunes-min"):
        sources.FORTUNES.require(root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist"):
        sources.FASHION_MNIST.require(root=tmp_path)


def test_source_glob_finds_the_installed_version(tmp_path):
    for v in ("3.9", "3.11"):
        (tmp_path / f"usr/share/doc/python{v}/html/_sources").mkdir(parents=True)
    assert sources.PYTHON_DOCS.require(root=tmp_path).parts[-3] == "python3.9"  # sorted, last


def test_fortune_files_skip_indexes_and_u8_copies():
    assert [p.name for p in sources.fortune_files(FIX / "fortunes")] == ["riddles"]


def test_fortune_exchanges_parse_multi_turn_and_drop_attribution():
    entries = sources.fortune_entries(FIX / "fortunes" / "riddles")
    assert len(entries) == 4
    pairs = [sources.fortune_exchange(e) for e in entries]
    assert pairs[0] == [
        (
            "How many surrealists does it take to change a light bulb?",
            "Two, one to hold the giraffe, and the other to fill the bathtub "
            "with brightly colored machine tools.",
        )
    ]
    assert [q for q, _ in pairs[1]] == [
        "What is green and goes to summer camp?",
        "And what is red and sits in the corner?",
    ]
    assert pairs[2] == []  # a quotation, not an exchange
    assert pairs[3] == [
        ("Why did the café owner learn to juggle?", "To serve crème brûlée faster.")
    ]


def test_fortune_exchange_without_words_in_the_answer_is_dropped():
    assert sources.fortune_exchange("Q: Why?\nA: ...") == []
    assert sources.fortune_exchange("Q: Why?\nA: Because.\nQ: And?\nA: ...") == [
        ("Why?", "Because.")
    ]


def test_wordnet_gives_the_most_frequent_sense_read_at_its_offset():
    senses = list(sources.wordnet_senses(FIX / "wordnet"))
    assert [(s.lemma, s.pos) for s in senses] == [
        ("bank", "noun"),
        ("kludge", "noun"),
        ("kluge", "noun"),
    ]
    assert senses[0].definition == "sloping land (especially the slope beside a body of water)"
    assert senses[0].examples == ("they pulled the canoe up on the bank",)
    glosses = list(sources.wordnet_glosses(FIX / "wordnet"))
    assert len(glosses) == 3 and glosses[2].startswith("kludge, kluge: a badly assembled")


def test_jargon_entries_skip_etymology_and_cross_references():
    entries = dict(sources.jargon_entries(FIX / "jargon.txt.gz"))
    assert set(entries) == {"kludge", "kluge"}  # "klone" is only a cross-reference
    assert entries["kludge"].startswith(
        "n. Incorrect (though regrettably common) spelling of kluge"
    )
    assert (
        entries["kluge"]
        == "n. A Rube Goldberg (or Heath Robinson) device, whether in hardware or software."
    )


def test_debian_faq_questions_skip_toc_and_non_questions():
    qa = list(sources.debian_faq_sections(FIX / "debian-faq.en.txt.gz"))
    assert [q for q, _ in qa] == [
        "What is this FAQ?",
        "What is Debian GNU/Linux and how is it different from other distributions?",
        "What is the latest version of Debian?",
    ]
    assert qa[1][1].startswith("Debian GNU/Linux is a particular distribution")
    assert "\xa0" not in qa[0][1] and "2. Getting" not in qa[1][1]


def test_python_faq_questions_and_rst_markup_removed():
    qa = list(sources.python_faq(FIX / "python-docs"))
    assert [q for q, _ in qa] == ["What is Python?", "Why is it called Python?"]
    assert qa[0][1] == (
        "Python is an interpreted, interactive, object-oriented programming language. "
        "See the tutorial and help()."
    )


def test_gcide_paragraphs_remove_source_tags_and_links():
    paras = list(sources.gcide_paragraphs(FIX / "gcide.dict.dz"))
    assert paras == [
        "digital computer n. 1. (Computers) a computer that represents information by "
        "numerical digits; as an array of bits.",
        "Kludge n. A makeshift device.",
    ]


def test_corpus_lines_and_stats(tmp_path):
    stats = corpus.write_lines(tmp_path / "f.txt", corpus.fortune_lines(FIX / "fortunes"))
    lines = (tmp_path / "f.txt").read_text(encoding="utf-8").splitlines()
    assert stats["lines"] == len(lines) == 4
    assert stats["words"] == sum(len(ln.split()) for ln in lines)
    assert lines[2] == "The only way to have a friend is to be one. -- Ralph Waldo Emerson"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        list(corpus.text_file_lines([tmp_path / "missing.txt"]))
