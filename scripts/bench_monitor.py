#!/usr/bin/env python3
"""Benchmark `pubtrail monitor` catching up: entries verified and mirrored per second.

    .venv/bin/python scripts/bench_monitor.py [--entries 1000000] [--workdir DIR]

Builds a log of `--entries` entries (about 30% exchanges, 70% uploads, as
scripts/bench_query.py makes them, without the query rows the monitor never
reads) through the sequencer's batch write path into a SQLite database, starts
`pubtrail serve` on it in a subprocess, and times one `Monitor.step` from an
empty state folder: the checkpoint's signature, every level-0 tile and entry
bundle fetched over HTTP, every entry re-hashed against its tile and decoded,
every upper tile and the root recomputed, and every entry with its query rows
written to the local SQLite mirror in one transaction. Prints the rate, and
the same run's rate of raw SHA-256 over the same entries (the leaf hashes
alone: the physical limit for this work).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.clients.mirror import Mirror, Writer  # noqa: E402
from app.clients.monitor import Monitor  # noqa: E402
from app.clients.tiles import TileSource  # noqa: E402
from app.config import Settings  # noqa: E402
from app.keys import write_new_key  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from app.tlog import note  # noqa: E402
from scripts.bench_exchange import ADMIN, free_port  # noqa: E402
from scripts.bench_log import ORIGIN  # noqa: E402
from scripts.bench_query import BATCH, Builder  # noqa: E402


def build(data_dir: Path, entries: int, seed: int) -> None:
    settings = Settings(data_dir=data_dir, origin=ORIGIN, signing_key_file=data_dir / "log-signing.key",
                        admin_token=ADMIN)
    runtime = build_runtime(settings)
    try:
        builder = Builder(runtime, random.Random(seed), 3000)
        while builder.size < entries:
            count = min(BATCH, entries - builder.size)
            items: list = []
            rows: dict = {k: [] for k in ("exchange", "claims", "identity", "tokens", "releases", "projects")}
            index = builder.size
            while len(items) < count:
                uploads = min(builder.rng.choice((2, 2, 3)), count - len(items) - 1)
                builder.exchange(index, uploads, items, rows)
                index += 1 + uploads
            builder.append(items, None)
    finally:
        runtime.close()


def serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(PUBTRAIL_DATA_DIR=str(data_dir), PUBTRAIL_ADMIN_TOKEN=ADMIN, PUBTRAIL_ORIGIN=ORIGIN,
               PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not start")


def sha256_rate(source: TileSource, size: int) -> float:
    """Leaf hashes per second over the log's own entries (as many bundles as fit in ~2 s of fetching)."""
    entries: list[bytes] = []
    for index in range(min(size // 256, 400)):
        entries.extend(source.entry_bundle(index))
    sha = hashlib.sha256
    began = time.perf_counter()
    for data in entries:
        sha(b"\x00" + data).digest()
    return len(entries) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the log")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="where the files go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="pubtrail-bench-monitor-", dir=args.workdir) as workdir:
        data_dir = Path(workdir) / "data"
        data_dir.mkdir()
        write_new_key(data_dir / "log-signing.key", ORIGIN)
        began = time.perf_counter()
        build(data_dir, args.entries, args.seed)
        print(f"built a log of {args.entries:,} entries in {time.perf_counter() - began:.0f} s")
        port = free_port()
        server = serve(data_dir, port)
        url = f"http://127.0.0.1:{port}"
        try:
            key = httpx.get(url + "/api/v1/log").json()["verifier_key"]
            with TileSource(url) as source, Mirror(Path(workdir) / "state", key=key, create=True) as mirror:
                monitor = Monitor(source, note.Verifier(key), mirror)
                committing = [0.0]
                commit = Writer.commit

                def timed_commit(writer, *args):  # the last phase: index rebuild and COMMIT
                    started = time.perf_counter()
                    commit(writer, *args)
                    committing[0] = time.perf_counter() - started

                Writer.commit = timed_commit
                began = time.perf_counter()
                step = monitor.step()
                seconds = time.perf_counter() - began
                assert step.size == args.entries, step
                mirror_bytes = (Path(workdir) / "state" / "mirror.sqlite3").stat().st_size
                limit = sha256_rate(source, step.size)
            print(f"monitor caught up on {step.size:,} entries in {seconds:.1f} s: "
                  f"{step.size / seconds:,.0f} entries/s verified and mirrored (target 20,000)")
            print(f"  of which {committing[0]:.1f} s rebuilding the mirror's indexes and committing")
            print(f"raw SHA-256 of the same entries (leaf hashes only): {limit:,.0f} entries/s")
            print(f"mirror: {mirror_bytes / 2**20:,.0f} MiB ({mirror_bytes / step.size:,.0f} bytes per entry)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
