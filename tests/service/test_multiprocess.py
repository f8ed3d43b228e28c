"""Several OS processes append to one log at once (SQLite file and PostgreSQL).

Each process (tests/service/multiprocess_appender.py) builds its own runtime
from the same settings -- same database, same signing key -- at the same
moment on an empty database (so schema creation and log creation race too),
then appends with many concurrent appenders. The database is the only thing
they share: its lock must serialise the writers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from app import tlog
from app.config import Settings
from app.runtime import build_runtime
from app.tlog import MemoryTree, note

HELPER = Path(__file__).with_name("multiprocess_appender.py")
PROCESSES = 4
PER_PROCESS = 200
CONCURRENCY = 50


def _run_workers(settings: Settings, tmp_path: Path) -> list[dict]:
    start_file = tmp_path / "go"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(tmp_path / "workers"),
                "database_url": settings.effective_database_url,
                "origin": settings.origin,
                "key_file": str(settings.key_file),
                "batch_window": settings.batch_window,
                "start_file": str(start_file),
            }
        )
    )
    outputs = [tmp_path / f"out{worker}.jsonl" for worker in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(HELPER), str(config), str(worker), str(PER_PROCESS), str(CONCURRENCY), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for worker, out in enumerate(outputs)
    ]
    start_file.touch()
    failures = []
    for worker, process in enumerate(processes):
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        if process.returncode != 0:
            failures.append(f"worker {worker} exited {process.returncode}:\n{stderr.decode()[-3000:]}")
    assert not failures, "\n\n".join(failures)
    receipts = []
    for out in outputs:
        receipts.extend(json.loads(line) for line in out.read_text().splitlines())
    return receipts


def test_processes_append_concurrently_without_gaps_or_duplicates(settings, tmp_path):
    receipts = _run_workers(settings, tmp_path)
    total = PROCESSES * PER_PROCESS
    assert len(receipts) == total

    runtime = build_runtime(settings)  # also re-runs the start-up integrity check
    try:
        store = runtime.log.sequencer.store
        reader = runtime.log.reader
        verifier = note.Verifier(runtime.log.verifier_key)
        latest = reader.latest()
        assert latest.size == total
        entries = store.entries(0, total + 10)
        assert [e.index for e in entries] == list(range(total))
        datas = [e.data for e in entries]
        expected = {f'{{"worker":{w},"n":{n}}}'.encode() for w in range(PROCESSES) for n in range(PER_PROCESS)}
        counts = Counter(datas)
        assert set(counts) == expected and max(counts.values()) == 1
        assert all(e.leaf_hash == tlog.leaf_hash(e.data) for e in entries)

        reference = MemoryTree()
        reference.extend(datas)
        assert latest.root_hash == reference.root()
        assert store.state().root_hash == reference.root()
        for tile, data in reference.tiles():
            assert store.read_tile(tile.level, tile.index, tile.width) == data, tile.path

        # every receipt: the entry it names, a proof that verifies, a checkpoint that was stored
        by_index = {}
        for receipt in receipts:
            index = receipt["index"]
            assert index not in by_index
            by_index[index] = receipt
            assert entries[index].data == receipt["data"].encode()
            proof = receipt["inclusion_proof"]
            checkpoint = tlog.open_checkpoint(receipt["checkpoint"], [verifier], origin=settings.origin)
            assert checkpoint.size == proof["tree_size"] and checkpoint.root_hash.hex() == proof["root_hash"]
            tlog.verify_inclusion(
                bytes.fromhex(receipt["leaf_hash"]),
                index,
                checkpoint.size,
                [bytes.fromhex(h) for h in proof["hashes"]],
                checkpoint.root_hash,
            )
        assert sorted(by_index) == list(range(total))

        # every stored checkpoint verifies and is consistent with the final one
        checkpoint_sizes = _checkpoint_sizes(runtime)
        assert checkpoint_sizes[0] == 0 and checkpoint_sizes[-1] == total
        assert {r["inclusion_proof"]["tree_size"] for r in receipts} <= set(checkpoint_sizes)
        assert len(checkpoint_sizes) < total  # appends were grouped
        for size in checkpoint_sizes:
            stored = reader.checkpoint_at(size)
            parsed = tlog.open_checkpoint(stored.note, [verifier], origin=settings.origin)
            assert parsed.size == size and parsed.root_hash == reference.root(size) == stored.root_hash
            proof = reader.consistency(size, total)
            tlog.verify_consistency(size, total, proof.hashes, parsed.root_hash, latest.root_hash)
    finally:
        runtime.close()


def _checkpoint_sizes(runtime) -> list[int]:
    from sqlalchemy import select

    from app.storage.tables import SignedCheckpoint

    table = SignedCheckpoint.__table__
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(table.c.size).order_by(table.c.size)).scalars())


@pytest.fixture
def settings(make_settings, database_url):
    # a slightly longer batch window so each process forms real batches under contention
    return make_settings(database_url=database_url, batch_window=0.005)


def test_reader_sees_what_another_process_appended(settings):
    """A reader caches the latest checkpoint briefly; a request naming a newer size re-reads it."""
    import time

    writer, reader_side = build_runtime(settings), build_runtime(settings)
    try:
        reader = reader_side.log.reader
        assert reader.latest().size == 0  # now cached in this "process"
        writer.log.sequencer.append_batch_sync([("test", b"one"), ("test", b"two")])
        assert reader.inclusion(1, 2).tree_size == 2
        assert reader.checkpoint_at(2).size == 2
        assert reader.consistency(1, 2).second == 2
        assert reader.entry(1)[0].stored.data == b"two"
        assert reader.tile(0, 0, 2) == writer.log.reader.tile(0, 0, 2)
        time.sleep(reader.latest_max_age + 0.05)
        assert reader.latest().size == 2
    finally:
        writer.close()
        reader_side.close()
