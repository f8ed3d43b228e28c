#!/usr/bin/env python3
"""Benchmark: webhook delivery latency after the write is acknowledged.

Starts `pubtrail serve` in a subprocess (development mode, SQLite in a
temporary folder), a local webhook receiver on 127.0.0.1, and one monitor
matching every `exchange` entry. Then N token exchanges are posted from C
concurrent clients; for each, the time its answer arrived (the write is
durable and acknowledged) is compared with the time the receiver got the
signed event for it (matched by the exchange's jti). Every event's signature
is checked with app.webhooks. Prints p50/p99/max latency. Not a test.

    .venv/bin/python scripts/bench_webhooks.py [--events 1000] [--clients 8] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import webhooks  # noqa: E402
from app.config import Settings  # noqa: E402
from app.oidc.dev_issuer import github_claims  # noqa: E402
from app.runtime import dev_issuer_for  # noqa: E402
from scripts.bench_exchange import ADMIN, free_port, start_server  # noqa: E402


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # jti -> arrival time
        self.ids: dict[str, str] = {}  # jti -> event id
        self.bad = 0
        self.secret = ""
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.time()
                try:
                    msg_id = webhooks.verify(receiver.secret, dict(self.headers.items()), body)
                    jti = json.loads(body)["data"]["entry"]["entry"]["jti"]
                    with receiver.lock:
                        receiver.arrived.setdefault(jti, at)
                        receiver.ids.setdefault(jti, msg_id)
                except (webhooks.WebhookError, ValueError, KeyError):
                    with receiver.lock:
                        receiver.bad += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()

    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        server = start_server(data_dir, port, args.workers)
        url = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {ADMIN}"}
        try:
            httpx.post(
                f"{url}/api/v1/projects/bench-project/publishers",
                json={"provider": "github", "repository": "bench/project", "repository_owner_id": "7",
                      "workflow": "release.yml"},
                headers=admin,
            ).raise_for_status()
            monitor = httpx.post(
                f"{url}/api/v1/monitors",
                json={"name": "every exchange", "match": {"kind": "exchange"}, "webhook_url": receiver.url},
                headers=admin,
            )
            monitor.raise_for_status()
            receiver.secret = monitor.json()["secret"]
            issuer = dev_issuer_for(Settings(data_dir=data_dir, dev=True, public_url=url))
            now = time.time()
            claims = github_claims("bench/project", "7", "release.yml")
            tokens = [(f"bench-{i}", issuer.mint(claims | {"jti": f"bench-{i}"}, "pubtrail", now, lifetime=600))
                      for i in range(args.events)]
            acked: dict[str, float] = {}
            local = threading.local()

            def exchange(item: tuple[str, str]) -> None:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(base_url=url, timeout=30)
                jti, token = item
                response = local.client.post("/_/oidc/mint-token", json={"token": token})
                response.raise_for_status()
                acked[jti] = time.time()

            started = time.monotonic()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(exchange, tokens))
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 60
            while len(receiver.arrived) < args.events and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait(timeout=15)

    latencies = sorted(receiver.arrived[j] - acked[j] for j in acked if j in receiver.arrived)
    missing = args.events - len(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, server: {args.workers} process(es), "
          f"SQLite (WAL, synchronous=FULL)")
    print(f"events: {args.events} exchanges from {args.clients} clients at {args.events / elapsed:,.0f}/s, "
          f"each matching one monitor; {missing} not delivered within 60 s, {receiver.bad} bad signatures, "
          f"{len(set(receiver.ids.values()))} distinct event ids")
    if latencies:
        print(f"delivery latency after the write was acknowledged: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms (target: p99 under 2 s)")


if __name__ == "__main__":
    main()
