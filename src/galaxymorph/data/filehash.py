"""SHA-256 of large data files, remembered across runs so a 2.5 GB file is not hashed at every start.

Every command that uses a data file checks it by hash (a split manifest names its file's SHA-256,
``data fetch`` verifies the download). Hashing the real Galaxy10 file takes tens of seconds, so
the hash of a file of at least :data:`REMEMBER_FROM_BYTES` is written to ``sha256.json`` in the
user cache folder (``~/.cache/galaxymorph`` on Linux), keyed on the file's real path, size and
modification time. A file whose size or modification time changed is hashed again; smaller
files are hashed every time (that takes well under a second).

The record is a convenience, not a security boundary: whoever can change the data file while
keeping its size and time stamp could also edit the record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs

from ..errors import GalaxymorphError
from ..fileio import file_stamp, sha256_file, write_json

REMEMBER_FROM_BYTES = 64 << 20  # files this large or larger have their hash remembered
MAX_ENTRIES = 64  # remembered files; the oldest records go first


def user_cache_folder() -> Path:
    """galaxymorph's folder in the platform's user cache (``~/.cache/galaxymorph`` on Linux,
    ``$XDG_CACHE_HOME/galaxymorph`` when that is set): remembered hashes, re-chunked copies."""
    return Path(platformdirs.user_cache_dir("galaxymorph", appauthor=False))


def hash_record_path() -> Path:
    """Where remembered hashes are kept: ``sha256.json`` in the user cache folder."""
    return user_cache_folder() / "sha256.json"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes; remembered for large files while their size and mtime hold."""
    real, size, mtime_ns = file_stamp(path)
    if size < REMEMBER_FROM_BYTES:
        return sha256_file(real)
    stamp = {"size": size, "mtime_ns": mtime_ns}
    records = _read_records()
    known = records.get(real)
    if isinstance(known, dict) and all(known.get(k) == v for k, v in stamp.items()) \
            and isinstance(known.get("sha256"), str):
        return known["sha256"]
    digest = sha256_file(real)
    remember_sha256(real, digest, records)
    return digest


def remember_sha256(path: str | os.PathLike, digest: str, records: dict | None = None) -> None:
    """Record ``digest`` as the hash of ``path`` as it is now (a file just verified by hashing)."""
    real, size, mtime_ns = file_stamp(path)
    if size < REMEMBER_FROM_BYTES:
        return
    records = _read_records() if records is None else records
    records.pop(real, None)  # re-inserted last: the newest record
    records[real] = {"size": size, "mtime_ns": mtime_ns, "sha256": digest}
    _write_records(records)


def _read_records() -> dict:
    try:
        records = json.loads(hash_record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or damaged: start afresh
        return {}
    return records if isinstance(records, dict) else {}


def _write_records(records: dict) -> None:
    kept = {p: r for p, r in records.items() if os.path.exists(p)}
    kept = dict(list(kept.items())[-MAX_ENTRIES:])
    try:
        write_json(hash_record_path(), kept)
    except (OSError, GalaxymorphError):  # a read-only home: hash again next time
        pass
