#!/usr/bin/env python3
"""Benchmark the log's read paths: the API server next to a static copy, and the export itself.

    .venv/bin/python scripts/bench_reads.py [--entries 1000000] [--requests 4000] [--clients 16]

1. Builds a SQLite log of `--entries` entries (about 400 bytes each, as
   scripts/bench_log.py does: synchronous batches of 10,000 through
   `Sequencer.append_batch_sync`).
2. `pubtrail export` of the whole log into an empty directory (time, files,
   bytes), then appends 1,000 entries and exports again (the incremental
   case a scheduled export meets).
3. Starts `pubtrail serve` (one process) on that database and two static
   file servers on the exported directory, one process each: Python's
   ThreadingHTTPServer speaking HTTP/1.1 keep-alive (the simplest static
   host, far slower than nginx or a CDN) and Starlette's StaticFiles under
   uvicorn (the API server's own stack, so the gap is database reads versus
   file reads), and drives all three from scripts/loadgen.py in one run:
   `--clients` keep-alive connections, `--requests` requests per case, for
   `/checkpoint`, random full level-0 tiles, and random full entry bundles
   (identity, and gzip from the API server; the static server sends the
   plain file). Prints requests/s and p50/p99 latency per case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app import tlog  # noqa: E402
from app.config import Settings  # noqa: E402
from app.keys import write_new_key  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from app.services.export import export_log  # noqa: E402
from scripts.bench_log import build_big_log, entry  # noqa: E402
from scripts.loadgen import raw_request, run_load  # noqa: E402

ORIGIN = "bench.pubtrail.local/log"
ADMIN = "bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"

STATIC_SERVER = r"""
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), functools.partial(Handler, directory=sys.argv[1]))
server.serve_forever()
"""

#: the same copy behind the API server's own stack (uvicorn, Starlette), so the difference is database vs files
ASGI_STATIC_SERVER = r"""
import sys, uvicorn
from starlette.staticfiles import StaticFiles
uvicorn.run(StaticFiles(directory=sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{url} did not answer")


def export_figures(settings: Settings, out: Path) -> None:
    runtime = build_runtime(settings)
    try:
        began = time.perf_counter()
        result = export_log(runtime.log.reader, out)
        full = time.perf_counter() - began
        files = sum(1 for p in out.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        gz = sum(p.stat().st_size for p in out.rglob("*.gz"))
        raw = sum((out / b.path).stat().st_size for b in tlog.entry_bundles_for_size(result.size))
        print(f"export of {result.size:,} entries: {full:.1f} s ({result.tiles_written:,} tiles, "
              f"{result.bundles_written:,} bundles, {files:,} files, {size / 2**20:.0f} MiB; "
              f"bundles {raw / 2**20:.0f} MiB raw, {gz / 2**20:.0f} MiB as .gz)")
        start = result.size
        runtime.log.sequencer.append_batch_sync([("bench", entry(n)) for n in range(start, start + 1000)])
        began = time.perf_counter()
        again = export_log(runtime.log.reader, out)
        print(f"incremental export after 1,000 more entries: {(time.perf_counter() - began) * 1000:.0f} ms "
              f"({again.tiles_written} tiles, {again.bundles_written} bundles)")
    finally:
        runtime.close()


def cases(size: int, count: int) -> dict[str, list[tuple[str, dict]]]:
    rng = random.Random(7)
    full = size // 256
    tiles = [tlog.tile_path(0, rng.randrange(full)) for _ in range(count)]
    bundles = [tlog.entries_path(rng.randrange(full)) for _ in range(count)]
    identity = {"Accept-Encoding": "identity"}
    return {
        "checkpoint": [("checkpoint", identity)] * count,
        "level-0 tile (8 KiB)": [(p, identity) for p in tiles],
        "entry bundle, identity": [(p, identity) for p in bundles],
        "entry bundle, gzip": [(p, {"Accept-Encoding": "gzip"}) for p in bundles],
    }


def load(base: str, paths: list[tuple[str, dict]], clients: int):
    requests = [raw_request(httpx.Request("GET", f"{base}/{p}", headers=h)) for p, h in paths]
    asyncio.run(run_load(base, requests[: max(clients * 4, 200)], clients))  # warm up
    return asyncio.run(run_load(base, requests, clients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=4000, help="requests per case and server")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pubtrail-bench-reads-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        write_new_key(data / "log-signing.key", ORIGIN)
        settings = Settings(data_dir=data, origin=ORIGIN, signing_key_file=data / "log-signing.key")
        built = build_big_log(settings, args.entries)
        print(f"log of {args.entries:,} entries built in {built:.0f} s")
        out = Path(tmp) / "public"
        export_figures(settings, out)
        size = args.entries + 1000

        env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
        env.update(PUBTRAIL_DATA_DIR=str(data), PUBTRAIL_ADMIN_TOKEN=ADMIN, PUBTRAIL_ORIGIN=ORIGIN,
                   PYTHONPATH=str(ROOT))
        api_port, static_port, asgi_port = free_port(), free_port(), free_port()
        api = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(api_port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        static = subprocess.Popen([sys.executable, "-c", STATIC_SERVER, str(out), str(static_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        asgi = subprocess.Popen([sys.executable, "-c", ASGI_STATIC_SERVER, str(out), str(asgi_port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes = {"API server (pubtrail serve)": api, "static, http.server": static,
                     "static, uvicorn StaticFiles": asgi}
        ports = {"API server (pubtrail serve)": api_port, "static, http.server": static_port,
                 "static, uvicorn StaticFiles": asgi_port}
        servers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        try:
            for name, base in servers.items():
                wait_for(base + "/checkpoint", processes[name])
            print(f"\n{args.clients} keep-alive clients, {args.requests} requests per case")
            print(f"{'case':<26} {'server':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for case, paths in cases(size, args.requests).items():
                for name, base in servers.items():
                    result = load(base, paths, args.clients)
                    bad = {s: n for s, n in result.statuses.items() if s != 200}
                    note = f"  non-200: {bad}" if bad else ""
                    print(f"{case:<26} {name:<28} {result.rate:>8,.0f} {result.percentile(0.5) * 1000:>8.1f} "
                          f"{result.percentile(0.99) * 1000:>8.1f}{note}")
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
