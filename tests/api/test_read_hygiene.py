"""The tlog-tiles read paths as caches, CDNs and strict clients expect them: gzip entry bundles,
a checkpoint ETag, immutable partial tiles, the read paths under the origin's path, and no
consistency proof from the empty tree."""

from __future__ import annotations

import gzip
from typing import Iterator

import httpx
import pytest

from app import tlog
from app.api.app import create_app
from app.api.log_routes import _accepts_gzip, origin_path
from app.runtime import build_runtime
from tests.support.server import serve

SIZE = 300  # a full tile and bundle, and partial ones of width 44


def payload(i: int) -> bytes:
    return b'{"n":%d,"text":"%s"}' % (i, b"the same words again " * 5)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[httpx.Client]:
    from app.config import Settings
    from app.keys import write_new_key

    tmp = tmp_path_factory.mktemp("hygiene")
    write_new_key(tmp / "key", "hygiene.pubtrail.local/log")
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'db.sqlite3'}",
                        origin="hygiene.pubtrail.local/log", signing_key_file=tmp / "key")
    runtime = build_runtime(settings)
    runtime.log.sequencer.append_batch_sync([("test", payload(i)) for i in range(SIZE)])
    try:
        with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        runtime.close()


@pytest.mark.parametrize("path", ["/tile/entries/000", "/tile/entries/001.p/44"])
def test_entry_bundles_are_gzipped_when_the_client_accepts_gzip(server, path):
    plain = server.get(path, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    raw = server.build_request("GET", path, headers={"Accept-Encoding": "gzip"})
    zipped = server.send(raw, stream=True)
    body = zipped.read()  # httpx decodes; the wire length says what was sent
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 4
    assert body == plain.content
    start = 0 if path.endswith("000") else 256
    assert tlog.decode_entry_bundle(body) == [payload(i) for i in range(start, min(start + 256, SIZE))]


def test_hash_tiles_are_never_gzipped(server):
    response = server.get("/tile/0/000", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers and len(response.content) == 8192


@pytest.mark.parametrize(
    "header, accepted",
    [("gzip", True), ("gzip;q=0", False), ("br, GZIP;q=0.5", True), ("*", True), ("identity", False),
     ("", False), ("gzip;q=x", False), ("deflate, x-gzip", True)],
)
def test_accept_encoding_parsing(header, accepted):
    assert _accepts_gzip(header) is accepted


@pytest.mark.parametrize("path", ["/tile/0/001.p/44", "/tile/entries/001.p/44", "/tile/0/000.p/3", "/tile/1/000.p/1"])
def test_partial_tiles_and_bundles_are_immutable(server, path):
    response = server.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_checkpoint_has_an_etag_and_answers_304_while_unchanged(server):
    first = server.get("/checkpoint")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    assert first.headers["cache-control"] == "no-cache"
    for value in (etag, f'W/{etag}', f'"other", {etag}', "*"):
        again = server.get("/checkpoint", headers={"If-None-Match": value})
        assert again.status_code == 304, value
        assert again.content == b"" and again.headers["etag"] == etag
    assert server.get("/checkpoint", headers={"If-None-Match": '"other"'}).text == first.text
    head = server.head("/checkpoint")
    assert head.status_code == 200 and head.headers["etag"] == etag


def test_read_paths_are_served_under_the_origin_path(server):
    for path in ("/checkpoint", "/tile/0/000", "/tile/1/000.p/1", "/tile/entries/001.p/44"):
        at_root = server.get(path, headers={"Accept-Encoding": "identity"})
        under = server.get("/log" + path, headers={"Accept-Encoding": "identity"})
        assert under.status_code == 200, path
        assert under.content == at_root.content
        assert under.headers["cache-control"] == at_root.headers["cache-control"]
    assert server.head("/log/tile/0/000").status_code == 200
    assert server.get("/log/tile/0/999").status_code == 404
    assert server.get("/log/tile/0%2F000").status_code == 404


@pytest.mark.parametrize("origin, path", [("a.example/log", "/log"), ("a.example", ""), ("a.example/x/y/", "/x/y")])
def test_origin_path(origin, path):
    assert origin_path(origin) == path


@pytest.mark.parametrize("params", [{"first": 0}, {"first": 0, "second": 0}, {"first": 0, "second": 5}])
def test_consistency_from_the_empty_tree_is_refused(server, params):
    response = server.get("/api/v1/log/proof/consistency", params=params)
    assert response.status_code == 400
    assert "empty tree" in response.json()["detail"]
    assert server.get("/api/v1/log/proof/consistency", params={"first": 1, "second": 5}).status_code == 200
