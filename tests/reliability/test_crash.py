"""Hard kills under load: the short version of scripts/crash_test.py, and proof that its checks can fail.

What is promised: every write a client was acknowledged survives a SIGKILL of
the server's process group at any moment, at the index and with the leaf hash
of its receipt; every checkpoint a client saw is consistent with the final
one; every stored or served file is whole and matches its upload entry; the
log passes `pubtrail audit` after the restarts; and no server answers a 5xx.

How it is checked: `crash_test.run` (see its module docstring) with a few
kills, on SQLite with one `pubtrail serve` process and on PostgreSQL
(`PUBTRAIL_TEST_DATABASE_URL`) with two processes killed one at a time, the
other acknowledging writes meanwhile. The full run (at least 20 kills per
set-up) is `scripts/crash_test.py` by hand. The last test feeds the checker a
forged receipt, foreign checkpoints and a corrupted file against a live
service, so a checker that passes everything would fail here.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx

from app import tlog
from app.tlog import Checkpoint, note
from scripts import crash_test
from scripts.bench_log import reset_postgres
from scripts.bench_upload import upload_body
from tests.conftest import postgres_url
from tests.e2e.conftest import issuer, make_service, service  # noqa: F401 - fixtures


def _problems(report: crash_test.Report) -> list[str]:
    return report.lost + report.inconsistent + report.bad_files + report.errors


def test_sqlite_server_killed_under_load_loses_nothing(tmp_path):
    report = crash_test.run(
        tmp_path / "data", kills=3, clients=4, database_url=None, processes=1, min_up=0.3, max_up=1.0, seed=13
    )
    assert report.kills == 3
    assert report.acknowledged > 0
    assert report.ok, _problems(report)
    assert "no problem found" in report.audit


def test_postgresql_two_servers_killed_one_at_a_time_lose_nothing(tmp_path):
    url = postgres_url()
    assert reset_postgres(url)
    report = crash_test.run(
        tmp_path / "data", kills=2, clients=4, database_url=url, processes=2, min_up=0.3, max_up=1.0, seed=13
    )
    assert report.kills == 2
    assert report.ledger.acked_while_other_down > 0
    assert report.ok, _problems(report)


def test_the_checks_find_lost_receipts_foreign_checkpoints_and_bad_files(service, tmp_path):
    sequencer = service.runtime.log.sequencer
    service.add_github_publisher("bench-project")
    token = service.upload_token()
    exchange = service.mint(service.github_token())
    assert exchange.status_code == 200
    content, content_type = upload_body("1.0.0", 4096)
    auth = {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}
    uploaded = service.client.post("/legacy/", content=content, headers={"Content-Type": content_type, **auth})
    assert uploaded.status_code == 200, uploaded.reason_phrase
    files_root = service.runtime.blobs.root

    def checked(ledger: crash_test.Ledger) -> crash_test.Report:
        report = crash_test.Report(ledger=ledger)
        crash_test.check(service.url, files_root, ledger, report, sequencer.verifier)
        return report

    honest = crash_test.Ledger(
        acks=[
            crash_test.Ack("exchange", exchange.json()["receipt"]),
            crash_test.Ack("upload", uploaded.json()["receipt"], uploaded.json()["upload"]),
        ],
        checkpoints={service.client.get("/checkpoint").text},
    )
    report = checked(honest)
    assert report.ok and report.acknowledged == 2, _problems(report)

    forged = dict(exchange.json()["receipt"], leaf_hash=hashlib.sha256(b"never logged").hexdigest())
    size = service.log_size()
    other_root = tlog.leaf_hash(b"another history")
    fork = note.sign(Checkpoint(sequencer.origin, size, other_root).to_text(), [sequencer.signer])
    ahead = note.sign(Checkpoint(sequencer.origin, size + 5, other_root).to_text(), [sequencer.signer])
    report = checked(crash_test.Ledger(acks=[crash_test.Ack("exchange", forged)], checkpoints={fork, ahead}))
    assert len(report.lost) == 1 and "does not verify" in report.lost[0]
    assert len(report.inconsistent) == 2, report.inconsistent

    upload = uploaded.json()["upload"]
    stored = service.runtime.blobs.path_for(upload["sha256"])
    os.chmod(stored, 0o600)
    stored.write_bytes(stored.read_bytes()[:-10])  # a half-written file under its final name
    report = checked(honest)
    assert report.lost == [] and report.inconsistent == []
    assert any("does not hash to its name" in problem for problem in report.bad_files), report.bad_files
    assert any(upload["filename"] in problem for problem in report.bad_files), report.bad_files
