import pytest

from gato.data.jsonl import iter_jsonl, write_jsonl


def test_round_trip_and_blank_lines_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"b": "é"}]) == 2
    path.write_text(path.read_text() + "\n\n")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (2, {"b": "é"})]


@pytest.mark.parametrize("bad", ['{"a": 1', "[1, 2]", "not json"])
def test_malformed_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "b.jsonl"
    path.write_text('{"ok": true}\n\n' + bad + "\n")
    with pytest.raises(ValueError, match=r"b\.jsonl:3: "):
        list(iter_jsonl(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))


def test_a_non_utf8_line_is_named_with_its_number_and_byte(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"ok": 1}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 14\)"):
        list(iter_jsonl(path))


def test_a_byte_order_mark_is_not_an_error(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1})]
