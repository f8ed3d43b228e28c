#!/usr/bin/env python3
"""Benchmark the self-audit: what one round costs, and what the halt check adds to a batch.

    .venv/bin/python scripts/bench_self_audit.py [--entries 1000000] [--rounds 30] [--postgres URL]

Builds a log of `--entries` entries of about 400 bytes (synchronous batches
of 10,000 through `Sequencer.append_batch_sync`) on SQLite (and on
PostgreSQL with --postgres; that database is emptied first), then prints:

1. p50/p99 of one self-audit round (`SelfAudit.run` with each sample size of
   `--samples`: that many consecutive entries plus 16 random ones, each rehashed and proven, the
   root from the stored tiles, the 4 newest checkpoints) over `--rounds`
   rounds, each with a fresh tile tree as the job has;
2. p50 of the halt check every batch makes (one primary-key read of
   `log_halt` on the write connection).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

import app.storage.tables  # noqa: E402,F401
from app.config import Settings  # noqa: E402
from app.jobs import new_self_audit  # noqa: E402
from app.keys import write_new_key  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from app.sequencer import _HALT_READ  # noqa: E402
from scripts.bench_log import ORIGIN, entry, percentile  # noqa: E402



def bench(label: str, database_url: str | None, entries: int, rounds: int, samples: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        key = data / "log.key"
        write_new_key(key, ORIGIN)
        settings = Settings(data_dir=data, database_url=database_url, origin=ORIGIN, signing_key_file=key, dev=True)
        runtime = build_runtime(settings)
        sequencer = runtime.log.sequencer
        started = time.perf_counter()
        for first in range(0, entries, 10_000):
            sequencer.append_batch_sync([("exchange", entry(n)) for n in range(first, min(entries, first + 10_000))])
        print(f"{label}: built {entries:,} entries in {time.perf_counter() - started:.0f} s")
        for sample in samples:
            auditor = new_self_audit(runtime)
            auditor.sample = sample
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                report = auditor.run()
                times.append(time.perf_counter() - t)
                assert report.ok, report.problems
            print(
                f"{label}: self-audit round with sample {sample} ({len(report.entries)} entries, "
                f"{len(report.checkpoints)} checkpoints) p50 {statistics.median(times) * 1000:.1f} ms, "
                f"p99 {percentile(times, 0.99) * 1000:.1f} ms"
            )
        reads = []
        with sequencer.store.engine.connect() as conn:
            for _ in range(2000):
                t = time.perf_counter()
                conn.execute(_HALT_READ).scalar()
                reads.append(time.perf_counter() - t)
        print(f"{label}: halt check per batch p50 {statistics.median(reads) * 1e6:.0f} µs")
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--samples", default="256,4096", help="PUBTRAIL_SELF_AUDIT_SAMPLE values to time")
    args = parser.parse_args()
    samples = [int(value) for value in args.samples.split(",")]
    bench("SQLite", None, args.entries, args.rounds, samples)
    if args.postgres:
        engine = create_engine(args.postgres)
        SQLModel.metadata.drop_all(engine)
        engine.dispose()
        bench("PostgreSQL", args.postgres, args.entries, args.rounds, samples)


if __name__ == "__main__":
    main()
