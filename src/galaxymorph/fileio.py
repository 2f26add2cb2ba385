"""Small file helpers shared by every stage: atomic writes and content hashes.

Every file galaxymorph writes goes through :func:`atomic_path`, so that an error or Ctrl-C
never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from . import interrupts


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file keeps the target's suffix (so libraries that dispatch on it, such as
    matplotlib's ``savefig``, still work). On any exception the temporary file is removed and
    ``path`` is left untouched.
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        interrupts.check()  # a Ctrl-C that Python swallowed still leaves no file
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def check_output_file(path: str | os.PathLike, overwrite: bool = True) -> Path:
    """``path`` as a Path, or a one-line error if it names an existing folder (not a file), or,
    unless ``overwrite``, a file that already exists. Commands call it before any work."""
    from .errors import GalaxymorphError

    path = Path(path)
    if path.is_dir():
        raise GalaxymorphError(f"{path} is a folder; give the path of a file to write")
    if not overwrite and path.exists():
        raise GalaxymorphError(f"{path} already exists; add --overwrite to replace it, or choose another --out")
    return path


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, or a one-line error naming ``what`` it should be (``"catalogue"``,
    ``"--weights file"``) when nothing is there or it is a folder rather than a file."""
    from .errors import DataError

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
    except OSError as exc:
        if not (in_place_when_full and is_disk_full(exc) and Path(path).is_file()):
            raise
    with open(path, "r+b") as fh:  # reuses the file's own blocks: needs no new space
        fh.write(text.encode("utf-8"))
        fh.truncate()
    return Path(path)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _json_default(obj):
    import numpy as np

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


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (the real Galaxy10 file is 2.5 GB).

    Remembered for the life of the process, keyed on path, size and modification time, so the
    stages of one ``galaxymorph run`` hash a large data file once, not once each.
    """
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
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
