"""pubtrail as served (app.api.server): header timeout, concurrency cap, redacted
access log, and memory under huge unauthenticated bodies, in a real process."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.api.app import create_app
from app.api.server import RedactQueryFilter, TimeoutH11Protocol, redact_query, uvicorn_options
from app.config import Settings
from app.keys import write_new_key
from app.runtime import build_runtime
from tests.api.conftest import read_response, status_of
from tests.conftest import ADMIN_TOKEN, ORIGIN

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
HEADER_TIMEOUT = 0.5


# --- options -------------------------------------------------------------------------------


def test_options_follow_the_settings_and_pickle_into_worker_processes():
    settings = Settings(header_timeout=7.0, keep_alive_timeout=3.0, limit_concurrency=50)
    options = uvicorn_options(settings)
    assert options["limit_concurrency"] == 50
    assert options["timeout_keep_alive"] == 3.0
    assert options["http"].func is TimeoutH11Protocol
    assert options["http"].keywords == {"header_timeout": 7.0}
    assert options["log_config"]["loggers"]["uvicorn.access"]["filters"] == ["redact_query"]
    pickle.loads(pickle.dumps(options))  # --workers N sends the config to spawned processes
    unlimited = uvicorn_options(Settings(header_timeout=0, limit_concurrency=0))
    assert unlimited["limit_concurrency"] is None
    assert unlimited["http"].keywords == {"header_timeout": None}


def test_settings_from_env():
    env = {
        "PUBTRAIL_HEADER_TIMEOUT": "4",
        "PUBTRAIL_BODY_CHUNK_TIMEOUT": "9.5",
        "PUBTRAIL_KEEP_ALIVE_TIMEOUT": "2",
        "PUBTRAIL_LIMIT_CONCURRENCY": "64",
    }
    settings = Settings.from_env(env)
    assert (settings.header_timeout, settings.body_chunk_timeout) == (4.0, 9.5)
    assert (settings.keep_alive_timeout, settings.limit_concurrency) == (2.0, 64)
    defaults = Settings.from_env({})
    assert (defaults.header_timeout, defaults.body_chunk_timeout, defaults.limit_concurrency) == (10.0, 30.0, 1000)


def test_access_log_redacts_query_strings():
    assert redact_query("/api/v1/log/proof/inclusion?index=3&token=s3cret") == "/api/v1/log/proof/inclusion?[redacted]"
    assert redact_query("/checkpoint") == "/checkpoint"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/simple/?password=hunter2", "1.1", 200), None,
    )
    assert RedactQueryFilter().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /simple/?[redacted] HTTP/1.1" 200'


# --- header timeout and concurrency over a real socket ----------------------------------------


@pytest.fixture
def timed_server(make_settings, tmp_path):
    """The app under uvicorn with uvicorn_options (short header timeout, a concurrency cap of 8)."""
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", header_timeout=HEADER_TIMEOUT, limit_concurrency=8
    )
    runtime = build_runtime(settings)
    options = uvicorn_options(settings)
    options.update(log_config=None, access_log=False, log_level="warning")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), lifespan="on", **options))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        runtime.close()


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    started = time.monotonic()
    data = read_response(sock, deadline=seconds)
    return time.monotonic() - started < seconds, data


def test_a_slow_request_head_gets_408_and_is_closed(timed_server):
    with socket.create_connection(("127.0.0.1", timed_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t")  # and never the rest
        closed, data = _closed_within(sock, HEADER_TIMEOUT + 3)
    assert closed
    assert status_of(data) == 408


def test_a_trickled_head_is_bounded_by_the_header_timeout_not_per_byte(timed_server):
    with socket.create_connection(("127.0.0.1", timed_server)) as sock:
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: slowloris.example\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n":
                sock.sendall(bytes([byte]))
                time.sleep(HEADER_TIMEOUT / 10)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = read_response(sock, deadline=HEADER_TIMEOUT + 3)
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
    assert status_of(data) == 408


def test_a_silent_connection_is_closed(timed_server):
    with socket.create_connection(("127.0.0.1", timed_server)) as sock:
        closed, data = _closed_within(sock, HEADER_TIMEOUT + 3)
    assert closed and data == b""


def test_a_keep_alive_connection_gets_the_header_timeout_for_its_next_request(timed_server):
    with socket.create_connection(("127.0.0.1", timed_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        first = read_response(sock, deadline=3)
        assert status_of(first) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # cancels keep-alive's idle timer in uvicorn
        closed, data = _closed_within(sock, HEADER_TIMEOUT + 3)
    assert closed
    assert status_of(data) == 408


def test_a_complete_slow_client_is_still_served(timed_server):
    with socket.create_connection(("127.0.0.1", timed_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(HEADER_TIMEOUT / 3)
        sock.sendall(b"Host: t\r\n\r\n")
        assert status_of(read_response(sock, deadline=3)) == 200


def test_connections_beyond_the_concurrency_limit_get_503(timed_server):
    held = [socket.create_connection(("127.0.0.1", timed_server)) for _ in range(10)]
    try:
        time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{timed_server}/healthz", timeout=5)
        assert response.status_code == 503
    finally:
        for sock in held:
            sock.close()
    # once the header timeout has shed them, service resumes
    deadline = time.monotonic() + HEADER_TIMEOUT + 5
    while httpx.get(f"http://127.0.0.1:{timed_server}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


# --- a real process: memory under huge bodies, and its access log ----------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture
def served_process(tmp_path):
    key_file = tmp_path / "log-signing.key"
    write_new_key(key_file, ORIGIN)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "PUBTRAIL_DATA_DIR": str(tmp_path),
        "PUBTRAIL_SIGNING_KEY_FILE": str(key_file),
        "PUBTRAIL_ORIGIN": ORIGIN,
        "PUBTRAIL_ADMIN_TOKEN": ADMIN_TOKEN,
        "PUBTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.api.serve_process", str(listener.fileno())],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()],
        )
    listener.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield process, url, port, log
    finally:
        process.terminate()
        process.wait(timeout=15)


def _stream_body(port: int, path: str, total: int, *, chunked: bool, headers: tuple[str, ...] = ()) -> bytes:
    """Send a `total`-byte body to `path` as fast as the server takes it; the server's answer, if any."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
        lines = [f"POST {path} HTTP/1.1", "Host: t", framing, "Content-Type: application/json", *headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = b"x" * (256 * 1024)
        frame = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
        sent = 0
        try:
            while sent < total:
                sock.sendall(frame)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        return read_response(sock, deadline=10)


def test_huge_unauthenticated_bodies_do_not_grow_the_servers_memory(served_process):
    process, url, port, log = served_process
    for _ in range(3):  # warm up the routes (imports, first-use caches) before measuring
        httpx.post(url + "/_/oidc/mint-token", content=b"{}", timeout=10)
        httpx.post(url + "/api/v1/projects/demo/publishers", json={}, timeout=10)
    before = _peak_rss_kib(process.pid)
    answers = []
    for path in ("/_/oidc/mint-token", "/api/v1/projects/demo/publishers"):
        for chunked in (False, True):
            response = _stream_body(port, path, 200 * MiB, chunked=chunked)
            answers.append(status_of(response) if response else None)
    # every body was answered (or cut off by the server's close); none was a malformed request
    assert set(answers) <= {422, 413, 401, None} and 400 not in answers, answers
    assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    grown_mib = (_peak_rss_kib(process.pid) - before) / 1024
    print(f"peak RSS growth after 4 x 200 MiB bodies: {grown_mib:.1f} MiB")
    assert grown_mib < 8, grown_mib


def test_the_access_log_keeps_paths_and_drops_query_strings(served_process):
    process, url, _port, log = served_process
    httpx.get(url + "/api/v1/log/proof/inclusion?index=0&secret=hunter2", timeout=10)
    httpx.get(url + "/checkpoint", timeout=10)
    deadline = time.monotonic() + 5
    while "/checkpoint" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    text = log.read_text()
    assert "hunter2" not in text
    assert "GET /api/v1/log/proof/inclusion?[redacted] HTTP/1.1" in text
