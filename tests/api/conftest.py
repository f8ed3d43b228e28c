"""A pubtrail on SQLite over a real socket, with short edge timeouts, plus raw-socket helpers."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Iterator

import httpx
import pytest

from app.api.app import create_app
from app.api.reason_phrase import ReasonH11Protocol
from app.runtime import Runtime, build_runtime
from tests.conftest import ADMIN_TOKEN
from tests.support.server import serve

CHUNK_TIMEOUT = 0.5


@dataclass
class Edge:
    url: str
    port: int
    runtime: Runtime
    client: httpx.Client

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def add_publisher(self, project: str = "demo") -> dict:
        body = {"provider": "github", "repository": "me/demo", "repository_owner_id": "1", "workflow": "release.yml"}
        response = self.client.post(f"/api/v1/projects/{project}/publishers", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def edge(make_settings, tmp_path) -> Iterator[Edge]:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", body_chunk_timeout=CHUNK_TIMEOUT)
    runtime = build_runtime(settings)
    try:
        with serve(create_app(runtime), http=ReasonH11Protocol) as url:
            with httpx.Client(base_url=url, timeout=10) as client:
                yield Edge(url, int(url.rsplit(":", 1)[1]), runtime, client)
    finally:
        runtime.close()


def read_response(sock: socket.socket, deadline: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection or `deadline` seconds pass."""
    sock.settimeout(0.2)
    data = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if b"\r\n\r\n" in data and _complete(data):
                return data
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def header(response: bytes, name: str) -> str | None:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None
