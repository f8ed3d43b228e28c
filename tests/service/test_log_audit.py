"""The full log audit (app.services.log_audit)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app import tlog
from app.runtime import build_runtime
from app.services.log_audit import audit_sequencer
from app.storage.tables import LogEntry, LogTile, SignedCheckpoint

SIZE = 700  # tile/0/000 and tile/0/001 are interior, tile/0/002.p/188 the right edge


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


def test_tampered_interior_tile_is_found_though_start_up_misses_it(runtime, settings):
    table = LogTile.__table__
    data = runtime.log.sequencer.store.read_tile(0, 0, 256)
    forged = data[:64] + bytes(32) + data[96:]
    _tamper(runtime, LogTile, (table.c.level == 0) & (table.c.index == 0), data=forged)
    # the start-up check reads only the right edge, so it does not notice ...
    build_runtime(settings).close()
    # ... the full audit does
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

