#!/usr/bin/env python3
"""Benchmark: OIDC token exchanges per second over HTTP against a real `pubtrail serve`.

Starts the server in a subprocess (development mode, SQLite in a temporary
folder), registers one GitHub trusted publisher, signs distinct OIDC tokens
with the development issuer's key (each with its own jti), then posts them to
`/_/oidc/mint-token` from N concurrent HTTP/1.1 clients. Every exchange is
logged (one `exchange` entry each, durable before the answer). Prints
throughput and p50/p99 latency. Not a test: nothing fails on a slow machine.

    .venv/bin/python scripts/bench_exchange.py [--clients 32] [--requests 4000] [--workers 1]

Load comes from scripts/loadgen.py (prebuilt requests on keep-alive
connections), so the generator takes little of the CPU the server needs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.oidc.dev_issuer import github_claims  # noqa: E402
from app.runtime import dev_issuer_for  # noqa: E402
from scripts.loadgen import raw_request, run_load  # noqa: E402

ADMIN = "bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    data_dir: Path, port: int, workers: int = 1, extra_env: dict | None = None, *,
    new_session: bool = False, stderr=subprocess.DEVNULL,
) -> subprocess.Popen:
    """`pubtrail serve` in development mode on `port`, once /healthz answers 200.
    With `new_session` it leads its own process group (os.killpg kills the server
    and nothing else); `stderr` takes its log (a file, or DEVNULL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(
        PUBTRAIL_DATA_DIR=str(data_dir),
        PUBTRAIL_DEV="1",
        PUBTRAIL_ADMIN_TOKEN=ADMIN,
        PUBTRAIL_ORIGIN="bench.pubtrail.local/log",
        PYTHONPATH=str(ROOT),
        **(extra_env or {}),
    )
    if not (data_dir / "log-signing.key").exists():  # a prebuilt log brings its own key
        subprocess.run(
            [sys.executable, "-m", "app.cli", "keygen", "--origin", "bench.pubtrail.local/log"],
            env=env, check=True, capture_output=True,
        )
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=new_session,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # imports alone take tens of seconds on a busy machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def mint_requests(url: str, tokens: list[str]) -> list[bytes]:
    return [raw_request(httpx.Request("POST", url + "/_/oidc/mint-token", json={"token": t})) for t in tokens]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        server = start_server(data_dir, port, args.workers)
        url = f"http://127.0.0.1:{port}"
        try:
            response = httpx.post(
                f"{url}/api/v1/projects/bench-project/publishers",
                json={"provider": "github", "repository": "bench/project", "repository_owner_id": "7", "workflow": "release.yml"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            response.raise_for_status()
            settings = Settings(data_dir=data_dir, dev=True, public_url=url)  # serve names its issuer after its port
            issuer = dev_issuer_for(settings)
            now = time.time()
            claims = github_claims("bench/project", "7", "release.yml")
            tokens = [issuer.mint(claims | {"jti": f"bench-{i}"}, "pubtrail", now, lifetime=600) for i in range(args.requests)]
            # warm up connections and caches (JWKS, publisher lookup) outside the measurement
            warm = [issuer.mint(claims, "pubtrail", now) for _ in range(100)]
            asyncio.run(run_load(url, mint_requests(url, warm), 8))
            result = asyncio.run(run_load(url, mint_requests(url, tokens), args.clients))
            size = httpx.get(url + "/api/v1/log").json()["size"]
        finally:
            server.terminate()
            server.wait(timeout=15)

    failures = sum(n for status, n in result.statuses.items() if status != 200)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"server: {args.workers} process(es), SQLite (WAL, synchronous=FULL)"
    )
    print(f"exchanges: {args.requests} with {args.clients} concurrent keep-alive clients, {failures} failed")
    print(f"throughput: {result.rate:,.0f} exchanges/s (each logged and durable before the answer)")
    print(f"latency: p50 {statistics.median(result.latencies) * 1000:.1f} ms, p99 {result.percentile(0.99) * 1000:.1f} ms")
    print(f"log size after run: {size}")


if __name__ == "__main__":
    main()
