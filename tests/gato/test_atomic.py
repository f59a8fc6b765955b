from gato.atomic import fsync_replace, write_atomic
from gato.data.jsonl import iter_jsonl, write_jsonl


def test_fsync_replace_swaps_the_whole_file_in(tmp_path):
    path, tmp = tmp_path / "a.txt", tmp_path / ".a.txt.tmp"
    path.write_text("old")
    tmp.write_text("new")
    fsync_replace(tmp, path)
    assert path.read_text() == "new" and not tmp.exists()


def test_a_failed_jsonl_write_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"a": 1}, {"a": 2}])

    def rows():
        yield {"a": 3}
        raise RuntimeError("killed half-way")

    try:
        write_jsonl(path, rows())
    except RuntimeError:
        pass
    assert [obj for _, obj in iter_jsonl(path)] == [{"a": 1}, {"a": 2}]


def test_write_atomic_creates_folders_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "new" / "b.bin"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]
