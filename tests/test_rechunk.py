"""Selections of a file with many images per chunk come from a re-chunked local copy, built once."""

import os

import h5py
import numpy as np
import pytest

from galaxymorph.data import rechunk
from galaxymorph.data.galaxy10 import MASK_SHAPE, open_galaxy10
from galaxymorph.data.splits import pixel_hashes

N = 40  # h5py's automatic gzip chunks then span 10 images: more than MAX_IMAGES_PER_CHUNK
LAYOUTS = {
    "h5py's automatic gzip chunks": {"compression": "gzip"},
    "one image per chunk (lzf)": {"chunks": (1, 256, 256, 3), "compression": "lzf"},
    "contiguous": {},
}


def _images(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(N, 256, 256, 3), dtype=np.uint8)
    images[:, 16:] //= 64  # compressible, so gzip is quick
    return images


def _write(path, images, layout="h5py's automatic gzip chunks", masks=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, **LAYOUTS[layout])
        f.create_dataset("ans", data=(np.arange(len(images)) % 10).astype(np.uint8))
        if masks is not None:
            f.create_dataset("masks", data=masks, compression="gzip")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Copies go under tmp_path (never the real ~/.cache), for files of any size; count builds."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(rechunk.DISABLE_VARIABLE, raising=False)
    monkeypatch.setattr(rechunk, "RECHUNK_FROM_BYTES", 0)
    monkeypatch.setattr(rechunk, "FREE_SPACE_MARGIN_BYTES", 0)
    monkeypatch.setattr(rechunk, "BUILD_FROM_SHARE", 0.0)  # any selection builds (one test restores it)
    monkeypatch.setattr(rechunk, "_FAILED", set())
    builds = []
    real = rechunk.build_copy
    monkeypatch.setattr(rechunk, "build_copy", lambda *a: builds.append(a[1]) or real(*a))
    return builds


def _copies():
    folder = rechunk.copy_folder()
    return sorted(folder.glob("*.h5")) if folder.is_dir() else []


def test_selections_from_the_copy_equal_the_original(tmp_path, cache):
    images = _images()
    masks = (np.arange(N * 256 * 256) % 7).astype(np.uint8).reshape(N, *MASK_SHAPE)
    path = _write(tmp_path / "g10.h5", images, masks=masks)
    rng = np.random.default_rng(1)
    picks = [np.sort(rng.choice(N, 7, replace=False)), rng.choice(N, 12, replace=False),
             rng.integers(0, N, 20), np.array([N - 1]), np.array([], dtype=np.int64)]
    with open_galaxy10(path, rechunk=False) as original:
        expected = [original.images(idx) for idx in picks]
        expected_masks = original.masks(picks[1])
    assert not _copies()
    with open_galaxy10(path) as data:
        for idx, want in zip(picks, expected):
            got = data.images(idx)
            assert got.dtype == np.uint8 and np.array_equal(got, want)
        assert np.array_equal(data.masks(picks[1]), expected_masks)
        assert np.array_equal(data.labels, np.arange(N) % 10)  # labels: still the original's
    [copy] = _copies()
    assert len(cache) == 1
    with h5py.File(copy, "r") as f:
        assert f["images"].chunks == (1, 256, 256, 3) and f["masks"].chunks == (1, *MASK_SHAPE)
        assert np.array_equal(f["images"][()], images) and np.array_equal(f["masks"][()], masks)
        assert f.attrs["source"] == os.path.realpath(path)


def test_the_copy_is_built_once_and_reused(tmp_path, cache):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    idx = np.array([3, 17, 31])
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images(idx), images[idx])
        assert np.array_equal(data.images(idx[::-1]), images[idx[::-1]])
    with open_galaxy10(path) as data:  # another command, later
        assert np.array_equal(data.images(idx), images[idx])
        hashes = pixel_hashes(data, np.arange(5, 30))  # iter_images reads the copy too
    assert len(cache) == 1
    with open_galaxy10(path, rechunk=False) as original:
        assert hashes == pixel_hashes(original, np.arange(5, 30))


def test_a_whole_file_read_builds_no_copy_but_uses_one_that_exists(tmp_path, cache):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images(), images)
        assert [i for i, _ in data.iter_images(np.arange(N))]  # predict's pass over every image
    assert not cache and not _copies()
    with open_galaxy10(path) as data:
        data.images([1, 2])
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images(), images)
        assert data._pixels("images", None).chunks == (1, 256, 256, 3)
    assert len(cache) == 1


def test_a_changed_source_is_copied_again(tmp_path, cache):
    path = _write(tmp_path / "g10.h5", _images(0))
    with open_galaxy10(path) as data:
        data.images([0, 5])
    assert len(cache) == 1

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: same size
    with open_galaxy10(path) as data:
        data.images([0, 5])
    assert len(cache) == 2

    new = _images(1)
    _write(path, new)  # new contents
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([0, 5]), new[[0, 5]])
    assert len(cache) == 3 and len(_copies()) == 1  # replaced, not added

    with open_galaxy10(path) as data:
        data.images([7])
    assert len(cache) == 3


def test_an_unwritable_cache_falls_back_with_one_warning(tmp_path, cache, monkeypatch, capsys):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # a file where the cache folder should be (fails even as root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([4, 2, 9]), images[[4, 2, 9]])
        assert np.array_equal(data.images([11]), images[[11]])
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([1]), images[[1]])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: cannot re-chunk") and "reading the original" in lines[0]
    assert cache == []  # the folder cannot be made, so no build starts (and none is tried again)


def test_too_little_disk_space_falls_back(tmp_path, cache, monkeypatch, capsys):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    monkeypatch.setattr(rechunk, "FREE_SPACE_MARGIN_BYTES", 1 << 60)
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([0, 39]), images[[0, 39]])
    assert "GiB free" in capsys.readouterr().err
    left = [p.name for p in rechunk.copy_folder().iterdir() if p.suffix != ".lock"]  # the lock file may stay
    assert not _copies() and not left  # no partial copy left


@pytest.mark.parametrize("layout", ["one image per chunk (lzf)", "contiguous"])
def test_files_with_few_images_per_chunk_are_never_copied(tmp_path, cache, layout):
    images = _images()
    path = _write(tmp_path / "g10.h5", images, layout)
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([5, 1]), images[[5, 1]])
    assert not cache and not _copies()


def test_small_files_and_the_off_switch_read_the_original(tmp_path, cache, monkeypatch):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    monkeypatch.setattr(rechunk, "RECHUNK_FROM_BYTES", path.stat().st_size + 1)
    with open_galaxy10(path) as data:
        data.images([5, 1])
    monkeypatch.setattr(rechunk, "RECHUNK_FROM_BYTES", 0)
    monkeypatch.setenv(rechunk.DISABLE_VARIABLE, "1")
    with open_galaxy10(path) as data:
        data.images([5, 1])
    assert not cache and not _copies()


def test_a_damaged_copy_is_rebuilt(tmp_path, cache):
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    with open_galaxy10(path) as data:
        data.images([1])
    [copy] = _copies()
    copy.write_bytes(b"not hdf5")
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([8, 3]), images[[8, 3]])
    assert len(cache) == 2


def test_building_says_so_once_on_stderr(tmp_path, cache, monkeypatch, capsys):
    monkeypatch.delenv("GALAXYMORPH_NO_PROGRESS", raising=False)
    path = _write(tmp_path / "g10.h5", _images())
    for _ in range(2):
        with open_galaxy10(path) as data:
            data.images([2, 3])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"re-chunking {os.path.realpath(path)} for fast selections into {rechunk.copy_folder()} (once)"]


def test_a_small_read_uses_the_original_and_a_split_sized_one_builds(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(rechunk, "BUILD_FROM_SHARE", 0.25)
    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    with open_galaxy10(path) as data:
        assert np.array_equal(data.images([7, 2, 30]), images[[7, 2, 30]])  # a preview: 3 of 40
    assert not cache and not _copies()
    with open_galaxy10(path) as data:
        split = np.arange(0, N, 3)  # 14 of 40
        assert np.array_equal(data.images(split), images[split])
    assert len(cache) == 1 and len(_copies()) == 1


def test_building_removes_killed_builds_and_copies_of_deleted_sources(tmp_path, cache):
    gone = _write(tmp_path / "gone.h5", _images(0))
    kept = _write(tmp_path / "kept.h5", _images(1))
    for path in (gone, kept):
        with open_galaxy10(path) as data:
            data.images([0, 5])
    gone_copy = rechunk.copy_path(os.path.realpath(gone))
    kept_copy = rechunk.copy_path(os.path.realpath(kept))
    assert set(_copies()) == {gone_copy, kept_copy}
    gone.unlink()
    new = _write(tmp_path / "new.h5", _images(2))
    new_copy = rechunk.copy_path(os.path.realpath(new))
    killed = new_copy.parent / f".{new_copy.name}.x1.h5"
    killed.write_bytes(b"half a copy")  # a build killed before its rename
    with open_galaxy10(new) as data:
        data.images([1, 2])
    assert set(_copies()) == {kept_copy, new_copy}
    assert not killed.exists()
    with open_galaxy10(kept) as data:  # a copy whose source exists is still used, not rebuilt
        data.images([0, 5])
    assert len(cache) == 3


def test_a_process_waiting_for_another_build_uses_its_copy(tmp_path, cache, monkeypatch):
    import fcntl
    import threading

    images = _images()
    path = _write(tmp_path / "g10.h5", images)
    dest = rechunk.copy_path(os.path.realpath(path))
    dest.parent.mkdir(parents=True)
    holder = open(dest.with_suffix(".lock"), "a")  # "another process" is building the copy
    fcntl.flock(holder, fcntl.LOCK_EX)
    waiting = threading.Event()
    monkeypatch.setattr(rechunk, "status", lambda message: waiting.set())
    result = {}

    def select():
        with open_galaxy10(path) as data:
            result["images"] = data.images([3, 9])

    reader = threading.Thread(target=select)
    reader.start()
    assert waiting.wait(10)  # it said it waits, and waits
    with h5py.File(path, "r") as h5:  # the other process finishes its copy, then lets go
        _ORIGINAL_BUILD(h5, dest, rechunk.source_stamp(path))
    fcntl.flock(holder, fcntl.LOCK_UN)
    holder.close()
    reader.join(10)
    assert np.array_equal(result["images"], images[[3, 9]])
    assert cache == []  # the waiting reader built nothing itself


_ORIGINAL_BUILD = rechunk.build_copy  # without the fixture's counting wrapper
