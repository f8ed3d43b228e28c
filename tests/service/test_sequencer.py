"""The persistent log: group commit, receipts, checkpoints, integrity checks."""

from __future__ import annotations

import asyncio

import pytest

from app import tlog
from app.keys import KeyFileError
from app.runtime import build_runtime
from app.sequencer import LogIntegrityError
from app.tlog import Checkpoint, MemoryTree, note


def _verify_receipt(receipt, data: bytes, verifier_key: str) -> None:
    body, names = note.open(receipt.checkpoint, [note.Verifier(verifier_key)])
    checkpoint = Checkpoint.parse(body)
    assert checkpoint.size == receipt.tree_size and checkpoint.root_hash == receipt.root_hash
    assert receipt.leaf_hash == tlog.leaf_hash(data)
    tlog.verify_inclusion(receipt.leaf_hash, receipt.index, receipt.tree_size, receipt.inclusion_proof, receipt.root_hash)
    parsed = tlog.TlogProof.parse(receipt.tlog_proof())
    assert parsed.index == receipt.index and list(parsed.hashes) == receipt.inclusion_proof
    assert parsed.checkpoint == receipt.checkpoint


async def _append_many(runtime, payloads):
    await runtime.start()
    try:
        return await asyncio.gather(*(runtime.log.append(p, kind="test") for p in payloads))
    finally:
        await runtime.stop()


def test_empty_log_has_a_signed_checkpoint(settings):
    runtime = build_runtime(settings)
    try:
        latest = runtime.log.reader.latest()
        body, _ = note.open(latest.note, [note.Verifier(runtime.log.verifier_key)])
        assert Checkpoint.parse(body) == Checkpoint(settings.origin, 0, tlog.EMPTY_ROOT)
    finally:
        runtime.close()


def test_concurrent_appends_are_batched_and_every_receipt_verifies(settings):
    runtime = build_runtime(settings)
    try:
        payloads = [f'{{"n":{i}}}'.encode() for i in range(700)]
        receipts = asyncio.run(_append_many(runtime, payloads))
        assert sorted(r.index for r in receipts) == list(range(700))
        for payload, receipt in zip(payloads, receipts):
            _verify_receipt(receipt, payload, runtime.log.verifier_key)
        # fewer checkpoints than entries: appends were grouped
        sizes = {r.tree_size for r in receipts}
        assert len(sizes) < 700
        reference = MemoryTree()
        by_index = sorted(zip((r.index for r in receipts), payloads))
        reference.extend(p for _, p in by_index)
        reader = runtime.log.reader
        assert reader.latest().root_hash == reference.root()
        # every checkpoint ever signed is kept and consistent with the latest
        for size in sizes:
            stored = reader.checkpoint_at(size)
            assert stored.root_hash == reference.root(size)
            proof = reader.consistency(size)
            tlog.verify_consistency(size, 700, proof.hashes, stored.root_hash, reference.root())
    finally:
        runtime.close()


def test_log_survives_restart_and_keeps_growing(settings):
    runtime = build_runtime(settings)
    first = asyncio.run(_append_many(runtime, [b"a", b"b", b"c"]))
    runtime.close()
    runtime = build_runtime(settings)
    try:
        second = asyncio.run(_append_many(runtime, [b"d"]))
        assert second[0].index == 3
        reference = MemoryTree()
        reference.extend([b"a", b"b", b"c", b"d"])
        assert runtime.log.reader.latest().root_hash == reference.root()
        assert first[0].tree_size == 3
    finally:
        runtime.close()


def test_projection_refusal_rejects_only_that_entry(settings):
    runtime = build_runtime(settings)

    def refuse(conn, index):
        raise ValueError("not this one")

    def accept(conn, index):
        return f"projected {index}"

    async def run():
        await runtime.start()
        try:
            return await asyncio.gather(
                runtime.log.append(b"one", kind="test", projection=accept),
                runtime.log.append(b"two", kind="test", projection=refuse),
                runtime.log.append(b"three", kind="test", projection=accept),
                return_exceptions=True,
            )
        finally:
            await runtime.stop()

    try:
        one, two, three = asyncio.run(run())
        assert isinstance(two, ValueError)
        assert (one.index, three.index) == (0, 1)
        assert one.projected == "projected 0" and three.projected == "projected 1"
        assert runtime.log.reader.latest().size == 2
        entries = runtime.log.sequencer.store.entries(0, 10)
        assert [e.data for e in entries] == [b"one", b"three"]
    finally:
        runtime.close()


def test_oversized_entry_is_refused(settings):
    runtime = build_runtime(settings)
    try:
        with pytest.raises(ValueError, match="65535"):
            asyncio.run(_append_many(runtime, [b"x" * 70000]))
        assert runtime.log.reader.latest().size == 0
    finally:
        runtime.close()


def test_tampered_tile_refuses_to_start(settings):
    runtime = build_runtime(settings)
    asyncio.run(_append_many(runtime, [bytes([i % 256]) * 3 for i in range(300)]))
    store = runtime.log.sequencer.store
    tile = store.read_tile(0, 1, 44)  # the right edge: the partial tile every root reads
    flipped = bytes([tile[0] ^ 1]) + tile[1:]
    from app.storage.tables import LogTile

    with runtime.engine.begin() as conn:
        conn.execute(LogTile.__table__.update().where(LogTile.__table__.c.level == 0, LogTile.__table__.c.index == 1).values(data=flipped))
    runtime.close()
    with pytest.raises(LogIntegrityError, match="refusing to sign"):
        build_runtime(settings)


def test_tampered_checkpoint_refuses_to_start(settings):
    runtime = build_runtime(settings)
    asyncio.run(_append_many(runtime, [b"x", b"y"]))
    from app.storage.tables import SignedCheckpoint

    table = SignedCheckpoint.__table__
    latest = runtime.log.reader.latest()
    forged = latest.note.replace("\n2\n", "\n3\n", 1)
    with runtime.engine.begin() as conn:
        conn.execute(table.update().where(table.c.size == 2).values(note=forged))
    runtime.close()
    with pytest.raises(LogIntegrityError):
        build_runtime(settings)


def test_deleted_entry_refuses_to_start(settings):
    runtime = build_runtime(settings)
    asyncio.run(_append_many(runtime, [b"x", b"y"]))
    from app.storage.tables import LogEntry

    with runtime.engine.begin() as conn:
        conn.execute(LogEntry.__table__.delete().where(LogEntry.__table__.c.index == 1))
    runtime.close()
    with pytest.raises(LogIntegrityError, match="entries"):
        build_runtime(settings)


def test_other_origin_refuses_to_start(settings, make_settings, tmp_path):
    build_runtime(settings).close()
    other = make_settings(
        database_url=settings.effective_database_url,
        origin="other.example/log",
        data_dir=tmp_path / "other",
    )
    with pytest.raises(LogIntegrityError, match="configured for"):
        build_runtime(other)


def test_signing_key_for_another_origin_is_refused(settings, make_settings, tmp_path):
    other_key_settings = make_settings(origin="other.example/log", data_dir=tmp_path / "other")
    mixed = settings.with_overrides(signing_key_file=other_key_settings.key_file)
    with pytest.raises(KeyFileError, match="'other.example/log' but PUBTRAIL_ORIGIN is 'test.pubtrail.local/log'"):
        build_runtime(mixed)
