"""Hashes of large data files are remembered across runs, keyed on size and modification time."""

import hashlib
import os

import pytest

from galaxymorph.data import filehash


@pytest.fixture
def record(tmp_path, monkeypatch):
    """Remember every file's hash, in a record under tmp_path; count the real hashings."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(filehash, "REMEMBER_FROM_BYTES", 0)
    calls = []
    real = filehash.sha256_file
    monkeypatch.setattr(filehash, "sha256_file", lambda path: calls.append(path) or real(path))
    return calls


def test_a_hash_is_remembered_until_size_or_mtime_change(tmp_path, record):
    data = tmp_path / "data.h5"
    data.write_bytes(b"galaxies" * 1000)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert filehash.file_sha256(data) == digest and len(record) == 1
    assert filehash.file_sha256(data) == digest and len(record) == 1  # remembered
    assert filehash.hash_record_path().is_file()

    stat = data.stat()
    data.write_bytes(b"GALAXIES" * 1000)  # same size: caught by the modification time
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert filehash.file_sha256(data) == hashlib.sha256(data.read_bytes()).hexdigest()
    assert len(record) == 2

    mtime = data.stat().st_mtime_ns
    data.write_bytes(b"galaxies" * 999)  # other size, same time stamp: caught by the size
    os.utime(data, ns=(mtime, mtime))
    assert filehash.file_sha256(data) == hashlib.sha256(data.read_bytes()).hexdigest()
    assert len(record) == 3


def test_small_files_are_not_recorded_and_a_damaged_record_is_ignored(tmp_path, record, monkeypatch):
    small = tmp_path / "small.h5"
    small.write_bytes(b"x")
    monkeypatch.setattr(filehash, "REMEMBER_FROM_BYTES", 10)
    filehash.file_sha256(small)
    assert not filehash.hash_record_path().exists()

    monkeypatch.setattr(filehash, "REMEMBER_FROM_BYTES", 0)
    filehash.hash_record_path().parent.mkdir(parents=True)
    filehash.hash_record_path().write_text("{not json")
    assert filehash.file_sha256(small) == hashlib.sha256(b"x").hexdigest()
    assert filehash.file_sha256(small) == hashlib.sha256(b"x").hexdigest()
    assert len(record) == 2  # once while too small to record, once past the damaged record


def test_a_verified_download_is_remembered(tmp_path, record):
    from galaxymorph.data import download

    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(5000))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    path = download.fetch(dest=tmp_path / "dest", url=source.as_uri(), sha256=digest, progress=False)
    assert filehash.file_sha256(path) == digest
    assert record == []  # the download's own check is the only hashing (done by download)
