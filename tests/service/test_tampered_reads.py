"""A log entry altered in the database is never served: entry and bundle reads answer 500
with the reason, count it and log it once; start-up refuses an altered newest entry."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import update

from app import tlog
from app.api.app import create_app
from app.runtime import build_runtime
from app.sequencer import LogIntegrityError
from app.storage.tables import LogEntry
from tests.support.server import serve

SIZE = 300  # tile/entries/000 is full, tile/entries/001.p/44 the right edge


@pytest.fixture
def filled(settings):
    runtime = build_runtime(settings)
    runtime.log.sequencer.append_batch_sync([("test", b"entry %d" % i) for i in range(SIZE)])
    runtime.close()
    return settings


def _tamper(settings, index: int, **values) -> None:
    runtime = build_runtime(settings)  # a clean log starts
    try:
        with runtime.engine.begin() as conn:
            conn.execute(update(LogEntry.__table__).where(LogEntry.__table__.c.index == index).values(**values))
    finally:
        runtime.close()


def _integrity_failures(client: httpx.Client, read: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'pubtrail_log_integrity_failures_total{{read="{read}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(
    "forged, reason",
    [
        ({"data": b"entry 3, forged"}, "entry 3 in storage does not hash to its stored leaf hash"),
        (
            {"data": b"entry 3, forged", "leaf_hash": tlog.leaf_hash(b"entry 3, forged")},
            "entry 3 in storage does not match its leaf in the log's tiles",
        ),
    ],
)
def test_tampered_entry_is_refused_counted_and_logged_once(filled, caplog, forged, reason):
    _tamper(filled, 3, **forged)
    runtime = build_runtime(filled)  # an older entry: start-up does not read it ...
    caplog.set_level(logging.ERROR, logger="pubtrail.log_reader")
    try:
        with serve(create_app(runtime)) as base, httpx.Client(base_url=base) as client:
            for attempt in (1, 2):  # ... but no read serves it
                answer = client.get("/api/v1/log/entries/3")
                assert answer.status_code == 500
                assert reason in answer.json()["detail"] and "refusing to serve" in answer.json()["detail"]
                bundle = client.get("/tile/entries/000")
                assert bundle.status_code == 500 and reason in bundle.json()["detail"]
                assert _integrity_failures(client, "entry") == attempt
                assert _integrity_failures(client, "entry_bundle") == attempt
            # untouched entries and bundles are still served
            assert client.get("/api/v1/log/entries/4").status_code == 200
            right_edge = client.get("/tile/entries/001.p/44")
            assert right_edge.status_code == 200
            assert tlog.decode_entry_bundle(right_edge.content)[0] == b"entry 256"
    finally:
        runtime.close()
    logged = [r for r in caplog.records if r.name == "pubtrail.log_reader"]
    assert len(logged) == 1 and reason in logged[0].getMessage()


@pytest.mark.parametrize(
    "forged",
    [{"data": b"entry 299, forged"}, {"data": b"forged", "leaf_hash": tlog.leaf_hash(b"forged")}],
)
def test_tampered_newest_entry_refuses_to_start(filled, forged):
    _tamper(filled, SIZE - 1, **forged)
    with pytest.raises(LogIntegrityError, match=f"entry {SIZE - 1} does not hash to its leaf"):
        build_runtime(filled)


def test_tampered_entry_in_the_newest_full_bundle_refuses_to_start(settings):
    runtime = build_runtime(settings)
    runtime.log.sequencer.append_batch_sync([("test", b"entry %d" % i) for i in range(512)])
    runtime.close()
    _tamper(settings, 256, data=b"entry 256, forged")  # tile/entries/001 is full and the newest
    with pytest.raises(LogIntegrityError, match="entry 256 does not hash"):
        build_runtime(settings)
