"""A re-chunked local copy of a Galaxy10 file, so that any selection loads at disk speed.

Why: h5py's automatic chunks for a gzip dataset (``create_dataset(..., compression="gzip")``,
the real Galaxy10 DECaLS file's layout) span hundreds of images each (555 at Galaxy10's size).
Every such chunk holds an image of any split, so a sparse selection -- the 2-vs-5 train split,
18% of the file, or a random tenth -- costs a decompression of the whole file, however well it
is read (:mod:`galaxymorph.data.rows`): 10-17% of sequential images per second.

What: the first time a selection of such a file is read (one of at least 5% of its images,
a split, not a preview), galaxymorph writes once, in one
sequential pass, a copy of its ``images`` (and ``masks``, when it has them) with one image per
chunk, lzf-compressed, as galaxymorph writes its own files. From then on selections of pixels
are read from the copy; labels and other columns still come from the original file.

- Which files: those whose ``images`` chunks span more than :data:`MAX_IMAGES_PER_CHUNK`
  images and that hold at least :data:`RECHUNK_FROM_BYTES` bytes (smaller files decompress
  whole in about a second). Contiguous files and files with one image per chunk never are.
- Where: ``rechunked/`` in the user cache folder (``~/.cache/galaxymorph/rechunked`` on Linux),
  one copy per source file (named from its real path), stamped with the source's real path,
  size and modification time. A source whose size or time changed is copied again.
- Safety: the copy is written atomically (:func:`~galaxymorph.fileio.atomic_path`) and checked
  cheaply (stamp, shapes, dtypes, chunks) before each use. When the cache folder cannot be
  written or its disk has too little room (the source's uncompressed pixels plus
  :data:`FREE_SPACE_MARGIN_BYTES`), one warning line is printed and the original is read: a
  command never fails for want of a copy.
- Several processes: one builds a copy while the others wait for it (a file lock beside the
  copy), so a multi-GPU run writes one copy, not one per rank.
- Clean-up: building a copy first deletes the temporary files of builds that were killed and
  the copies of source files that no longer exist.
- Off switch: ``GALAXYMORPH_NO_RECHUNK=1``, or ``open_galaxy10(path, rechunk=False)``.

Building the copy reads the source in slabs of whole chunk rows (the fastest way to read it)
into one reused buffer, so peak memory is one chunk row (about 100 MiB at Galaxy10's size),
never the file. The copy may be deleted at any time; it is rebuilt when next needed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..errors import GalaxymorphError, one_line
from ..fileio import atomic_path, file_stamp, free_space
from ..progress import progress_bar, status
from .filehash import user_cache_folder

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None

MAX_IMAGES_PER_CHUNK = 8  # files whose chunks span more images than this are worth a copy
BUILD_FROM_SHARE = 0.05  # only a selection of at least this share of the file builds one
RECHUNK_FROM_BYTES = 128 << 20  # and only files this large (file size); tests lower it
FREE_SPACE_MARGIN_BYTES = 512 << 20  # room left on the cache's disk beyond the copy's worst case
DISABLE_VARIABLE = "GALAXYMORPH_NO_RECHUNK"  # "1": never copy, always read the original
COPIED = ("images", "masks")  # the pixel datasets a copy holds (when the source has them)
COPY_FORMAT = 1  # bump when the copy's layout changes: older copies are then rebuilt

_FAILED: set[tuple[str, int, int]] = set()  # sources (by stamp) this process could not copy: warned once


def copy_folder() -> Path:
    """Where re-chunked copies are kept: ``rechunked/`` in the user cache folder."""
    return user_cache_folder() / "rechunked"


def worth_copying(path: str | os.PathLike, h5: h5py.File) -> bool:
    """Whether selections of ``h5``'s images (opened from ``path``) should come from a copy:
    chunks spanning more than :data:`MAX_IMAGES_PER_CHUNK` images, a file of at least
    :data:`RECHUNK_FROM_BYTES`, and copies not turned off by ``GALAXYMORPH_NO_RECHUNK=1``."""
    if os.environ.get(DISABLE_VARIABLE) == "1":
        return False
    chunks = h5["images"].chunks
    if chunks is None or chunks[0] <= MAX_IMAGES_PER_CHUNK:
        return False
    return os.stat(path).st_size >= RECHUNK_FROM_BYTES


def is_large_selection(indices, n: int) -> bool:
    """Whether reading ``indices`` of the ``n`` images should build a copy: a part of the file
    (a whole-file read gains nothing from a copy) of at least :data:`BUILD_FROM_SHARE` of it.
    Smaller reads -- a preview grid, predict's scale sample -- touch few chunk rows and are read
    from the original: building costs about 1.4 passes over the file (70 s at Galaxy10's size),
    which only a split-sized read repays."""
    if indices is None:
        return False
    unique = np.unique(np.asarray(indices)).size
    return unique < n and unique >= BUILD_FROM_SHARE * n


def open_copy(path: str | os.PathLike, h5: h5py.File, build: bool) -> h5py.File | None:
    """The re-chunked copy of ``path`` (whose open file is ``h5``), opened for reading.

    An up-to-date copy is used as it is; otherwise one is built when ``build`` is true. Returns
    None when there is none (``build`` false) or it cannot be made (one warning line on stderr,
    once per source and process): the caller then reads the original.
    """
    stamp = source_stamp(path)
    dest = copy_path(stamp[0])
    copy = _open_checked(dest, stamp, h5)
    if copy is not None or not build or stamp in _FAILED:
        return copy
    try:
        with _build_lock(dest):
            copy = _open_checked(dest, stamp, h5)  # built by another process while this one waited
            if copy is not None:
                return copy
            remove_leftovers(dest)
            build_copy(h5, dest, stamp)
    except (OSError, GalaxymorphError) as exc:  # unwritable folder, disk full, ...
        _FAILED.add(stamp)
        reason = one_line(exc, None)
        print(f"warning: cannot re-chunk {path} for fast selections into {dest.parent} ({reason}); "
              "reading the original file", file=sys.stderr, flush=True)
        return None
    return _open_checked(dest, stamp, h5)


@contextmanager
def _build_lock(dest: Path) -> Iterator[None]:
    """Hold ``dest``'s build lock: one process builds a copy while the others wait, then use it.

    Several processes often ask for the same copy at once (each rank of a multi-GPU run loads
    its split); without the lock each would write its own 3.5 GB copy. An advisory ``flock``
    on ``<copy>.lock``, released when the process ends however it ends; where ``fcntl`` does
    not exist (Windows), no lock.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            status(f"waiting for another process that is re-chunking into {dest.name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(dest: Path) -> None:
    """Before building ``dest`` (its lock held): delete what no one will use again -- the
    half-written temporary files of builds that were killed (``atomic_path`` removes them on
    any error, not on SIGKILL or power loss), and copies whose source file no longer exists."""
    for tmp in dest.parent.glob(f".{dest.name}.*"):
        tmp.unlink(missing_ok=True)
    for copy in dest.parent.glob("*.h5"):
        if copy.name.startswith(".") or copy == dest:
            continue
        try:
            with h5py.File(copy, "r") as f:
                source = f.attrs.get("source")
        except OSError:
            continue  # being written, or not ours: leave it
        if isinstance(source, str) and not os.path.exists(source):
            copy.unlink(missing_ok=True)
            copy.with_suffix(".lock").unlink(missing_ok=True)


def source_stamp(path: str | os.PathLike) -> tuple[str, int, int]:
    """(real path, size, modification time in ns): what a copy must match to stand for ``path``."""
    return file_stamp(path)


def copy_path(real_path: str) -> Path:
    """The copy's file for a source: its name, then a short hash of its real path (two sources
    of the same name do not share a copy; a changed source replaces its own copy)."""
    digest = hashlib.sha256(real_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return copy_folder() / f"{Path(real_path).stem}-{digest}.h5"


def build_copy(h5: h5py.File, dest: Path, stamp: tuple[str, int, int]) -> Path:
    """Write ``dest``: ``h5``'s pixel datasets with one image per chunk (lzf), stamped with the
    source's ``stamp``. One sequential pass in slabs of whole chunk rows; atomic. Raises
    OSError when the folder cannot be written or lacks room for the uncompressed pixels."""
    names = [name for name in COPIED if name in h5]
    raw_bytes = sum(h5[name].size * h5[name].dtype.itemsize for name in names)
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = free_space(dest.parent)
    if free < raw_bytes + FREE_SPACE_MARGIN_BYTES:
        raise OSError(f"{free / 2**30:.1f} GiB free, the copy needs up to "
                      f"{(raw_bytes + FREE_SPACE_MARGIN_BYTES) / 2**30:.1f} GiB")
    status(f"re-chunking {stamp[0]} for fast selections into {dest.parent} (once)")
    with atomic_path(dest) as tmp, h5py.File(tmp, "w") as out, \
            progress_bar(total=len(h5["images"]) * len(names), desc="re-chunk", unit="img",
                         log_line=False) as bar:
        for name in names:
            _copy_dataset(h5[name], out, name, bar.update)
        out.attrs.update({"source": stamp[0], "source_size": stamp[1], "source_mtime_ns": stamp[2],
                          "format": COPY_FORMAT})
    return dest


def _copy_dataset(source: h5py.Dataset, out: h5py.File, name: str, progress) -> None:
    """``source`` into ``out[name]`` with one row per chunk, slab by slab of whole chunk rows."""
    rows = source.chunks[0] if source.chunks else 1
    step = max(1, 64 // rows) * rows  # whole chunk rows, at least 64 images
    target = out.create_dataset(name, shape=source.shape, dtype=source.dtype,
                                chunks=(1, *source.shape[1:]), compression="lzf")
    buffer = np.empty((min(step, len(source)), *source.shape[1:]), dtype=source.dtype)
    for start in range(0, len(source), step):
        stop = min(len(source), start + step)
        source.read_direct(buffer, np.s_[start:stop], np.s_[0:stop - start])
        target[start:stop] = buffer[:stop - start]
        progress(stop - start)


def _open_checked(dest: Path, stamp: tuple[str, int, int], h5: h5py.File) -> h5py.File | None:
    """``dest`` opened, if it is a finished copy of the source as it is now (stamp, format, and
    each pixel dataset's shape, dtype and one-image chunks); else None."""
    if not dest.is_file():
        return None
    try:
        copy = h5py.File(dest, "r")
    except OSError:
        return None
    try:
        attrs = copy.attrs
        fresh = (attrs.get("source") == stamp[0] and attrs.get("source_size") == stamp[1]
                 and attrs.get("source_mtime_ns") == stamp[2] and attrs.get("format") == COPY_FORMAT)
        if fresh and all(_same_pixels(h5[name], copy.get(name)) for name in COPIED if name in h5):
            return copy
    except (OSError, KeyError):
        pass
    copy.close()
    return None


def _same_pixels(source: h5py.Dataset, copied) -> bool:
    return (isinstance(copied, h5py.Dataset) and copied.shape == source.shape
            and copied.dtype == source.dtype and copied.chunks == (1, *source.shape[1:]))
