"""The self-audit job against a real server: an honest log passes; a changed
entry, tile or checkpoint halts signing in every process, /healthz says why
with a 503, and `pubtrail audit` is what resumes it."""

from __future__ import annotations

import argparse
import random

from sqlalchemy import text

from app import tlog
from app.cli import audit as audit_cli
from app.jobs import new_self_audit, self_audit
from app.keys import load_key
from app.sequencer import LogHalted
from app.services.self_audit import SelfAudit
from app.tlog import Checkpoint, note


def _grow(service, count: int) -> None:
    for number in range(count):
        service.add_github_publisher(project=f"project-{number}")


def _auditor(service, **options) -> SelfAudit:
    sequencer = service.runtime.log.sequencer
    options.setdefault("rng", random.Random(7))
    return SelfAudit(sequencer.store, sequencer.verifier, sequencer.origin, **options)


def _execute(service, sql: str, **params) -> None:
    with service.runtime.engine.begin() as conn:
        conn.execute(text(sql), params)


def _metric(service, line_start: str) -> str:
    body = service.client.get("/metrics").text
    return next((line for line in body.splitlines() if line.startswith(line_start)), "")


def _assert_halted(service, reason_part: str) -> None:
    """Every later append fails with the reason, nothing more is signed, /healthz is 503."""
    size = service.log_size()
    health = service.client.get("/healthz")
    assert health.status_code == 503
    assert reason_part in health.json()["detail"]
    refused = service.client.post(
        "/api/v1/projects/late/publishers",
        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
        headers=service.admin,
    )
    assert refused.status_code == 503
    assert "halted" in refused.json()["detail"] and reason_part in refused.json()["detail"]
    assert service.log_size() == size
    assert _metric(service, 'pubtrail_self_audit_rounds_total{result="failed"}').endswith(" 1.0")


def test_honest_log_passes_and_the_cursor_walks_the_whole_log(service):
    _grow(service, 9)
    size = service.log_size()
    auditor = _auditor(service, sample=4, random_sample=0)
    seen: set[int] = set()
    for _ in range(3):
        report = self_audit(service.runtime, auditor)
        assert report.ok, report.problems
        assert report.size == size and len(report.entries) == 4
        seen.update(report.entries)
    assert seen == set(range(size))
    assert report.checkpoints == [size, size - 1, size - 2, size - 3]  # one batch per publisher added
    assert service.runtime.log.sequencer.halted() is None
    health = service.client.get("/healthz")
    assert health.status_code == 200 and health.json()["log_size"] == size
    assert _metric(service, 'pubtrail_self_audit_rounds_total{result="ok"}').endswith(" 3.0")


def test_the_scheduled_auditor_samples_random_entries_too(service):
    _grow(service, 3)
    report = self_audit(service.runtime, new_self_audit(service.runtime))
    assert report.ok and report.entries == [0, 1, 2]


def test_an_entry_changed_in_storage_halts_the_log(service):
    _grow(service, 5)
    _execute(service, 'UPDATE log_entry SET data = :data WHERE "index" = 2', data=b'{"kind":"forged"}')
    report = self_audit(service.runtime, _auditor(service, sample=256))
    assert not report.ok
    assert report.problems == ["entry 2 does not hash to its stored leaf hash"]
    _assert_halted(service, "entry 2 does not hash to its stored leaf hash")


def test_an_entry_and_its_leaf_hash_changed_together_do_not_match_the_tile(service):
    _grow(service, 5)
    forged = b'{"kind":"forged"}'
    _execute(
        service, 'UPDATE log_entry SET data = :data, leaf_hash = :leaf WHERE "index" = 3',
        data=forged, leaf=tlog.leaf_hash(forged),
    )
    report = self_audit(service.runtime, _auditor(service))
    assert report.problems == ["entry 3 does not match its leaf in the level-0 tile"]
    _assert_halted(service, "entry 3 does not match its leaf")


def test_a_tile_changed_in_storage_is_a_root_mismatch(service):
    _grow(service, 5)
    with service.runtime.engine.connect() as conn:
        data = bytes(conn.execute(text("SELECT data FROM log_tile WHERE level = 0 AND \"index\" = 0")).scalar())
    forged = data[:32] + bytes(32) + data[64:]  # leaf 1 replaced
    _execute(service, 'UPDATE log_tile SET data = :data WHERE level = 0 AND "index" = 0', data=forged)
    report = self_audit(service.runtime, _auditor(service))
    assert len(report.problems) == 1 and report.problems[0].startswith("stored tiles hash to ")
    assert "but the signed checkpoint says" in report.problems[0]
    _assert_halted(service, "stored tiles hash to")


def test_an_older_checkpoint_inconsistent_with_the_latest_halts_the_log(service):
    """A checkpoint signed with the log's own key, at a size the log passed, whose
    root is not the tree's at that size: the log forked."""
    _grow(service, 5)
    size = service.log_size()
    settings = service.runtime.settings
    signer, _ = load_key(settings.key_file, settings.origin)
    other_root = bytes(range(32))
    forged = note.sign(Checkpoint(settings.origin, size - 1, other_root).to_text(), [signer])
    _execute(
        service, "UPDATE signed_checkpoint SET note = :note, root_hash = :root WHERE size = :size",
        note=forged, root=other_root, size=size - 1,
    )
    report = self_audit(service.runtime, _auditor(service))
    assert len(report.problems) == 1
    assert report.problems[0].startswith("stored tiles hash to ") and f"at size {size - 1}" in report.problems[0]
    _assert_halted(service, f"at size {size - 1}")


def test_a_checkpoint_that_does_not_verify_halts_the_log(service):
    _grow(service, 3)
    size = service.log_size()
    _execute(service, "UPDATE signed_checkpoint SET note = :note WHERE size = :size", note="garbage\n", size=size - 2)
    report = self_audit(service.runtime, _auditor(service))
    assert report.problems and report.problems[0].startswith(f"checkpoint {size - 2} does not verify")
    _assert_halted(service, f"checkpoint {size - 2} does not verify")


def test_the_halt_is_logged_once_and_only_a_clean_full_audit_resumes_signing(service, monkeypatch, caplog):
    _grow(service, 3)
    sequencer = service.runtime.log.sequencer
    with service.runtime.engine.connect() as conn:
        original = conn.execute(text('SELECT data FROM log_entry WHERE "index" = 1')).scalar()
    _execute(service, 'UPDATE log_entry SET data = :data WHERE "index" = 1', data=b"{}")
    caplog.set_level("ERROR", logger="pubtrail.sequencer")
    auditor = _auditor(service)
    for _ in range(2):
        assert not self_audit(service.runtime, auditor).ok
    assert [r.getMessage() for r in caplog.records].count(
        "log halted, no checkpoint will be signed: self-audit: entry 1 does not hash to its stored leaf hash"
    ) == 1
    assert _metric(service, 'pubtrail_self_audit_rounds_total{result="failed"}').endswith(" 2.0")

    settings = service.runtime.settings
    for name, value in {
        "PUBTRAIL_DATA_DIR": str(settings.data_dir),
        "PUBTRAIL_DATABASE_URL": settings.effective_database_url,
        "PUBTRAIL_ORIGIN": settings.origin,
        "PUBTRAIL_SIGNING_KEY_FILE": str(settings.key_file),
    }.items():
        monkeypatch.setenv(name, value)
    assert audit_cli.run(argparse.Namespace()) == 1  # still damaged: stays halted
    assert sequencer.halted() is not None
    _execute(service, 'UPDATE log_entry SET data = :data WHERE "index" = 1', data=bytes(original))
    assert self_audit(service.runtime, auditor).ok  # a clean round does not resume by itself
    assert service.client.get("/healthz").status_code == 503
    assert audit_cli.run(argparse.Namespace()) == 0
    assert sequencer.halted() is None
    assert service.client.get("/healthz").status_code == 200
    service.add_github_publisher(project="after-the-audit")


def test_halt_refuses_synchronous_batches_too(service):
    sequencer = service.runtime.log.sequencer
    assert sequencer.halt("operator test") is True
    assert sequencer.halt("a second reason") is False  # the first reason is kept
    try:
        sequencer.append_batch_sync([("publisher", b"{}")])
    except LogHalted as exc:
        assert "operator test" in str(exc)
    else:
        raise AssertionError("a halted log signed a batch")
    assert sequencer.resume() is True and sequencer.halted() is None


def test_an_interior_tile_rewritten_with_its_entry_fails_the_inclusion_proof(service):
    """Entry 5, its leaf hash and its leaf in the full level-0 tile 0 all rewritten
    alike: the root (from the level-1 tile) still matches; only the proof tells."""
    sequencer = service.runtime.log.sequencer
    sequencer.append_batch_sync([("publisher", b'{"n":%d}' % n) for n in range(300)])
    forged = b'{"n":"forged"}'
    with service.runtime.engine.connect() as conn:
        tile = bytes(conn.execute(text('SELECT data FROM log_tile WHERE level = 0 AND "index" = 0')).scalar())
    leaf = tlog.leaf_hash(forged)
    _execute(service, 'UPDATE log_entry SET data = :data, leaf_hash = :leaf WHERE "index" = 5', data=forged, leaf=leaf)
    _execute(
        service, 'UPDATE log_tile SET data = :data WHERE level = 0 AND "index" = 0',
        data=tile[: 5 * 32] + leaf + tile[6 * 32 :],
    )
    clean = _auditor(service, sample=8, random_sample=0)
    clean.cursor = 256  # another tile: nothing wrong there
    assert self_audit(service.runtime, clean).ok
    auditor = _auditor(service, sample=8, random_sample=0)
    auditor.cursor = 0
    report = self_audit(service.runtime, auditor)
    assert report.problems == [
        "the level-0 tile of entries 0..255 is not included in the signed root at size 300 "
        "(inclusion proof of entry 0: " + report.problems[0].split("(inclusion proof of entry 0: ", 1)[1]
    ]
    _assert_halted(service, "the level-0 tile of entries 0..255 is not included")
