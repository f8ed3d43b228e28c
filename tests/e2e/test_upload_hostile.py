"""The upload path under hostile or unlucky input, over a real socket.

Each test forces one situation a probe found: the orphan collector racing an
upload of the same content, a removed publisher's token, a body that goes on
after its form, a refused body that goes on for a gigabyte, a client that
disconnects mid-upload, a Host header that would steer a redirect, and an
archive check slow enough to hold up other requests.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import httpx
import pytest

from app.jobs import collect_orphan_blobs
from tests.distributions.builders import encode, twine_fields
from tests.e2e.test_upload import PROJECT, _basic, _post, _snapshot, build_wheel


@pytest.fixture
def publisher_token(service) -> str:
    service.add_github_publisher(PROJECT)
    return service.upload_token()


# --- the orphan collector never deletes a file an acknowledged upload names ---------------


def test_orphan_collection_racing_an_upload_of_the_same_content_keeps_the_file(
    service, publisher_token, tmp_path, monkeypatch
):
    """An old orphan (a refused upload's file) is listed by the collector; an upload of the
    same content then reuses it (commit touches it) before its entry is appended; only then
    does the collector check for a reference. The acknowledged file must survive."""
    wheel = build_wheel(tmp_path)
    data = wheel.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    blobs = service.runtime.blobs
    orphan = blobs.path_for(sha256)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(data)
    old = service.clock.value - 7200
    os.utime(orphan, (old, old))

    committed, collected = threading.Event(), threading.Event()
    real_commit, real_stored = blobs.commit, blobs.stored

    def commit_then_wait(staged, *args, **kwargs):
        path = real_commit(staged, *args, **kwargs)
        committed.set()
        collected.wait(10)  # the entry is appended only after the collector has had its turn
        return path

    responses: list[httpx.Response] = []

    def upload() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            body, content_type = encode(twine_fields(wheel.name, data, name=PROJECT, version="1.0.0"))
            responses.append(client.post("/legacy/", content=body,
                                         headers={"Content-Type": content_type, **_basic(publisher_token)}))

    def listed_then_upload_commits():
        yield from list(real_stored())  # the listing is complete: the orphan is a candidate
        uploader.start()
        assert committed.wait(10)

    monkeypatch.setattr(blobs, "commit", commit_then_wait)
    monkeypatch.setattr(blobs, "stored", listed_then_upload_commits)
    uploader = threading.Thread(target=upload)
    try:
        collect_orphan_blobs(service.runtime, older_than=3600)
    finally:
        collected.set()
        if uploader.ident is not None:
            uploader.join(30)
    assert responses and responses[0].status_code == 200, responses and responses[0].reason_phrase
    assert orphan.is_file()
    served = service.client.get(f"/files/{sha256}/{wheel.name}")
    assert served.status_code == 200 and served.content == data


# --- a removed trusted publisher's tokens no longer upload ---------------------------------


def test_token_of_a_removed_publisher_is_refused(service, tmp_path):
    publisher = service.add_github_publisher(PROJECT)["publisher"]
    token = service.upload_token()
    removed = service.client.delete(f"/api/v1/projects/{PROJECT}/publishers/{publisher['id']}", headers=service.admin)
    assert removed.status_code == 200, removed.text
    before = _snapshot(service)
    response = _post(service, build_wheel(tmp_path), token=token)
    assert response.status_code == 403, (response.status_code, response.reason_phrase)
    assert response.reason_phrase.startswith(
        f"Invalid API Token: the trusted publisher that minted this token is no longer registered for "
        f"project '{PROJECT}'. See ")
    assert _snapshot(service) == before  # no entry, no stored file


# --- the body: read no more than the form needs ------------------------------------------


def _raw_post(service, head_extra: str, first: bytes, content_length: int, token: str | None):
    """Open a socket, send a /legacy/ request declaring `content_length`, then `first`."""
    port = int(service.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    auth = "".join(f"{k}: {v}\r\n" for k, v in _basic(token).items()) if token else ""
    head = (f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{head_extra}"
            f"Content-Length: {content_length}\r\n\r\n")
    sock.sendall(head.encode() + first)
    return sock


def _read_head(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    return data


def _sent_until_closed(sock, limit: int) -> int:
    """Keep sending until the server's close shows up as an error; bytes sent."""
    sent, block = 0, b"\0" * 65536
    deadline = time.monotonic() + 20
    try:
        while sent < limit and time.monotonic() < deadline:
            sent += sock.send(block)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        return sent
    return sent


def test_refused_token_closes_the_connection_instead_of_reading_a_large_body(service):
    """A 1 GiB body with a bad token: answered 403 with Connection: close, then the server
    closes; it does not go on reading (it once read 1 GiB in 1.4 s)."""
    sock = _raw_post(service, "Content-Type: multipart/form-data; boundary=xx\r\n", b"\0" * (2 << 20),
                     1 << 30, token="pubtrail-v1.0000000000000000.bogus")
    with sock:
        head = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 403 ") and b"connection: close" in head.lower(), head
        sent = _sent_until_closed(sock, 256 << 20)
    assert sent < 128 << 20, sent


def test_body_going_on_after_the_form_is_not_read(service, publisher_token, tmp_path):
    """A complete form followed by a 400 MiB epilogue: accepted, Connection: close, and the
    server stops reading (it once read the 400 MiB in full)."""
    wheel = build_wheel(tmp_path)
    body, content_type = encode(twine_fields(wheel.name, wheel.read_bytes(), name=PROJECT, version="1.0.0"))
    filler = b"\0" * (2 << 20)
    sock = _raw_post(service, f"Content-Type: {content_type}\r\n", body + filler,
                     len(body) + (400 << 20), token=publisher_token)
    with sock:
        head = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower(), head
        sent = _sent_until_closed(sock, 256 << 20)
    assert sent < 128 << 20, sent
    assert service.client.get(f"/files/{hashlib.sha256(wheel.read_bytes()).hexdigest()}/{wheel.name}").status_code == 200


def test_client_disconnect_mid_upload_is_counted_not_logged(service, publisher_token, tmp_path, caplog):
    wheel = build_wheel(tmp_path, payload=os.urandom(4 << 20))
    body, content_type = encode(twine_fields(wheel.name, wheel.read_bytes(), name=PROJECT, version="1.0.0"))
    before = _snapshot(service)
    sock = _raw_post(service, f"Content-Type: {content_type}\r\n", body[: 3 << 20], len(body), token=publisher_token)
    time.sleep(0.3)
    sock.close()
    deadline = time.monotonic() + 10
    while 'pubtrail_uploads_total{result="disconnected"} 1.0' not in service.client.get("/metrics").text:
        assert time.monotonic() < deadline, "the disconnect was not counted"
        time.sleep(0.05)
    assert _snapshot(service) == before  # no partial file, no spool left
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


# --- a slow archive check does not hold up other requests ---------------------------------


def test_healthz_answers_promptly_while_an_archive_check_runs(service, publisher_token, tmp_path, monkeypatch):
    """A small sdist's check once ran on the event loop (six 80 KB uploads stalled /healthz for
    3.7 s). Make one check take 2 s: /healthz still answers within a fraction of that."""
    import app.services.uploads as uploads_module

    real_check = uploads_module.check_archive
    started = threading.Event()

    def slow_check(path, filename):
        started.set()
        time.sleep(2.0)  # blocking, like inflating 64 MiB
        return real_check(path, filename)

    monkeypatch.setattr(uploads_module, "check_archive", slow_check)
    wheel = build_wheel(tmp_path)
    result: list[httpx.Response] = []
    uploader = threading.Thread(target=lambda: result.append(_post(service, wheel, token=publisher_token)))
    uploader.start()
    try:
        assert started.wait(10)
        began = time.monotonic()
        assert service.client.get("/healthz").status_code == 200
        assert time.monotonic() - began < 1.0
    finally:
        uploader.join(30)
    assert result and result[0].status_code == 200


def test_refusals_link_to_pubtrails_own_help_page(service):
    response = _post(service, None, data=b"x", filename="x.whl")
    assert response.status_code == 403
    link = f"{service.runtime.settings.public_url}/help/uploads#invalid-auth"
    assert response.reason_phrase.endswith(f". See {link} for more information."), response.reason_phrase
    page = service.client.get("/help/uploads")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for anchor in ("invalid-auth", "project-name", "file-size-limit", "file-name-reuse"):
        assert f'id="{anchor}"' in page.text


@pytest.mark.parametrize("size", [3 << 20, 24 << 20])
def test_twine_shows_why_a_large_upload_was_refused(service, publisher_token, tmp_path, size):
    """twine sends the whole body before it reads the answer: a refused multi-MiB wheel
    must still show the refusal's reason, not a reset connection."""
    from tests.e2e.test_upload import _twine

    wheel = build_wheel(tmp_path, payload=os.urandom(size))
    token_id = publisher_token.split(".")[1]
    assert service.client.post(f"/api/v1/tokens/{token_id}/revoke", headers=service.admin).status_code == 200
    before = _snapshot(service)
    result = _twine(service, publisher_token, wheel)
    assert result.returncode != 0
    assert "Invalid API Token: the token has been revoked" in result.stdout + result.stderr, result.stdout + result.stderr
    assert _snapshot(service) == before
