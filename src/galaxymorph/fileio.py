"""Small file helpers shared by every stage: atomic writes, output checks and content hashes.

Every file galaxymorph writes goes through :func:`atomic_path`, so that an error or Ctrl-C
never leaves a half-written file where a finished one is expected, and a file that cannot be
written (read-only folder, no permission, full disk) is one line naming it
(:func:`write_error`). Commands check their output before any work with
:func:`check_output_file` (a file) or :func:`check_writable_folder` (a folder).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from . import interrupts
from .errors import DataError, GalaxymorphError, WriteError, one_line


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file keeps the target's suffix (so libraries that dispatch on it, such as
    matplotlib's ``savefig``, still work). On any exception the temporary file is removed and
    ``path`` is left untouched.
    """
    path = check_output_file(path, probe=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
        )
    except OSError as exc:
        raise write_error(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        interrupts.check()  # a Ctrl-C that Python swallowed still leaves no file
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, WriteError) and \
                (exc.errno in WRITE_ERRNOS or is_disk_full(exc)):
            raise write_error(path, exc) from exc
        raise


# errno values that mean "this place cannot be written", not a bug: told as one line
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
MIN_FREE_BYTES = 1 << 20  # a folder with less room than this counts as full


def write_error(path: str | os.PathLike, exc: OSError) -> "WriteError":
    """The one-line error for an OSError while writing ``path``; a full disk names the folder
    (the disk) that is full. Keeps ``exc``'s errno, so :func:`is_disk_full` still sees it."""
    path = Path(path)
    if is_disk_full(exc):
        message = (f"disk full: no space left in {path.parent.resolve()} (writing {path}); "
                   "free some space or choose another output")
    else:
        reason = exc.strerror or one_line(exc)
        message = f"cannot write {path}: {reason}"
    err = WriteError(message)
    err.errno, err.filename = exc.errno, str(path)
    return err


def check_writable_folder(folder: str | os.PathLike, min_free: int = MIN_FREE_BYTES) -> Path:
    """``folder`` as a Path, or a one-line error when files cannot be made in it: it (or the
    folder it would be made in) is read-only, not ours, a file, or on a disk with less than
    ``min_free`` bytes free. Tried by making and removing a small file, so it holds for root
    and read-only mounts too; creates no folder. Commands call it before any work."""
    folder = Path(folder)
    existing = folder
    while not existing.is_dir():
        if existing.exists():
            raise GalaxymorphError(f"cannot write into {folder}: {existing} is a file, not a folder")
        if existing == existing.parent:
            break
        existing = existing.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".galaxymorph-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
        free = free_space(existing)
    except OSError as exc:
        raise _folder_error(folder, existing, exc) from exc
    if free < min_free:
        raise _folder_error(folder, existing, OSError(errno.ENOSPC, f"{free} bytes free"))
    return folder


def free_space(path: str | os.PathLike) -> int:
    """Bytes free on the disk that holds ``path`` (while it does not exist yet, its nearest
    existing folder): the one free-space reading of every check before a large write."""
    existing = Path(os.path.abspath(path))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _folder_error(folder: Path, existing: Path, exc: OSError) -> "WriteError":
    if is_disk_full(exc):
        message = f"disk full: no space left in {existing.resolve()}; free some space or choose another output"
    else:
        message = f"cannot write into {folder}: {exc.strerror or one_line(exc)}"
    err = WriteError(message)
    err.errno, err.filename = exc.errno, str(folder)
    return err


def check_output_file(path: str | os.PathLike, overwrite: bool = True, probe: bool = True) -> Path:
    """``path`` as a Path, or a one-line error if it names an existing folder (not a file), or,
    unless ``overwrite``, a file that already exists, or (``probe``) a folder that cannot be
    written (:func:`check_writable_folder`). Commands call it before any work."""
    path = Path(path)
    if path.is_dir():
        raise GalaxymorphError(f"{path} is a folder; give the path of a file to write")
    if not overwrite and path.exists():
        raise GalaxymorphError(f"{path} already exists; add --overwrite to replace it, or choose another --out")
    if probe:
        check_writable_folder(path.parent)
    return path


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, or a one-line error naming ``what`` it should be (``"catalogue"``,
    ``"--weights file"``) when nothing is there or it is a folder rather than a file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike):
    """The JSON value in ``path``, or None when there is no such file or it cannot be read as JSON
    (how the optional files of a run folder are read: a damaged one counts as absent)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return None


def write_json(path: str | os.PathLike, obj, in_place_when_full: bool = False) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path.

    ``in_place_when_full``: when the disk is full (no room for the temporary file), overwrite
    the existing file's bytes instead. For small status files (run.json) whose last word must
    get out even then; a crash mid-write could leave it damaged, which is the lesser harm.
    """
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    try:
        return write_text(path, text)
    except OSError as exc:  # (a WriteError is one too)
        if not (in_place_when_full and is_disk_full(exc) and Path(path).is_file()):
            raise
    with open(path, "r+b") as fh:  # reuses the file's own blocks: needs no new space
        fh.write(text.encode("utf-8"))
        fh.truncate()
    return Path(path)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and (exc.errno in (errno.ENOSPC, errno.EDQUOT)
                                         or "No space left on device" in str(exc))  # (h5py: no errno)


def _json_default(obj):
    import numpy as np  # lazy: --help imports fileio and loads no numpy

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


_SHA256_MEMO: dict[tuple[str, int, int], str] = {}


def file_stamp(path: str | os.PathLike) -> tuple[str, int, int]:
    """(real path, size in bytes, modification time in ns): while these hold, the file is taken to
    be unchanged (the one rule of the remembered hashes and the re-chunked copies)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return real, stat.st_size, stat.st_mtime_ns


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (the real Galaxy10 file is 2.5 GB).

    Remembered for the life of the process, keyed on path, size and modification time, so the
    stages of one ``galaxymorph run`` hash a large data file once, not once each.
    """
    key = file_stamp(path)
    if key not in _SHA256_MEMO:
        _SHA256_MEMO[key] = _sha256_bytes(path, chunk_size)
    return _SHA256_MEMO[key]


def _sha256_bytes(path: str | os.PathLike, chunk_size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A CSV text cell that a spreadsheet shows as text instead of running it as a formula.

    A cell starting with ``= + - @`` (or a tab or carriage return) is prefixed with ``'``, as
    OWASP advises against CSV injection: a file named ``=HYPERLINK(...).png`` would otherwise
    become a live formula in Excel or LibreOffice. Only text cells (file names, class names)
    go through this; numbers are written as they are.
    """
    text = str(text)
    return "'" + text if text.startswith(SPREADSHEET_TRIGGERS) else text


def printable_name(path: str | os.PathLike) -> str:
    """A file's name as text that a UTF-8 file (a CSV) or a terminal accepts: the bytes of a
    name that is not UTF-8 (written on another system) shown as ``\\xNN`` escapes, so
    ``b"\\xff.png"`` reads ``\\xff.png``. Other names are unchanged."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
