#!/usr/bin/env python3
"""Benchmark the explorer's project page: a project of 1,000 files, its size and server time.

    .venv/bin/python scripts/bench_web.py [--files 1000] [--samples 50] [--postgres URL]
                                          [--skip-sqlite] [--skip-postgres] [--workdir DIR]

Builds one GitHub project's history through the sequencer's write path with
its projection rows (scripts/bench_query.py's Builder: each exchange's token
uploads two or three files, each file its own release version), until the
project has at least `--files` files. Then it requests `GET /project/<name>`
from the real application in this process (FastAPI's TestClient, no network)
`--samples` times after one warm-up request, and prints the page's size as
sent (gzip, what a browser receives), its size uncompressed, p50/p99 of
the time from request to complete answer, and the CPU time each request
cost (which, unlike the wall time, does not stretch on a busy machine). The targets: under 100 KB and
under 200 ms. The static assets (sent once, then cached) are listed too.
The PostgreSQL database named by --postgres (default:
$PUBTRAIL_BENCH_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/pubtrail_bench)
is emptied first.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from app.api.app import create_app  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from scripts.bench_log import DEFAULT_PG, make_settings, percentile, reset_postgres  # noqa: E402
from scripts.bench_query import START, Builder  # noqa: E402

TARGET_BYTES = 100_000
TARGET_SECONDS = 0.200


def run(label: str, url: str | None, args, workdir: Path) -> None:
    print(f"\n== {label} ==")
    if url is not None and not reset_postgres(url):
        return
    settings = make_settings(workdir, url, label.split()[0].lower())
    runtime = build_runtime(settings, clock=lambda: START + 400 * 86_400)
    try:
        builder = Builder(runtime, random.Random(args.seed), 1)
        began = time.perf_counter()
        while len(builder.upload_indexes) < args.files:
            builder.batch(min(500, 4 * (args.files - len(builder.upload_indexes)) // 3 + 4))
        project = builder.names[0].split("/")[1]
        print(f"built project {project}: {len(builder.upload_indexes):,} files, {len(builder.tokens):,} exchanges, "
              f"{builder.size:,} entries, in {time.perf_counter() - began:.1f} s")
        with TestClient(create_app(runtime)) as client:
            headers = {"Accept": "text/html", "Accept-Encoding": "gzip"}
            path = f"/project/{project}"
            warm = client.get(path, headers=headers)
            assert warm.status_code == 200, warm.status_code
            sent = int(warm.headers["content-length"])  # the gzip body as sent
            plain = client.get(path, headers={"Accept": "text/html", "Accept-Encoding": "identity"})
            seconds, cpu = [], []
            for _ in range(args.samples):
                began, began_cpu = time.perf_counter(), time.process_time()
                response = client.get(path, headers=headers)
                seconds.append(time.perf_counter() - began)
                cpu.append(time.process_time() - began_cpu)
                assert response.status_code == 200
            rows = plain.text.count('<a href="/file/')
            p50, p99 = percentile(seconds, 0.5), percentile(seconds, 0.99)
            print(f"project page, {rows:,} file rows: {sent / 1000:.1f} KB sent (gzip), "
                  f"{len(plain.content) / 1000:.1f} KB uncompressed; "
                  f"{'meets' if sent < TARGET_BYTES else 'MISSES'} the 100 KB target")
            print(f"server time over {args.samples} requests: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; "
                  f"{'meets' if p99 < TARGET_SECONDS else 'MISSES'} the 200 ms target")
            print(f"CPU time per request (this process, both threads): p50 {percentile(cpu, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(cpu, 0.99) * 1000:.1f} ms; load average {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} CPUs (wall times stretch with it)")
            service = []
            for _ in range(args.samples):
                began_cpu = time.process_time()
                runtime.provenance.project(project)
                service.append(time.process_time() - began_cpu)
            print(f"  of which the provenance service's answer (GET /api/v1/projects/{{p}} without JSON): "
                  f"CPU p50 {percentile(service, 0.5) * 1000:.1f} ms")
            for asset in ("verify.js", "page.js", "style.css"):
                body = client.get(f"/_/static/web/{asset}")
                print(f"  static {asset}: {len(body.content) / 1000:.1f} KB (sent once, then revalidated)")
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="files in the project")
    parser.add_argument("--samples", type=int, default=50, help="requests timed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get("PUBTRAIL_BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--workdir", type=Path, help="where the SQLite files go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="pubtrail-bench-web-", dir=args.workdir) as workdir:
        if not args.skip_sqlite:
            run("SQLite (WAL, synchronous=FULL)", None, args, Path(workdir))
        if not args.skip_postgres:
            run("PostgreSQL", args.postgres, args, Path(workdir))


if __name__ == "__main__":
    main()
