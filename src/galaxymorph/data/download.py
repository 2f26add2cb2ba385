"""Download of the real Galaxy10 DECaLS file: resumable, retried, and SHA-256 verified.

``fetch`` downloads into ``<dest>/<filename>.part``, resumes a cut transfer with an HTTP Range
request, retries a bounded number of times with exponential backoff, and only renames the
``.part`` file onto its final name after its SHA-256 matches the published one. A file at the
final name is therefore always complete and verified; a ``.part`` file is deliberately kept after
a network failure (it is what the next attempt resumes from) and deleted after a hash mismatch.
Only transient failures (timeouts, cut connections, 5xx answers) are retried; a refused
connection, an unknown host or a 404 end the download at once. A URL other than Galaxy10's is
checked only against the hash given with it, and reported as unverified without one.

Only the standard library (``urllib``) is used for HTTP, so nothing extra needs installing.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path

from .._version import __version__
from ..errors import DownloadError, GalaxymorphError
from ..fileio import free_space, sha256_file
from ..progress import progress_bar
from .filehash import file_sha256, remember_sha256, user_cache_folder

GALAXY10_URL = "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5"
GALAXY10_SHA256 = "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"
GALAXY10_FILENAME = "Galaxy10_DECals.h5"

CHUNK = 1 << 20  # bytes read per network call
MIN_RATE = 10 * 1024  # bytes per second: slower than this for ``timeout`` seconds is a stalled download


def default_data_dir() -> Path:
    """Where downloaded data lives: ``$GALAXYMORPH_DATA``, else the platform's user cache folder.

    Linux: ``$XDG_CACHE_HOME/galaxymorph`` (default ``~/.cache/galaxymorph``); macOS:
    ``~/Library/Caches/galaxymorph``; Windows: ``%LOCALAPPDATA%\\galaxymorph\\Cache``
    (``platformdirs.user_cache_dir``).
    """
    env = os.environ.get("GALAXYMORPH_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_folder()


def fetch(dest: str | os.PathLike | None = None, url: str | None = None, sha256: str | None = None,
          filename: str | None = None, retries: int = 5, timeout: float = 60, progress: bool = True,
          backoff: float = 2.0) -> Path:
    """Download ``url`` into ``dest`` and return the path of the file (verified when a hash is known).

    Parameters
    ----------
    dest : folder to put the file in (created if needed); default :func:`default_data_dir`.
    url : where to download from; default (or Galaxy10's own URL): the Galaxy10 DECaLS file on
        Zenodo, checked against its published SHA-256.
    sha256 : expected hex SHA-256 of the file. Without it, a URL other than Galaxy10's is not
        checked at all, and the messages say the file is unverified.
    filename : name of the file in ``dest``; default: the last part of the URL's path.
    retries : how many times a transient failure is tried again (each resumes where it stopped).
    timeout : seconds to wait for the server on each network call; a download that brings less
        than 10 KiB/s for this long is stalled, and tried again like a cut connection.
    progress : show a progress bar (bytes).
    backoff : seconds before the first retry; doubled after each failure (0 in tests).

    If the file is already in ``dest`` and its hash matches, nothing is downloaded. Raises
    :class:`DownloadError` when the server cannot be reached (saying where a copy made by hand
    should go) or when the downloaded bytes do not match the expected hash.
    """
    url = url or GALAXY10_URL
    if sha256 is None and url == GALAXY10_URL:
        sha256 = GALAXY10_SHA256
    expected = _validate_sha256(sha256)
    if not isinstance(retries, int) or retries < 0:
        raise GalaxymorphError(f"retries must be a non-negative integer, got {retries!r}")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise GalaxymorphError(f"cannot download {url!r}: expected an http:// or https:// URL")
    dest_dir = Path(dest).expanduser() if dest is not None else default_data_dir()
    filename = filename or _filename_from_url(url)
    final = dest_dir / filename
    part = final.with_name(final.name + ".part")

    if final.is_file() and _already_there(final, expected):
        return final
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {dest_dir}: {exc.strerror or exc}") from None
    _transfer_with_retries(url, part, final, retries, timeout, progress, backoff)
    _keep_download(url, part, final, expected)
    return final


def _already_there(final: Path, expected: str | None) -> bool:
    """Whether the existing ``final`` is to be kept: unverified when no hash is known, else
    when its SHA-256 matches (otherwise it is downloaded again)."""
    if expected is None:
        _say(f"{final} already exists; unverified (no SHA-256 given to check it against)")
        return True
    _say(f"checking SHA-256 of the existing {final} ...")
    if file_sha256(final) == expected:
        _say(f"{final} is already present and its SHA-256 matches")
        return True
    _say(f"{final} exists but its SHA-256 does not match; downloading it again")
    return False


def _transfer_with_retries(url: str, part: Path, final: Path, retries: int, timeout: float, progress: bool,
                           backoff: float) -> None:
    """Download ``url`` into ``part``, trying a transient failure again up to ``retries`` times
    (each resuming where it stopped) after a doubling wait; an unreachable server fails at once."""
    failures = 0
    while True:
        try:
            _transfer(url, part, timeout=timeout, progress=progress)
            break
        except _Unreachable as exc:
            raise DownloadError(
                f"could not download {url} ({exc}); if this machine is offline, download that URL "
                f"elsewhere and put the file at {final}"
            ) from None
        except _Retryable as exc:
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"could not download {url} after {failures} attempt(s) ({exc}); if this "
                    f"machine is offline, download that URL elsewhere and put the file at {final}"
                ) from None
            wait = backoff * 2 ** (failures - 1)
            _say(f"download interrupted ({exc}); retry {failures}/{retries} in {wait:.0f} s")
            time.sleep(wait)


def _keep_download(url: str, part: Path, final: Path, expected: str | None) -> None:
    """Check ``part`` against ``expected`` (deleting it on a mismatch) and move it to ``final``."""
    if expected is not None:
        _say(f"verifying SHA-256 of {part.name} ...")
        actual = sha256_file(part)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"SHA-256 mismatch for {url}: expected {expected}, got {actual}; "
                "the download was deleted, run the command again"
            )
    os.replace(part, final)  # atomic: the final name only ever holds a verified file
    if expected is not None:
        remember_sha256(final, expected)  # the next start need not hash 2.5 GB again
    _say(f"downloaded {final}" if expected is not None
         else f"downloaded {final}; unverified (no SHA-256 given to check it against)")


# -- internals ------------------------------------------------------------------------------
class _Retryable(Exception):
    """A transfer failure worth trying again (network trouble, 5xx, a cut connection)."""


class _Unreachable(Exception):
    """A failure that waiting will not fix: connection refused, unknown host, bad certificate."""


def _network_failure(exc: BaseException) -> Exception:
    """:class:`_Unreachable` for a failure that will not go away on its own, else :class:`_Retryable`."""
    reason = getattr(exc, "reason", None) or exc
    permanent = (
        isinstance(reason, (ConnectionRefusedError, FileNotFoundError, ssl.SSLCertVerificationError))
        or (isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN)
        or getattr(reason, "errno", None) in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
    )
    return (_Unreachable if permanent else _Retryable)(_reason(exc))


def _validate_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = str(sha256).strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise GalaxymorphError(f"--sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return value


def _filename_from_url(url: str) -> str:
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name if name not in ("", ".", "..") else GALAXY10_FILENAME


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Bring ``part`` up to the full file, resuming from its current size when it exists.

    Raises :class:`_Retryable` for failures worth another attempt and :class:`DownloadError`
    for those that will not go away (404, 403, no disk space).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"galaxymorph/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range not satisfiable: the .part is complete already, or longer than the file.
            total = _content_range_total(exc.headers.get("Content-Range"))
            if total is not None and total == offset:
                return
            part.unlink(missing_ok=True)
            raise _Retryable("the partial download did not fit the file; starting over") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retryable(f"server answered {exc.code} {exc.reason}") from None
        raise DownloadError(f"cannot download {url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        raise _network_failure(exc) from None

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:  # the server sent some other range: start from scratch
                part.unlink(missing_ok=True)
                raise _Retryable("the server resumed at the wrong place; starting over")
            mode = "ab"
        else:  # 200: the server ignored the Range header and sends the whole file
            offset, mode = 0, "wb"
        total = offset + length if length is not None else None
        if length is not None:
            _check_space(part.parent, length)
        received = 0
        stall = _StallWatch(timeout)
        bar = progress_bar(desc=part.name.removesuffix(".part"), total=total, unit="B",
                           unit_scale=True, unit_divisor=1024, initial=offset, disable=not progress)
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = response.read1(CHUNK)  # what has arrived: a trickle is seen
                    except (HTTPException, OSError) as exc:
                        raise _Retryable(_reason(exc)) from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    stall.add(len(chunk))
        finally:
            bar.close()
    if length is not None and received < length:
        raise _Retryable(f"connection closed after {offset + received} of {total} bytes")


class _StallWatch:
    """Raises :class:`_Retryable` when fewer than ``MIN_RATE * window`` bytes arrived in the last
    ``window`` seconds: a server that trickles a byte at a time never trips the socket's
    timeout, which only limits the wait for each single read."""

    def __init__(self, window: float):
        self.window = window
        self.start, self.bytes = time.monotonic(), 0

    def add(self, n: int) -> None:
        self.bytes += n
        elapsed = time.monotonic() - self.start
        if elapsed < self.window:
            return
        if self.bytes < MIN_RATE * self.window:
            raise _Retryable(f"the download stalled: {self.bytes} bytes in {elapsed:.0f} s")
        self.start, self.bytes = time.monotonic(), 0


def _check_space(folder: Path, needed: int) -> None:
    free = free_space(folder)
    if free < needed:
        raise DownloadError(
            f"not enough disk space in {folder}: need {needed / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB free (choose another folder with --dest)"
        )


def _content_range_start(value: str | None) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``, or None."""
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _content_range_total(value: str | None) -> int | None:
    """TOTAL of ``Content-Range: bytes */TOTAL`` (or ``START-END/TOTAL``), or None."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return text
