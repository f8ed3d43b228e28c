"""The full log audit (app.services.log_audit)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import update

from app import tlog
from app.entries import UploadEntry
from app.runtime import build_runtime
from app.services import log_audit
from app.storage.tables import LogEntry, LogTile, SignedCheckpoint

SIZE = 700  # tile/0/000 and tile/0/001 are interior, tile/0/002.p/188 the right edge


def audit_sequencer(sequencer, **options):
    """The tree, checkpoint and file audit: these logs hold synthetic entries that are
    no entry kind, so the query-table replay (tests/e2e/test_projection_audit.py) is off."""
    return log_audit.audit_sequencer(sequencer, projections=False, **options)


@pytest.fixture
def runtime(settings):
    runtime = build_runtime(settings)
    sequencer = runtime.log.sequencer
    for start in range(0, SIZE, 100):
        sequencer.append_batch_sync([("test", b"entry %d" % i) for i in range(start, start + 100)])
    yield runtime
    runtime.close()


def _tamper(runtime, table, where, **values):
    with runtime.engine.begin() as conn:
        conn.execute(update(table.__table__).where(where).values(**values))


def test_clean_log_passes(runtime):
    report = audit_sequencer(runtime.log.sequencer)
    assert report.ok, report.summary()
    assert (report.size, report.entries, report.checkpoints) == (SIZE, SIZE, 8)
    assert report.tiles == len(tlog.tiles_for_size(SIZE))


def test_tampered_interior_tile_is_found_though_start_up_starts(runtime, settings):
    table = LogTile.__table__
    data = runtime.log.sequencer.store.read_tile(0, 0, 256)
    forged = data[:64] + bytes(32) + data[96:]
    _tamper(runtime, LogTile, (table.c.level == 0) & (table.c.index == 0), data=forged)
    # the start-up check reads only the right edge, so the service starts (its
    # start-up self-audit round halts signing: tests/reliability/test_flipped_bits.py) ...
    build_runtime(settings).close()
    # ... and the full audit names the tile
    report = audit_sequencer(runtime.log.sequencer)
    assert not report.ok
    assert any("tile (0, 0)" in p and "differs" in p for p in report.problems), report.problems


def test_tampered_entry_is_found(runtime):
    table = LogEntry.__table__
    _tamper(runtime, LogEntry, table.c.index == 3, data=b"entry 3, forged")
    report = audit_sequencer(runtime.log.sequencer)
    assert any(p.startswith("entry 3:") for p in report.problems), report.problems
    # rewriting the leaf hash too does not help: the tree then disagrees with the tiles and checkpoints
    _tamper(runtime, LogEntry, table.c.index == 3, leaf_hash=tlog.leaf_hash(b"entry 3, forged"))
    report = audit_sequencer(runtime.log.sequencer)
    assert not report.ok
    assert any("root different" in p for p in report.problems), report.problems
    assert any("tile (0, 0)" in p for p in report.problems), report.problems
    assert any("inconsistent checkpoint" in p for p in report.problems), report.problems


def test_missing_entry_is_found(runtime):
    with runtime.engine.begin() as conn:
        conn.execute(LogEntry.__table__.delete().where(LogEntry.__table__.c.index == 10))
    report = audit_sequencer(runtime.log.sequencer)
    assert any("index 11 found where 10" in p for p in report.problems), report.problems


def test_old_checkpoint_tampered_is_found(runtime):
    table = SignedCheckpoint.__table__
    stored = runtime.log.sequencer.store.checkpoint(300)
    forged = stored.note.replace("\n300\n", "\n301\n", 1)
    _tamper(runtime, SignedCheckpoint, table.c.size == 300, note=forged)
    report = audit_sequencer(runtime.log.sequencer)
    assert any("checkpoint at size 300 does not verify" in p for p in report.problems), report.problems



def _upload_entry(filename: str, data: bytes) -> UploadEntry:
    return UploadEntry(
        time="2026-01-01T00:00:00Z", project="demo", version="1.0", filename=filename,
        packagetype="bdist_wheel", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        blake2b_256=hashlib.blake2b(data, digest_size=32).hexdigest(), requires_python=None,
        token_id="0" * 16, exchange_index=0, publisher={},
    )


def test_every_stored_file_is_checked_against_its_upload_entry(runtime):
    """A missing file, one with other bytes of the same size, one cut short: each reported;
    the intact one is not."""
    blobs = runtime.blobs
    contents = {name: b"%s wheel bytes" % name.encode() for name in ("intact", "missing", "altered", "short")}
    uploads = {name: _upload_entry(f"demo-1.0-py3-none-{name}.whl", data) for name, data in contents.items()}
    runtime.log.sequencer.append_batch_sync([("upload", entry.encode()) for entry in uploads.values()])
    for name, data in contents.items():
        path = blobs.path_for(uploads[name].sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert audit_sequencer(runtime.log.sequencer, blobs=blobs).ok

    blobs.path_for(uploads["missing"].sha256).unlink()
    blobs.path_for(uploads["altered"].sha256).write_bytes(contents["altered"].upper())
    blobs.path_for(uploads["short"].sha256).write_bytes(contents["short"][:-1])
    report = audit_sequencer(runtime.log.sequencer, blobs=blobs)
    assert report.files == 3, report.summary()
    problems = "\n".join(report.problems)
    assert f"({uploads['missing'].filename}): the stored file {uploads['missing'].sha256} is missing" in problems
    altered = [p for p in report.problems if uploads["altered"].filename in p]
    assert len(altered) == 2 and "sha256" in altered[0] and "blake2b-256" in altered[1], altered
    short = [p for p in report.problems if uploads["short"].filename in p]
    assert any(f"has {len(contents['short']) - 1} bytes, the entry says {len(contents['short'])}" in p for p in short)
    assert not any("intact" in p for p in report.problems)
    assert "3 files checked" in report.summary()
    # without the store, files are not looked at
    assert audit_sequencer(runtime.log.sequencer).ok
