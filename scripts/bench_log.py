#!/usr/bin/env python3
"""Benchmark the persistent log: durable appends, receipt latency, proofs from storage, size.

    .venv/bin/python scripts/bench_log.py [--entries 1000000] [--postgres URL] [--skip-postgres]

Prints, for SQLite (a file in WAL mode with synchronous=FULL, as the service
opens it) and PostgreSQL (skipped with a message when unreachable):

1. durable appends/s through the group-commit path (`runtime.log.append`,
   in-process, each call returning only once its batch is committed and a
   checkpoint covering it is signed) with 1, 16 and 256 concurrent appenders,
   with p50/p99 latency from the call to the receipt;
2. inclusion proof latency from storage (`LogReader.inclusion`) in a log of
   `--entries` entries (default 1,000,000, built with synchronous batches of
   10,000 through `Sequencer.append_batch_sync`): "cold" is a fresh
   `LogReader` per proof (an empty process-level tile cache; the database's
   and the OS's caches stay warm -- dropping them needs root), "warm" is one
   reader answering proofs whose tiles it has already read;
3. database bytes per entry for that log (entries of about 400 bytes, the
   size of a token-exchange entry).

The PostgreSQL database named by --postgres (default: $PUBTRAIL_BENCH_DATABASE_URL,
else postgresql+psycopg://postgres@127.0.0.1:5432/pubtrail_bench) is emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from app.config import Settings  # noqa: E402
from app.keys import write_new_key  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from app.services.log_reader import LogReader  # noqa: E402

ORIGIN = "bench.pubtrail.local/log"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/pubtrail_bench"


def entry(n: int) -> bytes:
    """About 400 bytes of JSON, unique per n (the size of an exchange entry)."""
    return (
        b'{"kind":"exchange","n":%d,"issuer":"https://token.actions.githubusercontent.com",'
        b'"claims":{"repository":"example-org/project-%d","workflow_ref":"example-org/project-%d/'
        b'.github/workflows/release.yml@refs/tags/v1.%d","sha":"%040x","run_id":"%d"},'
        b'"token_id":"%032x","projects":["project-%d"],"expires_at":%d}' % (n, n, n, n, n * 7919, n, n, n, n)
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def reset_postgres(url: str) -> bool:
    from sqlmodel import SQLModel

    import app.storage.tables  # noqa: F401

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        base, _, name = url.rpartition("/")
        try:  # create the bench database on a reachable server
            admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            engine = create_engine(url)
        except Exception:  # noqa: BLE001
            print(f"PostgreSQL at {url} is unreachable ({type(exc).__name__}: {str(exc).splitlines()[0]}); skipped")
            return False
    SQLModel.metadata.drop_all(engine)
    engine.dispose()
    return True


def make_settings(workdir: Path, url: str | None, name: str) -> Settings:
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    key = data_dir / "log-signing.key"
    if not key.exists():
        write_new_key(key, ORIGIN)
    return Settings(
        data_dir=data_dir,
        database_url=url or f"sqlite:///{data_dir / 'log.sqlite3'}",
        origin=ORIGIN,
        signing_key_file=key,
    )


def bench_appends(settings: Settings, appenders: int, count: int) -> dict:
    runtime = build_runtime(settings)
    start_size = runtime.log.reader.latest().size
    latencies: list[float] = []
    batches: list[int] = []
    runtime.log.sequencer.on_batch = lambda size, seconds: batches.append(size)

    async def run() -> float:
        await runtime.start()
        counter = iter(range(start_size, start_size + count))

        async def appender():
            for n in counter:
                began = time.perf_counter()
                await runtime.log.append(entry(n), kind="bench")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(appender() for _ in range(appenders)))
        elapsed = time.perf_counter() - began
        await runtime.stop()
        return elapsed

    try:
        elapsed = asyncio.run(run())
        assert runtime.log.reader.latest().size == start_size + count
    finally:
        runtime.close()
    return {
        "rate": count / elapsed,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "batch": statistics.mean(batches) if batches else 0,
    }


def build_big_log(settings: Settings, entries: int, batch: int = 10_000) -> float:
    runtime = build_runtime(settings)
    sequencer = runtime.log.sequencer
    size = runtime.log.reader.latest().size
    began = time.perf_counter()
    try:
        while size < entries:
            count = min(batch, entries - size)
            sequencer.append_batch_sync([("bench", entry(n)) for n in range(size, size + count)])
            size += count
    finally:
        runtime.close()
    return time.perf_counter() - began


def bench_proofs(settings: Settings, samples: int) -> dict:
    runtime = build_runtime(settings)
    try:
        reader = runtime.log.reader
        store, size = reader.store, reader.latest().size
        rng = random.Random(1)
        indexes = [rng.randrange(size) for _ in range(samples)]
        cold = []
        for index in indexes:
            fresh = LogReader(store, reader.verifier_key, reader.origin)
            began = time.perf_counter()
            fresh.inclusion(index)
            cold.append(time.perf_counter() - began)
        warm_reader = LogReader(store, reader.verifier_key, reader.origin)
        for index in indexes:
            warm_reader.inclusion(index)
        warm = []
        for index in indexes:
            began = time.perf_counter()
            warm_reader.inclusion(index)
            warm.append(time.perf_counter() - began)
    finally:
        runtime.close()
    return {
        "size": size,
        "cold_p50": percentile(cold, 0.5) * 1000,
        "cold_p99": percentile(cold, 0.99) * 1000,
        "warm_p50": percentile(warm, 0.5) * 1000,
        "warm_p99": percentile(warm, 0.99) * 1000,
    }


def bytes_per_entry(settings: Settings, entries: int) -> tuple[float, str]:
    url = settings.effective_database_url
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                path = Path(url.split("///", 1)[1])
                total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
                how = "database file after a WAL checkpoint"
            else:
                total = conn.execute(
                    text(
                        "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY["
                        "'log_entry','log_tile','signed_checkpoint','log_state']::regclass[]) AS c"
                    )
                ).scalar_one()
                how = "pg_total_relation_size of the log tables (with indexes, TOAST)"
    finally:
        engine.dispose()
    return total / entries, how


def run_database(label: str, url: str | None, args, workdir: Path) -> None:
    print(f"\n== {label} ==")
    if url is not None and not reset_postgres(url):
        return
    settings = make_settings(workdir, url, f"{label}-appends")
    for appenders, count in ((1, args.appends_1), (16, args.appends_16), (256, args.appends_256)):
        if not count:
            continue
        result = bench_appends(settings, appenders, count)
        print(
            f"appends, {appenders:3d} appenders: {result['rate']:9.0f} durable appends/s  "
            f"receipt p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
            f"(mean batch {result['batch']:.0f}, {count} appends)"
        )
    if url is not None:
        reset_postgres(url)
    big = make_settings(workdir, url, f"{label}-big")
    seconds = build_big_log(big, args.entries)
    print(f"built a {args.entries}-entry log in {seconds:.1f} s ({args.entries / seconds:.0f} entries/s, sync batches of 10,000)")
    proofs = bench_proofs(big, args.samples)
    print(
        f"inclusion proof from storage at size {proofs['size']}: "
        f"cold p50 {proofs['cold_p50']:.3f} ms p99 {proofs['cold_p99']:.3f} ms; "
        f"warm p50 {proofs['warm_p50']:.3f} ms p99 {proofs['warm_p99']:.3f} ms ({args.samples} proofs)"
    )
    per_entry, how = bytes_per_entry(big, args.entries)
    print(f"database bytes per entry: {per_entry:.0f} ({how}; entries of ~{len(entry(args.entries // 2))} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the log for proofs and bytes/entry")
    parser.add_argument("--samples", type=int, default=1000, help="inclusion proofs timed, cold and warm")
    parser.add_argument("--appends-1", type=int, default=300, help="appends timed with 1 appender (0: skip)")
    parser.add_argument("--appends-16", type=int, default=5_000, help="appends timed with 16 appenders (0: skip)")
    parser.add_argument("--appends-256", type=int, default=60_000, help="appends timed with 256 appenders (0: skip)")
    parser.add_argument("--postgres", default=os.environ.get("PUBTRAIL_BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--workdir", type=Path, help="where the SQLite files go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="pubtrail-bench-", dir=args.workdir) as workdir:
        if not args.skip_sqlite:
            run_database("SQLite (WAL, synchronous=FULL)", None, args, Path(workdir))
        if not args.skip_postgres:
            run_database("PostgreSQL", args.postgres, args, Path(workdir))


if __name__ == "__main__":
    main()
