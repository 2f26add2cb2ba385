"""galaxymorph.data.download: resumable, verified downloads against a local HTTP server."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from galaxymorph.cli import main
from galaxymorph.data import download
from galaxymorph.errors import DownloadError, GalaxymorphError

PAYLOAD = os.urandom(200_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAST = dict(retries=2, backoff=0.0, timeout=5, progress=False)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``PAYLOAD`` with Range support; can cut the first response short."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append(dict(self.headers))
        start = 0
        rng = self.headers.get("Range")
        if rng and server.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None and len(server.requests) == 1:
            self.wfile.write(body[: server.cut_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests, httpd.cut_after, httpd.honour_range = [], None, True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/files/Galaxy10_DECals.h5"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_downloads_and_verifies(server, tmp_path):
    path = download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert path == tmp_path / "Galaxy10_DECals.h5"
    assert path.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))
    # Second call: file present and valid, nothing downloaded again.
    assert download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST) == path
    assert len(server.requests) == 1


def test_hash_mismatch_leaves_nothing(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download.fetch(dest=tmp_path, url=server.url, sha256=wrong, **FAST)
    message = str(info.value)
    assert wrong in message and PAYLOAD_SHA in message
    assert list(tmp_path.iterdir()) == []


def test_cut_transfer_resumes_with_range(server, tmp_path):
    server.cut_after = 70_000
    path = download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert len(server.requests) == 2
    assert "Range" not in server.requests[0]
    assert server.requests[1]["Range"] == "bytes=70000-"
    assert download.sha256_file(path) == PAYLOAD_SHA


def test_partial_file_resumed_and_server_ignoring_range_restarts(server, tmp_path):
    (tmp_path / "Galaxy10_DECals.h5.part").write_bytes(PAYLOAD[:1000])
    download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert server.requests[0]["Range"] == "bytes=1000-"

    # A server that answers 200 to a Range request: the .part is rewritten from byte 0.
    other = tmp_path / "other"
    other.mkdir()
    (other / "Galaxy10_DECals.h5.part").write_bytes(b"x" * 5000)
    server.honour_range = False
    path = download.fetch(dest=other, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert path.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416(server, tmp_path):
    (tmp_path / "Galaxy10_DECals.h5.part").write_bytes(PAYLOAD)
    path = download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert path.read_bytes() == PAYLOAD


def test_refused_connection_fails_at_once_and_names_manual_path(tmp_path, monkeypatch):
    slept = []
    monkeypatch.setattr(download.time, "sleep", slept.append)
    url = f"http://127.0.0.1:{_free_port()}/Galaxy10_DECals.h5"
    with pytest.raises(DownloadError) as info:
        download.fetch(dest=tmp_path, url=url, sha256=PAYLOAD_SHA, retries=5, backoff=2.0, timeout=5,
                       progress=False)
    message = str(info.value)
    assert str(tmp_path / "Galaxy10_DECals.h5") in message
    assert url in message and "refused" in message.lower()
    assert slept == []  # no retry, no waiting


def test_transient_server_error_is_retried(server, tmp_path):
    def busy_once(handler):
        if not handler.server.requests:
            handler.server.requests.append(dict(handler.headers))
            handler.send_error(503)
            return
        original(handler)

    _Handler.do_GET, original = busy_once, _Handler.do_GET
    try:
        path = download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    finally:
        _Handler.do_GET = original
    assert path.read_bytes() == PAYLOAD and len(server.requests) == 2


def test_a_url_without_sha256_is_kept_and_called_unverified(server, tmp_path, capsys):
    """Not checked against Galaxy10's hash (which it cannot match): kept, and said to be unverified."""
    assert main(["data", "fetch", "--url", server.url, "--dest", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "Galaxy10_DECals.h5")
    assert "unverified" in captured.err
    assert (tmp_path / "Galaxy10_DECals.h5").read_bytes() == PAYLOAD
    assert main(["data", "fetch", "--url", server.url, "--dest", str(tmp_path)]) == 0
    assert "unverified" in capsys.readouterr().err and len(server.requests) == 1


def test_galaxy10s_own_url_is_checked_against_its_hash(monkeypatch, tmp_path):
    checked = []
    monkeypatch.setattr(download, "_transfer", lambda url, part, **kw: part.write_bytes(b"not galaxy10"))
    monkeypatch.setattr(download, "sha256_file", lambda path: checked.append(path) or "0" * 64)
    with pytest.raises(DownloadError, match=download.GALAXY10_SHA256):
        download.fetch(dest=tmp_path, **FAST)
    assert checked and list(tmp_path.iterdir()) == []


def test_not_found_is_not_retried(server, tmp_path):
    def not_found(handler):
        handler.server.requests.append(dict(handler.headers))
        handler.send_error(404)

    _Handler.do_GET, original = not_found, _Handler.do_GET
    try:
        with pytest.raises(DownloadError, match="404"):
            download.fetch(dest=tmp_path, url=server.url, sha256=PAYLOAD_SHA, **FAST)
    finally:
        _Handler.do_GET = original
    assert len(server.requests) == 1


def test_bad_sha256_argument(tmp_path):
    with pytest.raises(GalaxymorphError, match="64 hexadecimal"):
        download.fetch(dest=tmp_path, url="http://127.0.0.1:1/x", sha256="abc", **FAST)


def test_default_data_dir_env_override(monkeypatch, tmp_path, server):
    monkeypatch.setenv("GALAXYMORPH_DATA", str(tmp_path / "envdir"))
    assert download.default_data_dir() == tmp_path / "envdir"
    path = download.fetch(url=server.url, sha256=PAYLOAD_SHA, **FAST)
    assert path == tmp_path / "envdir" / "Galaxy10_DECals.h5"

    monkeypatch.delenv("GALAXYMORPH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert download.default_data_dir() == tmp_path / "xdg" / "galaxymorph"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert download.default_data_dir() == Path.home() / ".cache" / "galaxymorph"


def test_cli_fetch(server, tmp_path, capsys):
    dest = tmp_path / "cli"
    assert main(["data", "fetch", "--url", server.url, "--sha256", PAYLOAD_SHA, "--dest", str(dest)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(dest / "Galaxy10_DECals.h5")
    assert (dest / "Galaxy10_DECals.h5").read_bytes() == PAYLOAD

    assert main(["data", "fetch", "--url", server.url, "--sha256", "1" * 64, "--dest", str(tmp_path / "bad")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: status messages
    assert last.startswith("galaxymorph: error: SHA-256 mismatch")


class _Trickle(BaseHTTPRequestHandler):
    """Promises ``PAYLOAD`` and sends a byte every 20 ms, for at most 3 s, then hangs up."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        for i in range(150):
            try:
                self.wfile.write(PAYLOAD[i:i + 1])
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(0.02)
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_trickling_download_is_stalled_not_endless(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        with pytest.raises(DownloadError, match="stalled"):
            download.fetch(dest=tmp_path, url=f"http://127.0.0.1:{httpd.server_address[1]}/x.h5",
                           retries=0, backoff=0.0, timeout=0.5, progress=False)
        assert time.monotonic() - start < 2.5  # the server would trickle for 3 s
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_url_ending_in_dot_dot_leaves_no_orphan_file(server, tmp_path):
    dest = tmp_path / "data"
    path = download.fetch(dest=dest, url=server.url.rsplit("/", 1)[0] + "/..", sha256=PAYLOAD_SHA, **FAST)
    assert path == dest / download.GALAXY10_FILENAME and path.read_bytes() == PAYLOAD
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()] == [path.relative_to(tmp_path)]
