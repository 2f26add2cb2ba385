"""fileio.read_json: how a run folder's optional JSON files are read."""

from galaxymorph.fileio import read_json, write_json


def test_read_json_gives_the_value_or_none_for_absent_or_damaged_files(tmp_path):
    assert read_json(write_json(tmp_path / "ok.json", {"a": [1, 2]})) == {"a": [1, 2]}
    assert read_json(tmp_path / "absent.json") is None
    assert read_json(tmp_path) is None  # a folder is not a file
    (tmp_path / "cut.json").write_text('{"a": ')
    assert read_json(tmp_path / "cut.json") is None
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    assert read_json(tmp_path / "binary.json") is None


# -- outputs that cannot be written: one line, before any work ------------------------------------
class ReadOnlyBelow:
    """A stand-in for the tempfile module under which every folder below ``root`` is read-only
    (or, with ``code=ENOSPC``, on a full disk): chmod does not stop root, who runs the tests."""

    def __init__(self, root, code=None):
        import errno
        import tempfile

        self.root, self.code, self.real = str(root), code or errno.EROFS, tempfile

    def mkstemp(self, *args, dir=None, **kwargs):
        import os

        if dir is not None and os.path.abspath(dir).startswith(self.root):
            raise OSError(self.code, os.strerror(self.code), str(dir))
        return self.real.mkstemp(*args, dir=dir, **kwargs)


def test_check_writable_folder_makes_nothing_and_refuses_read_only_full_and_file_parents(tmp_path, monkeypatch):
    import errno
    from collections import namedtuple

    import pytest

    from galaxymorph import fileio
    from galaxymorph.errors import GalaxymorphError, WriteError

    assert fileio.check_writable_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []  # no folder made, no probe file left
    (tmp_path / "file").write_text("x")
    with pytest.raises(GalaxymorphError, match="is a file, not a folder"):
        fileio.check_writable_folder(tmp_path / "file" / "sub")

    monkeypatch.setattr(fileio, "tempfile", ReadOnlyBelow(tmp_path))
    with pytest.raises(WriteError, match=f"cannot write into {tmp_path / 'out'}: Read-only file system$"):
        fileio.check_writable_folder(tmp_path / "out")
    with pytest.raises(WriteError, match="Read-only"):
        fileio.check_output_file(tmp_path / "out.csv")
    monkeypatch.setattr(fileio, "tempfile", ReadOnlyBelow(tmp_path, errno.ENOSPC))
    with pytest.raises(WriteError, match=f"disk full: no space left in {tmp_path}") as err:
        fileio.check_output_file(tmp_path / "out.csv")
    assert fileio.is_disk_full(err.value) and "\n" not in str(err.value)

    monkeypatch.undo()  # room for the probe, but less than a megabyte free
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(WriteError, match="disk full"):
        fileio.check_writable_folder(tmp_path)


def test_a_failed_write_is_one_line_naming_the_file_and_leaves_nothing(tmp_path):
    import errno
    import os

    import pytest

    from galaxymorph.errors import WriteError
    from galaxymorph.fileio import atomic_path, is_disk_full

    target = tmp_path / "sub" / "metrics.json"
    for code, says in ((errno.EROFS, f"cannot write {target}: Read-only file system"),
                       (errno.ENOSPC, f"disk full: no space left in {target.parent}")):
        with pytest.raises(WriteError) as err, atomic_path(target):
            raise OSError(code, os.strerror(code))
        assert str(err.value).startswith(says) and "\n" not in str(err.value)
        assert err.value.errno == code and is_disk_full(err.value) == (code == errno.ENOSPC)
        assert list(target.parent.iterdir()) == []
    with pytest.raises(ValueError), atomic_path(target):  # other errors keep their kind
        raise ValueError("a bug")


def test_a_read_only_folder_is_refused_for_real(tmp_path):
    import os

    import pytest

    from galaxymorph.errors import WriteError
    from galaxymorph.fileio import check_output_file

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the tests above stand in for them")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="Permission denied"):
            check_output_file(tmp_path / "out.csv")
    finally:
        tmp_path.chmod(0o755)


def test_one_file_stamp_for_remembered_hashes_and_copies(tmp_path):
    import os

    from galaxymorph.data.rechunk import source_stamp
    from galaxymorph.fileio import file_stamp

    target = tmp_path / "data.h5"
    target.write_bytes(b"x" * 10)
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    stamp = file_stamp(link)
    assert stamp == (os.path.realpath(target), 10, target.stat().st_mtime_ns) == source_stamp(link)
    target.write_bytes(b"y" * 11)
    assert file_stamp(link) != stamp


def test_one_line_error_text():
    from galaxymorph.errors import one_line

    exc = OSError("Unable to open file\n  (truncated file:   eof = 96)")
    assert one_line(exc) == "Unable to open file (truncated file: eof = 96)"
    assert one_line(ValueError("x" * 500)) == "x" * 200 and len(one_line(ValueError("x" * 500), None)) == 500
    assert one_line(KeyError()) == "KeyError"  # no message: the type's name


def test_free_space_of_a_path_not_made_yet_is_its_nearest_folders(tmp_path, monkeypatch):
    import shutil

    from galaxymorph.fileio import free_space

    seen = []
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: seen.append(p) or real(p))
    assert free_space(tmp_path / "not" / "yet" / "out.h5") > 0
    assert seen == [tmp_path]  # read on the folder that exists
