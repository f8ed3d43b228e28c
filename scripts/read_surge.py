#!/usr/bin/env python3
"""Read surge: many concurrent readers of tiles, entries and proofs while writes go on.

    .venv/bin/python scripts/read_surge.py [--entries 300000] [--readers 64] [--writers 4]
        [--baseline 15] [--duration 30] [--tile-cache-mib 8] [--processes 1] [--database-url URL]
        [--write-p99-factor 4] [--rss-bound-mib 160] [--read-concurrency N]

1. Builds a log of `--entries` entries (SQLite, or the PostgreSQL database
   `--database-url`, emptied first) through the sequencer's batch path, as
   scripts/bench_reads.py does, and starts `pubtrail serve` on it with
   `PUBTRAIL_TILE_CACHE_MIB=--tile-cache-mib` (and `PUBTRAIL_READ_CONCURRENCY`
   when `--read-concurrency` is given). The default (8 MiB) is smaller
   than the log's tiles (about 19 MiB at 300,000 entries), so the readers
   keep evicting: the bound is exercised, not just never reached.
2. Baseline: `--writers` keep-alive clients exchange OIDC tokens (each one
   logged and durable before its answer) for `--baseline` seconds, alone.
3. Surge: the same writers for `--duration` seconds while `--readers`
   keep-alive clients (in their own process, so the writers' timing is not
   the readers' event loop) read random level-0 tiles, entry bundles (gzip),
   entries with their proofs, inclusion and consistency proofs and the
   checkpoint across the whole log.

Prints the server's resident memory (all its processes) before, at its peak
during and after the surge, the read throughput and latency per kind, and
the writes' p50/p99 in the baseline and in the surge. Exits 1 when any
request failed or timed out (`--timeout`, 30 s), when the writes' p99 in the
surge exceeded `--write-p99-factor` times their p99 in the baseline (the
bound is relative because this machine's own load moves both), or when the
server's memory grew by more than `--rss-bound-mib` from the start of the
baseline to its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.keys import write_new_key  # noqa: E402
from scripts.bench_exchange import ADMIN, free_port, start_server  # noqa: E402
from scripts.bench_log import ORIGIN, build_big_log, reset_postgres  # noqa: E402
from scripts.load_test import Workload, proc_rss  # noqa: E402
from scripts.loadgen import CONNECTION_LOST, TIMED_OUT, run_mix  # noqa: E402

READS = {"tile": 25, "bundle": 15, "entry": 20, "inclusion": 20, "consistency": 10, "checkpoint": 10}
WRITES = {"exchange": 1}


def _run(url: str, data_dir: str, size: int, mix: dict, clients: int, duration: float, timeout: float,
         seed: int, out) -> None:
    """One load process: `clients` connections of `mix` for `duration` seconds; results go to `out`."""
    workload = Workload(url, Path(data_dir), None, size, [], seed=seed, mix=mix)
    out.put(asyncio.run(run_mix(url, workload.next, clients, duration, timeout=timeout)))


def start(url, data_dir, size, mix, clients, duration, timeout, seed):
    queue = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(
        target=_run, args=(url, str(data_dir), size, mix, clients, duration, timeout, seed, queue))
    process.start()
    return process, queue


class RssSampler(threading.Thread):
    """Samples the server's resident memory (all its processes) every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.done = pid, interval, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, proc_rss(self.pid))
            self.done.wait(self.interval)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def summary(results: dict, kinds) -> tuple[int, list[float], int]:
    """(requests, every latency, requests without a 200) over `kinds`."""
    count, latencies, bad = 0, [], 0
    for kind in kinds:
        result = results.get(kind)
        if result is not None:
            count += len(result.latencies)
            latencies += result.latencies
            bad += sum(n for status, n in result.statuses.items() if status != 200)
    latencies.sort()
    return count, latencies, bad


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=300_000)
    parser.add_argument("--readers", type=int, default=64, help="concurrent reading connections")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writing connections (token exchanges)")
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of writes alone")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the surge")
    parser.add_argument("--tile-cache-mib", type=float, default=8.0, help="the server's PUBTRAIL_TILE_CACHE_MIB")
    parser.add_argument("--processes", type=int, default=1, help="server processes (serve --workers N)")
    parser.add_argument("--database-url", help="PostgreSQL URL (emptied first); default: SQLite")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--write-p99-factor", type=float, default=4.0,
                        help="bound on the writes' p99 in the surge, as a multiple of their baseline p99")
    parser.add_argument("--read-concurrency", type=int, help="the server's PUBTRAIL_READ_CONCURRENCY")
    parser.add_argument("--rss-bound-mib", type=float, default=160.0)
    args = parser.parse_args()

    if args.database_url and not reset_postgres(args.database_url):
        return 1
    with tempfile.TemporaryDirectory(prefix="pubtrail-read-surge-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_new_key(data_dir / "log-signing.key", ORIGIN)
        settings = Settings(data_dir=data_dir, origin=ORIGIN, signing_key_file=data_dir / "log-signing.key",
                            database_url=args.database_url)
        built = build_big_log(settings, args.entries)
        print(f"machine: {os.cpu_count()} cores (shared); log of {args.entries:,} entries built in {built:.0f} s; "
              f"server: {args.processes} process(es), {'PostgreSQL' if args.database_url else 'SQLite'}, "
              f"PUBTRAIL_TILE_CACHE_MIB={args.tile_cache_mib:g}, PUBTRAIL_READ_CONCURRENCY="
              f"{'default' if args.read_concurrency is None else args.read_concurrency}")
        extra = {"PUBTRAIL_TILE_CACHE_MIB": str(args.tile_cache_mib)}  # start_server names the same ORIGIN
        if args.database_url:
            extra["PUBTRAIL_DATABASE_URL"] = args.database_url
        if args.read_concurrency is not None:
            extra["PUBTRAIL_READ_CONCURRENCY"] = str(args.read_concurrency)
        port = free_port()
        server = start_server(data_dir, port, args.processes, extra)
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(f"{url}/api/v1/projects/bench-project/publishers", headers={"Authorization": f"Bearer {ADMIN}"},
                       json={"provider": "github", "repository": "bench/project", "repository_owner_id": "7",
                             "workflow": "release.yml"}).raise_for_status()
            size = httpx.get(url + "/api/v1/log").json()["size"]
            rss_start = proc_rss(server.pid)
            sampler = RssSampler(server.pid)
            sampler.start()
            writer, wq = start(url, data_dir, size, WRITES, args.writers, args.baseline, args.timeout, 1)
            baseline = wq.get()
            writer.join()
            rss_before = proc_rss(server.pid)
            writer, wq = start(url, data_dir, size, WRITES, args.writers, args.duration, args.timeout, 2)
            reader, rq = start(url, data_dir, size, READS, args.readers, args.duration, args.timeout, 3)
            surge_writes, reads = wq.get(), rq.get()
            writer.join()
            reader.join()
            peak = sampler.stop()
            rss_after = proc_rss(server.pid)
            time.sleep(1.0)  # another server process may answer from a latest checkpoint up to 0.5 s old
            final = httpx.get(url + "/api/v1/log").json()["size"]
        finally:
            server.terminate()
            server.wait(timeout=30)

    mib = 2**20
    print(f"load average (1/5/15 min) after the surge: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"server RSS: {rss_start / mib:.0f} MiB at the start, {rss_before / mib:.0f} MiB before the surge, "
          f"peak {peak / mib:.0f} MiB during it, {rss_after / mib:.0f} MiB after it")
    read_count, read_lat, read_bad = summary(reads, READS)
    elapsed = next(iter(reads.values())).elapsed
    print(f"reads: {args.readers} clients, {read_count:,} requests in {elapsed:.1f} s = {read_count / elapsed:,.0f}/s, "
          f"p50 {pct(read_lat, 0.5):.1f} ms, p99 {pct(read_lat, 0.99):.1f} ms, not 200: {read_bad}")
    for kind in READS:
        count, latencies, bad = summary(reads, [kind])
        print(f"  {kind:<12} {count / elapsed:>7,.0f}/s  p50 {pct(latencies, 0.5):>7.1f} ms  "
              f"p99 {pct(latencies, 0.99):>7.1f} ms  not 200: {bad}")
    base_count, base_lat, base_bad = summary(baseline, WRITES)
    surge_count, surge_lat, surge_bad = summary(surge_writes, WRITES)
    print(f"writes (token exchanges, {args.writers} clients): baseline {base_count / args.baseline:,.0f}/s, "
          f"p50 {pct(base_lat, 0.5):.1f} ms, p99 {pct(base_lat, 0.99):.1f} ms; during the surge "
          f"{surge_count / args.duration:,.0f}/s, p50 {pct(surge_lat, 0.5):.1f} ms, p99 {pct(surge_lat, 0.99):.1f} ms")
    timeouts = sum(r.statuses.get(TIMED_OUT, 0) + r.statuses.get(CONNECTION_LOST, 0)
                   for group in (reads, baseline, surge_writes) for r in group.values())
    acknowledged = sum(r.statuses.get(200, 0) for group in (baseline, surge_writes) for r in group.values())
    print(f"timeouts or broken connections: {timeouts}; log {size:,} -> {final:,} entries "
          f"({acknowledged:,} acknowledged writes)")
    failures = []
    if read_bad or base_bad or surge_bad:
        failures.append(f"{read_bad + base_bad + surge_bad} requests without a 200")
    if final < size + acknowledged:
        failures.append("acknowledged writes are missing from the log")
    bound = args.write_p99_factor * pct(base_lat, 0.99)
    if pct(surge_lat, 0.99) > bound:
        failures.append(f"write p99 {pct(surge_lat, 0.99):.0f} ms exceeds the bound {bound:.0f} ms "
                        f"({args.write_p99_factor:g} x the baseline's)")
    if (peak - rss_start) / mib > args.rss_bound_mib:
        failures.append(f"memory grew {(peak - rss_start) / mib:.0f} MiB, beyond the bound {args.rss_bound_mib:g} MiB")
    print("FAILED: " + "; ".join(failures) if failures else
          f"within bounds: write p99 under {bound:.0f} ms ({args.write_p99_factor:g} x the baseline's), memory growth "
          f"{(peak - rss_start) / mib:.0f} MiB of {args.rss_bound_mib:g} MiB allowed, nothing timed out")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
