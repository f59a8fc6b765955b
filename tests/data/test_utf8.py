import pytest

from gato.data.corpus import text_file_lines
from gato.data.utf8 import decode_utf8, read_utf8


def test_utf8_text_decodes_and_a_bom_is_dropped():
    assert decode_utf8("héllo\n🐈".encode(), "x") == "héllo\n🐈"
    assert decode_utf8(b"\xef\xbb\xbfhi", "x") == "hi"


@pytest.mark.parametrize(
    "raw, line, column, byte",
    [
        (b"\xff", 1, 1, "ff"),
        (b"ok\nthe caf\xe9\n", 2, 8, "e9"),
        (b"a\nb\n\xc3(", 3, 1, "c3"),  # a truncated two-byte sequence
    ],
)
def test_the_first_bad_byte_is_reported_with_line_and_column(raw, line, column, byte):
    with pytest.raises(
        ValueError, match=rf"^f\.txt:{line}: not UTF-8 text \(byte 0x{byte} at column {column}\)"
    ):
        decode_utf8(raw, "f.txt")


def test_users_corpus_files_must_be_utf8(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "latin1.txt"
    good.write_text("one paragraph\n\nanother one\n", encoding="utf-8")
    bad.write_bytes(b"fine\n\ncaf\xe9\n")
    assert list(text_file_lines([good])) == ["one paragraph", "another one"]
    with pytest.raises(ValueError, match=r"latin1\.txt:3: not UTF-8"):
        list(text_file_lines([good, bad]))
    with pytest.raises(FileNotFoundError, match="text file not found"):
        read_utf8(tmp_path / "nope.txt")
