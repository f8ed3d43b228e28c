"""The auditor read API over a real socket, on SQLite and PostgreSQL.

One log per database (module scope, it is the expensive part): 66,341 entries
appended in synchronous batches before the server starts (so level-1 tiles are
full and a level-2 tile exists), then a few more through `runtime.log.append`
in the server's own event loop. Everything an auditor fetches is compared with
a `MemoryTree` built from the same entries, and verified with `app.tlog`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app import tlog
from app.api.app import create_app
from app.config import Settings
from app.keys import write_new_key
from app.runtime import build_runtime
from app.tlog import MemoryTree, note
from tests.support.server import serve

ORIGIN = "api.test.pubtrail.local/log"
PG_ENV = "PUBTRAIL_TEST_DATABASE_URL"
# 256*256 + 3*256 + 37: tile/0 has 259 full tiles and a partial one, tile/1/000
# is full, tile/1/001.p/3 and tile/2/000.p/1 exist.
PRELOADED = 256 * 256 + 3 * 256 + 37
LIVE = 9  # appended through runtime.log.append once the server runs
SYNC_BATCH = 20_000


def payload(i: int) -> bytes:
    return b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i % 7))


@dataclass
class Served:
    base: str
    client: httpx.Client
    reference: MemoryTree
    payloads: list[bytes]
    verifier: note.Verifier
    batch_sizes: list[int]  # the tree sizes checkpoints were signed at

    @property
    def size(self) -> int:
        return self.reference.size


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    from tests.conftest import reset_postgres

    tmp: Path = tmp_path_factory.mktemp(f"log_api_{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'db.sqlite3'}"
    else:
        url = os.environ.get(PG_ENV)
        if not url:
            pytest.skip(f"PostgreSQL tests need {PG_ENV}")
        reset_postgres(url)
    key_file = tmp / "log-signing.key"
    write_new_key(key_file, ORIGIN)
    settings = Settings(
        data_dir=tmp, database_url=url, origin=ORIGIN, signing_key_file=key_file, batch_window=0.002
    )
    runtime = build_runtime(settings)
    payloads = [payload(i) for i in range(PRELOADED + LIVE)]
    sizes = [0]
    sequencer = runtime.log.sequencer
    for start in range(0, PRELOADED, SYNC_BATCH):
        chunk = payloads[start : min(start + SYNC_BATCH, PRELOADED)]
        receipts = sequencer.append_batch_sync([("test", p) for p in chunk])
        assert [r.index for r in receipts] == list(range(start, start + len(chunk)))
        sizes.append(start + len(chunk))
    try:
        with serve(create_app(runtime)) as base, httpx.Client(base_url=base, timeout=30) as client:
            # the sequencer runs in the server's loop (started by the app lifespan)
            loop = sequencer._task.get_loop()

            async def live():
                return await asyncio.gather(
                    *(runtime.log.append(p, kind="test") for p in payloads[PRELOADED:])
                )

            receipts = asyncio.run_coroutine_threadsafe(live(), loop).result(timeout=60)
            # order of live appends is the server's: rebuild payloads in index order
            by_index = {r.index: p for r, p in zip(receipts, payloads[PRELOADED:])}
            assert sorted(by_index) == list(range(PRELOADED, PRELOADED + LIVE))
            payloads[PRELOADED:] = [by_index[i] for i in sorted(by_index)]
            sizes.extend(sorted({r.tree_size for r in receipts}))
            reference = MemoryTree()
            reference.extend(payloads)
            verifier = note.Verifier(client.get("/api/v1/log").json()["verifier_key"])
            yield Served(base, client, reference, payloads, verifier, sizes)
    finally:
        runtime.close()


def _json_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


# --- checkpoints ----------------------------------------------------------------


def test_checkpoint_is_signed_text_matching_the_entries(served):
    response = served.client.get("/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = tlog.open_checkpoint(response.text, [served.verifier], origin=ORIGIN)
    assert checkpoint.size == served.size
    assert checkpoint.root_hash == served.reference.root()


def test_log_info(served):
    info = served.client.get("/api/v1/log").json()
    assert info["origin"] == ORIGIN
    assert info["size"] == served.size
    assert bytes.fromhex(info["root_hash"]) == served.reference.root()
    assert info["verifier_key"].startswith(ORIGIN + "+")
    assert tlog.open_checkpoint(info["checkpoint"], [served.verifier]).size == served.size


def test_every_signed_checkpoint_is_kept_and_consistent(served):
    latest = served.size
    for size in served.batch_sizes:
        response = served.client.get(f"/api/v1/log/checkpoints/{size}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "immutable" in response.headers["cache-control"]
        checkpoint = tlog.open_checkpoint(response.text, [served.verifier], origin=ORIGIN)
        assert (checkpoint.size, checkpoint.root_hash) == (size, served.reference.root(size))
        if size == 0:  # RFC 9162 has no consistency proof from the empty tree: 400
            continue
        proof = served.client.get("/api/v1/log/proof/consistency", params={"first": size}).json()
        assert (proof["first"], proof["second"]) == (size, latest)
        tlog.verify_consistency(
            size,
            latest,
            [bytes.fromhex(h) for h in proof["hashes"]],
            checkpoint.root_hash,
            served.reference.root(),
        )


# --- tiles --------------------------------------------------------------------------


def test_every_tile_equals_the_reference_and_is_cached_right(served):
    client, reference = served.client, served.reference
    tiles = tlog.tiles_for_size(served.size)
    assert {t.level for t in tiles} == {0, 1, 2}
    assert tlog.Tile(1, 0) in tiles  # a full level-1 tile
    for tile in tiles:
        response = client.get("/" + tile.path)
        assert response.status_code == 200, tile.path
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == reference.tile(tile.level, tile.index, tile.width), tile.path
        # a tile path never changes its bytes, partial ones included (tlog-tiles)
        assert "immutable" in response.headers["cache-control"], tile.path


def test_narrower_partial_tile_is_a_prefix(served):
    response = served.client.get("/tile/0/000.p/5")
    assert response.status_code == 200
    assert response.content == served.reference.tile(0, 0, 5)
    response = served.client.get("/tile/1/001.p/2")
    assert response.content == served.reference.tile(1, 1, 2)


def test_every_entry_bundle_holds_the_entries(served):
    for bundle in tlog.entry_bundles_for_size(served.size):
        response = served.client.get("/" + bundle.path)
        assert response.status_code == 200, bundle.path
        start = bundle.index * 256
        assert tlog.decode_entry_bundle(response.content) == served.payloads[start : start + bundle.width]
        assert "immutable" in response.headers["cache-control"]


def test_tiles_beyond_the_log_are_404(served):
    size = served.size
    full, partial = divmod(size, 256)
    beyond = [
        tlog.tile_path(0, full + 1),
        tlog.tile_path(0, full),  # the full version of the partial right edge
        tlog.tile_path(0, full, partial + 1),
        tlog.tile_path(1, 2),
        tlog.tile_path(1, 1, 4),
        tlog.tile_path(2, 0),
        tlog.tile_path(3, 0, 1),
        tlog.tile_path(0, 10**12),
        tlog.entries_path(full),
        tlog.entries_path(full, partial + 1),
        tlog.entries_path(full + 1, 1),
    ]
    for path in beyond:
        _json_error(served.client.get("/" + path), 404)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/0001",
        "tile/0/01",
        "tile/0/x000/001",
        "tile/00/001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/007",
        "tile/0/001.p/",
        "tile/64/000",
        "tile/-1/000",
        "tile/abc/000",
        "tile/0/abc",
        "tile/0/001/",
        "tile/entries/01",
        "tile/entries/000.p/0",
        "tile/0",
        "tile/",
    ],
)
def test_non_canonical_tile_paths_are_404(served, path):
    _json_error(served.client.get("/" + path), 404)


def test_tlog_tiles_client_flow(served):
    """An auditor with only the checkpoint and tile endpoints recomputes the root."""
    client = served.client
    checkpoint = tlog.open_checkpoint(client.get("/checkpoint").text, [served.verifier], origin=ORIGIN)
    fetched: list[str] = []

    class HttpTiles:
        def read_tiles(self, tiles):
            out = []
            for tile in tiles:
                fetched.append(tile.path)
                response = client.get("/" + tile.path)
                response.raise_for_status()
                out.append(response.content)
            return out

    tree = tlog.TiledTree(HttpTiles())
    assert tree.root(checkpoint.size) == checkpoint.root_hash
    assert len(fetched) <= 6  # the right edge only
    # an inclusion proof from tiles, for an early, a middle and the last entry
    for index in (0, 1000, 65535, 65536, checkpoint.size - 1):
        proof = tree.inclusion_proof(index, checkpoint.size)
        tlog.verify_inclusion(
            tlog.leaf_hash(served.payloads[index]), index, checkpoint.size, proof, checkpoint.root_hash
        )
    # leaf hashes from tiles match the entry bundle's entries
    bundle = client.get("/" + tlog.entries_path(3)).content
    assert [tlog.leaf_hash(e) for e in tlog.decode_entry_bundle(bundle)] == tree.leaf_hashes(
        768, 1024, checkpoint.size
    )


# --- entries and proofs ---------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 255, 256, 65535, 65536, -1])
def test_entry_with_proof(served, which):
    index = which % served.size
    body = served.client.get(f"/api/v1/log/entries/{index}").json()
    data = base64.b64decode(body["entry_bytes"])
    assert data == served.payloads[index]
    assert body["index"] == index and body["kind"] == "test"
    assert bytes.fromhex(body["leaf_hash"]) == hashlib.sha256(b"\x00" + data).digest()
    assert body["entry"] == json.loads(data)
    checkpoint = tlog.open_checkpoint(body["checkpoint"], [served.verifier], origin=ORIGIN)
    proof = body["inclusion_proof"]
    assert proof["tree_size"] == checkpoint.size and bytes.fromhex(proof["root_hash"]) == checkpoint.root_hash
    tlog.verify_inclusion(
        bytes.fromhex(body["leaf_hash"]),
        index,
        checkpoint.size,
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )
    as_text = tlog.TlogProof.parse(body["tlog_proof"])
    assert as_text.index == index and as_text.checkpoint == body["checkpoint"]
    assert [h.hex() for h in as_text.hashes] == proof["hashes"]


@pytest.mark.parametrize("index, tree_size", [(0, None), (7, 8), (300, 66000), (65536, 65537), (-1, None)])
def test_inclusion_by_index_and_by_hash(served, index, tree_size):
    size = served.size if tree_size is None else tree_size
    index %= size
    leaf = tlog.leaf_hash(served.payloads[index])
    params = {} if tree_size is None else {"tree_size": tree_size}
    by_index = served.client.get("/api/v1/log/proof/inclusion", params={"index": index, **params}).json()
    by_hash = served.client.get("/api/v1/log/proof/inclusion", params={"leaf_hash": leaf.hex(), **params}).json()
    assert by_index == by_hash
    assert (by_index["index"], by_index["tree_size"]) == (index, size)
    assert bytes.fromhex(by_index["root_hash"]) == served.reference.root(size)
    hashes = [bytes.fromhex(h) for h in by_index["hashes"]]
    assert hashes == served.reference.inclusion_proof(index, size)
    tlog.verify_inclusion(leaf, index, size, hashes, served.reference.root(size))


@pytest.mark.parametrize("first, second", [(1, None), (256, 65536), (65536, None), (1000, 1000), (1, 1), (3, 7)])
def test_consistency(served, first, second):
    params = {"first": first} if second is None else {"first": first, "second": second}
    body = served.client.get("/api/v1/log/proof/consistency", params=params).json()
    second = served.size if second is None else second
    assert (body["first"], body["second"]) == (first, second)
    root1, root2 = served.reference.root(first), served.reference.root(second)
    assert (bytes.fromhex(body["first_root"]), bytes.fromhex(body["second_root"])) == (root1, root2)
    tlog.verify_consistency(first, second, [bytes.fromhex(h) for h in body["hashes"]], root1, root2)


# --- bad parameters: 400 / 404 with a detail, never 500 ------------------------------------


def test_bad_parameters_are_client_errors(served):
    size = served.size
    known = tlog.leaf_hash(served.payloads[5]).hex()
    unknown = hashlib.sha256(b"nothing").hexdigest()
    huge = str(10**30)
    cases = [
        ("/api/v1/log/entries/-1", 400),
        ("/api/v1/log/entries/abc", 400),
        ("/api/v1/log/entries/1.5", 400),
        (f"/api/v1/log/entries/{size}", 404),
        (f"/api/v1/log/entries/{huge}", 404),
        (f"/api/v1/log/entries/{2**63}", 404),
        ("/api/v1/log/checkpoints/-1", 400),
        ("/api/v1/log/checkpoints/abc", 400),
        (f"/api/v1/log/checkpoints/{size + 1}", 404),
        ("/api/v1/log/checkpoints/5", 404),  # never signed at that size
        (f"/api/v1/log/checkpoints/{huge}", 404),
        (f"/api/v1/log/checkpoints/{2**63}", 404),
        ("/api/v1/log/proof/inclusion", 400),  # neither
        (f"/api/v1/log/proof/inclusion?index=5&leaf_hash={known}", 400),  # both
        ("/api/v1/log/proof/inclusion?index=-1", 400),
        ("/api/v1/log/proof/inclusion?index=x", 400),
        (f"/api/v1/log/proof/inclusion?index={size}", 400),
        (f"/api/v1/log/proof/inclusion?index={huge}", 400),
        ("/api/v1/log/proof/inclusion?index=5&tree_size=5", 400),
        ("/api/v1/log/proof/inclusion?index=5&tree_size=-3", 400),
        (f"/api/v1/log/proof/inclusion?index=5&tree_size={size + 1}", 400),
        (f"/api/v1/log/proof/inclusion?index=5&tree_size={huge}", 400),
        ("/api/v1/log/proof/inclusion?index=5&tree_size=abc", 400),
        (f"/api/v1/log/proof/inclusion?leaf_hash={unknown}", 404),
        (f"/api/v1/log/proof/inclusion?leaf_hash={known}&tree_size=5", 404),  # not in the first 5
        ("/api/v1/log/proof/inclusion?leaf_hash=zz", 400),
        ("/api/v1/log/proof/inclusion?leaf_hash=abcd", 400),
        (f"/api/v1/log/proof/inclusion?leaf_hash={known}00", 400),
        ("/api/v1/log/proof/consistency", 400),  # first is required
        ("/api/v1/log/proof/consistency?first=-1", 400),
        ("/api/v1/log/proof/consistency?first=0", 400),
        ("/api/v1/log/proof/consistency?first=abc", 400),
        ("/api/v1/log/proof/consistency?first=10&second=5", 400),
        ("/api/v1/log/proof/consistency?first=1&second=-5", 400),
        (f"/api/v1/log/proof/consistency?first=1&second={size + 1}", 400),
        (f"/api/v1/log/proof/consistency?first={size + 1}", 400),
        (f"/api/v1/log/proof/consistency?first={huge}", 400),
        (f"/api/v1/log/proof/consistency?first=1&second={huge}", 400),
        ("/tile/0/" + "x123/" * 1500 + "000", 404),  # an index past Python's int() digit limit
        ("/tile/entries/" + "x999/" * 7 + "999", 404),
    ]
    for path, status in cases:
        _json_error(served.client.get(path), status)


# --- operations and documentation ------------------------------------------------------------


def test_healthz_and_metrics(served):
    health = served.client.get("/healthz").json()
    assert health == {"status": "ok", "log_size": served.size}
    metrics = served.client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert f"pubtrail_log_size {float(served.size)}" in text
    for name in ("pubtrail_log_batch_size", "pubtrail_log_batch_seconds", "pubtrail_log_append_seconds"):
        assert f"# TYPE {name} histogram" in text
        assert f"{name}_count" in text
    # the live appends went through the sequencer's loop: at least one batch, LIVE appends observed
    count = next(line for line in text.splitlines() if line.startswith("pubtrail_log_append_seconds_count"))
    assert float(count.split()[-1]) == LIVE


def test_openapi_documents_the_log_routes(served):
    spec = served.client.get("/openapi.json").json()
    paths = spec["paths"]
    for route in (
        "/checkpoint",
        "/tile/{tile_path}",
        "/api/v1/log",
        "/api/v1/log/entries/{index}",
        "/api/v1/log/proof/inclusion",
        "/api/v1/log/proof/consistency",
        "/api/v1/log/checkpoints/{size}",
        "/healthz",
        "/metrics",
    ):
        assert route in paths, route
        assert paths[route]["get"].get("summary"), route
    inclusion = {p["name"] for p in paths["/api/v1/log/proof/inclusion"]["get"]["parameters"]}
    assert inclusion == {"index", "leaf_hash", "tree_size"}
