"""Request-body budgets and the body chunk timeout (app.api.body_limit), over a real socket."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.api.conftest import CHUNK_TIMEOUT, body_of, header, read_response, status_of

MiB = 1024 * 1024
ADMIN_POST = "/api/v1/projects/demo/publishers"


def _head(method: str, path: str, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *extra, "", ""]
    return "\r\n".join(lines).encode()


def _send_chunks(sock: socket.socket, total: int, chunk: int = 16 * 1024) -> int:
    """Send up to `total` body bytes as HTTP chunks (no final chunk); returns bytes sent before the server closed."""
    sent = 0
    piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    try:
        while sent < total:
            sock.sendall(piece)
            sent += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_mint_token_refuses_a_large_content_length_before_reading_the_body(edge):
    with edge.connect() as sock:
        sock.sendall(_head("POST", "/_/oidc/mint-token", f"Content-Length: {200 * MiB}", "Content-Type: application/json"))
        started = time.monotonic()
        response = read_response(sock, deadline=3)
    assert time.monotonic() - started < 2
    assert status_of(response) == 422
    assert header(response, "connection") == "close"
    assert json.loads(body_of(response)) == {
        "message": "Token request failed",
        "errors": [{"code": "invalid-payload", "description": "the request body is too large"}],
    }


def test_admin_post_refuses_a_large_content_length_without_credentials(edge):
    with edge.connect() as sock:
        sock.sendall(_head("POST", ADMIN_POST, f"Content-Length: {200 * MiB}", "Content-Type: application/json"))
        response = read_response(sock, deadline=3)
    assert status_of(response) == 413
    assert header(response, "connection") == "close"
    assert "larger than this route accepts" in json.loads(body_of(response))["detail"]


@pytest.mark.parametrize("path, status", [("/_/oidc/mint-token", 422), (ADMIN_POST, 413)])
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_budget(edge, path, status):
    auth = f"Authorization: {edge.admin['Authorization']}"  # past authentication, the admin route reads the body
    with edge.connect() as sock:
        sock.sendall(_head("POST", path, "Transfer-Encoding: chunked", "Content-Type: application/json", auth))
        _send_chunks(sock, 80 * 1024)  # past 64 KiB, and never finished
        response = read_response(sock, deadline=3)
    assert status_of(response) == status
    assert header(response, "connection") == "close"


def test_bodies_within_budget_reach_the_routes(edge):
    just_under = b'{"token": "' + b"a" * (64 * 1024 - 20) + b'"}'
    assert len(just_under) <= 64 * 1024
    response = edge.client.post("/_/oidc/mint-token", content=just_under)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid-payload"
    assert "too large" not in response.json()["errors"][0]["description"]
    assert edge.client.post(ADMIN_POST, json={"provider": "github"}).status_code == 401
    edge.add_publisher()  # an admin POST with credentials and a small body still works


def test_a_body_on_a_route_that_takes_none_is_refused_early(edge):
    with edge.connect() as sock:
        sock.sendall(_head("POST", "/checkpoint", f"Content-Length: {10 * MiB}"))
        response = read_response(sock, deadline=3)
    assert status_of(response) == 413


@pytest.mark.parametrize("path", ["/_/oidc/mint-token", "/legacy/", ADMIN_POST])
def test_a_stalled_body_ends_with_408_after_the_chunk_timeout(edge, path):
    auth = f"Authorization: {edge.admin['Authorization']}"
    with edge.connect() as sock:
        sock.sendall(_head("POST", path, "Content-Length: 1000", "Content-Type: application/json", auth) + b"{")
        started = time.monotonic()
        response = read_response(sock, deadline=CHUNK_TIMEOUT + 4)
        elapsed = time.monotonic() - started
    assert status_of(response) == 408, response
    assert header(response, "connection") == "close"
    assert CHUNK_TIMEOUT * 0.8 < elapsed < CHUNK_TIMEOUT + 3


def test_the_chunk_timeout_is_per_chunk_not_per_body(edge):
    """A slow but steady body (each chunk well within the timeout, the whole
    body longer than it) is read to the end."""
    with edge.connect() as sock:
        sock.sendall(_head("POST", "/_/oidc/mint-token", "Content-Length: 8"))
        for byte in b'{"token"':
            time.sleep(CHUNK_TIMEOUT / 3)
            sock.sendall(bytes([byte]))
        response = read_response(sock, deadline=5)
    assert status_of(response) == 422  # read whole: the JSON is incomplete, not stalled
    assert json.loads(body_of(response))["errors"][0]["code"] == "invalid-payload"


def test_refusals_are_counted(edge):
    with edge.connect() as sock:
        sock.sendall(_head("POST", ADMIN_POST, f"Content-Length: {MiB}"))
        read_response(sock, deadline=3)
    metrics = edge.client.get("/metrics").text
    assert 'pubtrail_http_refusals_total{reason="too_large"} 1.0' in metrics
