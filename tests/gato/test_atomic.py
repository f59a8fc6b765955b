import os

from gato.atomic import UMASK, fsync_replace, give_default_mode, write_atomic
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


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_write_atomic_gives_the_file_the_umask_default_mode_not_mkstemps_0600(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    assert UMASK == umask  # read once at import; nothing in the tests changes it
    write_atomic(tmp_path / "x.json", b"{}")
    assert _mode(tmp_path / "x.json") == 0o666 & ~umask


def test_give_default_mode_opens_owner_only_files_and_folders(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    (tmp_path / "d").mkdir()
    for p in (tmp_path / "f", tmp_path / "d"):
        p.chmod(0o600 if p.is_file() else 0o700)
        give_default_mode(p)
    assert _mode(tmp_path / "f") == 0o666 & ~UMASK
    assert _mode(tmp_path / "d") == 0o777 & ~UMASK
