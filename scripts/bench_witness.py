#!/usr/bin/env python3
"""Benchmark pubtrail's witness: add-checkpoint requests cosigned per second, in process and over HTTP.

Usage: .venv/bin/python scripts/bench_witness.py [--requests N] [--clients C]
One log grows by 16 entries between checkpoints (a consistency proof of about
20 hashes at a million entries); each request is checked (log signature,
proof), committed to the witness's SQLite state (synchronous=FULL) and
cosigned. Over HTTP, C clients each follow their own log (distinct origins)
on one witness process, with keep-alive. Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from app.tlog import MemoryTree  # noqa: E402
from app.tlog import cosignature as cosig  # noqa: E402
from app.witness.protocol import Witness  # noqa: E402
from app.witness.server import make_app  # noqa: E402
from app.witness.state import WitnessState  # noqa: E402
from tests.support.server import serve  # noqa: E402
from tests.witness.support import MemoryLog  # noqa: E402

STEP = 16
START = 1_000_000


def make_log(origin: str) -> MemoryLog:
    log = MemoryLog(origin=origin)
    log.tree = MemoryTree()
    log.tree.extend_hashes(i.to_bytes(32, "big") for i in range(START))
    return log


def bodies(log: MemoryLog, count: int) -> list[bytes]:
    out = [log.body(0)]
    for _ in range(count - 1):
        old = log.tree.size
        log.tree.extend_hashes((old + i).to_bytes(32, "big") for i in range(STEP))
        out.append(log.body(old))
    return out


def figures(label: str, latencies: list[float], elapsed: float) -> None:
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{label}: {len(latencies) / elapsed:,.0f} cosignatures/s, "
          f"p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    skey, _ = cosig.generate_key("bench.example/witness", b"\x01" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        logs = [make_log(f"bench.example/log{i}") for i in range(args.clients)]
        work = [bodies(log, args.requests) for log in logs]
        witness = Witness(cosig.CosignatureSigner(skey), [log.verifier_key for log in logs],
                          WitnessState(Path(tmp) / "w.sqlite3"), time.time)

        latencies = []
        started = time.perf_counter()
        for body in work[0]:
            t = time.perf_counter()
            assert witness.add_checkpoint(body).status == 200
            latencies.append(time.perf_counter() - t)
        figures("in process, one log", latencies, time.perf_counter() - started)

        fresh = Witness(witness.signer, [log.verifier_key for log in logs],
                        WitnessState(Path(tmp) / "http.sqlite3"), time.time)
        with serve(make_app(fresh)) as url:
            async def client(requests: list[bytes], out: list[float]) -> None:
                async with httpx.AsyncClient(base_url=url) as http:
                    for body in requests:
                        t = time.perf_counter()
                        response = await http.post("/add-checkpoint", content=body)
                        assert response.status_code == 200, response.text
                        out.append(time.perf_counter() - t)

            async def run() -> list[float]:
                out: list[float] = []
                await asyncio.gather(*(client(requests, out) for requests in work))
                return out

            started = time.perf_counter()
            latencies = asyncio.run(run())
            figures(f"over HTTP, {args.clients} clients and logs", latencies, time.perf_counter() - started)


if __name__ == "__main__":
    main()
