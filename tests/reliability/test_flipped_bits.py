"""A single flipped bit in a stored tile, entry or checkpoint (the Yeti case) is found and never signed over.

What pubtrail promises (docs/design.md, "Sequencing and durability" and
"Self-audit and jobs"): damage to stored log data is found by the periodic
self-audit and when the service starts, and from then on no checkpoint is
signed until `pubtrail audit` finds the log sound.

How it is checked, on SQLite and on PostgreSQL: a log of 300 entries (level-0
tile 000 full, 001 partial; checkpoints at sizes 0, 1, 101, 201, 300) gets
one bit flipped, straight in the database, in one of: a full level-0 tile, the
right-edge level-0 tile, the level-1 tile, an old entry's bytes, an old entry's
stored leaf hash, the newest entry's bytes, an older checkpoint's signed note
(its body, its signature), an older checkpoint's root column, the latest
checkpoint's note. Then:

- a self-audit round (`app.jobs.self_audit`, as the scheduler runs it) reports
  the damage and halts the log; a batch is refused with `LogHalted` naming
  the reason, and the log's size and checkpoints stay as they were;
- the halt is lifted without auditing (only so the start-up is tested on its
  own); for a right-edge tile, a sequencer that reads the tiles afresh (as
  another process does) refuses to sign a batch over them; the service is rebuilt over the same database: it either refuses
  to start (`LogIntegrityError`, damage at the right edge) or starts halted
  with the reason (damage deeper in, found by the start-up self-audit round);
  either way nothing more is signed.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select, update

from app.jobs import self_audit
from app.runtime import build_runtime
from app.sequencer import LogHalted, LogIntegrityError
from app.services.self_audit import SelfAudit
from app.storage.tables import LogEntry, LogTile, SignedCheckpoint
from app.tlog import TiledTree

SIZE = 300
BATCHES = (1, 100, 100, 99)  # checkpoints at 0, 1, 101, 201, 300

_tiles, _entries, _checkpoints = LogTile.__table__, LogEntry.__table__, SignedCheckpoint.__table__


def _flip(value, bit: int):
    """`value` (bytes or str) with bit `bit` (counted from the start) inverted."""
    raw = bytearray(value.encode() if isinstance(value, str) else value)
    raw[bit // 8] ^= 1 << (bit % 8)
    return raw.decode() if isinstance(value, str) else bytes(raw)


def _note_bit(note: str, part: str) -> int:
    """A bit inside the root hash line of a checkpoint note ("body") or its signature."""
    lines = note.split("\n")
    if part == "body":
        offset = len(lines[0]) + len(lines[1]) + 2 + 5  # the sixth character of the root line
    else:
        offset = note.rindex(" ") + 10  # inside the signature's base64
    return offset * 8 + 1


# (name, table, where, column, which bit, what the self-audit says, refused at start-up)
DAMAGE = [
    ("full level-0 tile", _tiles, (_tiles.c.level == 0) & (_tiles.c.index == 0), "data",
     lambda v: 5 * 32 * 8 + 3, "entry 5 does not match its leaf in the level-0 tile", False),
    ("right-edge level-0 tile", _tiles, (_tiles.c.level == 0) & (_tiles.c.index == 1), "data",
     lambda v: 7 * 32 * 8, "stored tiles hash to", True),
    ("level-1 tile", _tiles, (_tiles.c.level == 1) & (_tiles.c.index == 0), "data",
     lambda v: 100, "stored tiles hash to", True),
    ("old entry's bytes", _entries, _entries.c.index == 5, "data",
     lambda v: 3, "entry 5 does not hash to its stored leaf hash", False),
    ("old entry's leaf hash", _entries, _entries.c.index == 17, "leaf_hash",
     lambda v: 255, "entry 17 does not hash to its stored leaf hash", False),
    ("newest entry's bytes", _entries, _entries.c.index == SIZE - 1, "data",
     lambda v: 0, f"entry {SIZE - 1} does not hash to its stored leaf hash", True),
    ("older checkpoint's note body", _checkpoints, _checkpoints.c.size == 201, "note",
     lambda v: _note_bit(v, "body"), "checkpoint 201 does not verify", False),
    ("older checkpoint's signature", _checkpoints, _checkpoints.c.size == 101, "note",
     lambda v: _note_bit(v, "signature"), "checkpoint 101 does not verify", False),
    ("older checkpoint's root column", _checkpoints, _checkpoints.c.size == 201, "root_hash",
     lambda v: 77, "signed checkpoint 201 does not match its stored size and root", False),
    ("latest checkpoint's note", _checkpoints, _checkpoints.c.size == SIZE, "note",
     lambda v: _note_bit(v, "signature"), f"checkpoint {SIZE} does not verify", True),
]


def _state(runtime) -> tuple[int, int]:
    store = runtime.log.sequencer.store
    return store.state().size, len(store.all_checkpoints())


def _refuses_to_sign(runtime, reason_part: str) -> None:
    before = _state(runtime)
    with pytest.raises(LogHalted, match="halted") as refused:
        runtime.log.sequencer.append_batch_sync([("test", b"after the damage")])
    assert reason_part in str(refused.value)
    assert _state(runtime) == before


@pytest.mark.parametrize(
    "name, table, where, column, bit, found, at_right_edge", DAMAGE, ids=[d[0] for d in DAMAGE]
)
def test_a_flipped_bit_is_found_and_never_signed_over(settings, name, table, where, column, bit, found, at_right_edge):
    runtime = build_runtime(settings)
    try:
        sequencer = runtime.log.sequencer
        start = 0
        for count in BATCHES:
            sequencer.append_batch_sync([("test", b"entry %d" % i) for i in range(start, start + count)])
            start += count
        assert _state(runtime) == (SIZE, len(BATCHES) + 1)
        with runtime.engine.begin() as conn:
            value = conn.execute(select(table.c[column]).where(where)).scalar_one()
            value = value if isinstance(value, str) else bytes(value)
            conn.execute(update(table).where(where).values({column: _flip(value, bit(value))}))

        # the self-audit, as the scheduler runs it, finds it and halts the log
        auditor = SelfAudit(sequencer.store, sequencer.verifier, sequencer.origin, rng=random.Random(3))
        report = self_audit(runtime, auditor)
        assert not report.ok and any(found in problem for problem in report.problems), report.problems
        assert found in sequencer.halted()
        _refuses_to_sign(runtime, found)
        sequencer.resume()  # not what an operator may do: only so that start-up is tested on its own
        if at_right_edge and table is _tiles:
            # a sequencer that reads the damaged right edge (another process's, or this
            # one's after a failed batch dropped its tile cache) refuses to sign over it
            sequencer.tree = TiledTree(sequencer.store)
            before = _state(runtime)
            with pytest.raises(LogIntegrityError, match="refusing to sign"):
                sequencer.append_batch_sync([("test", b"after the damage")])
            assert _state(runtime) == before
    finally:
        runtime.close()

    # the start-up check finds it again
    if at_right_edge:
        with pytest.raises(LogIntegrityError, match="refusing to sign"):
            build_runtime(settings)
        return
    restarted = build_runtime(settings)
    try:
        reason = restarted.log.sequencer.halted()
        assert reason is not None and reason.startswith("at start-up, self-audit: ") and found in reason, reason
        _refuses_to_sign(restarted, found)
    finally:
        restarted.close()
