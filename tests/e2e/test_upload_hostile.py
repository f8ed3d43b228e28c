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
