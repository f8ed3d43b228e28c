#!/usr/bin/env python3
"""Benchmark: uploads through POST /legacy/ against a real `pubtrail serve`.

Starts the server in a subprocess (development mode: the dev OIDC issuer,
SQLite in WAL mode with synchronous=FULL, uvicorn with ReasonH11Protocol),
registers a GitHub trusted publisher, mints one upload token through
`/_/oidc/mint-token`, then measures:

1. uploads/s of distinct ~20 KiB wheels from N concurrent HTTP/1.1 clients
   (bodies encoded exactly as twine encodes them), with p50/p99 latency;
   every accepted file is checked, fsynced into the blob store and logged
   (durable and included) before its answer;
2. one large wheel (default 50 MiB) in a fresh server: MiB/s end to end and
   the server process' peak RSS growth (/proc/<pid>/status VmHWM after the
   upload minus VmHWM before it, after a small warm-up upload).

Not a test: nothing fails on a slow machine.

    .venv/bin/python scripts/bench_upload.py [--clients 16] [--uploads 3000] [--large-mib 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app.config import Settings  # noqa: E402
from app.oidc.dev_issuer import github_claims  # noqa: E402
from app.runtime import dev_issuer_for  # noqa: E402
from bench_exchange import ADMIN, free_port, start_server  # noqa: E402
from loadgen import raw_request, run_load  # noqa: E402
from tests.distributions.builders import encode, twine_fields  # noqa: E402

PROJECT = "bench-project"
MODULE = "bench_project"
MIB = 1024 * 1024


def wheel_bytes(version: str, payload: bytes) -> tuple[str, bytes]:
    """A valid wheel whose payload module is stored (not deflated), so its size is the payload's."""
    dist_info = f"{MODULE}-{version}.dist-info"
    members = {
        f"{MODULE}/__init__.py": b"",
        f"{MODULE}/payload.bin": payload,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(data)}")
    members[f"{dist_info}/RECORD"] = ("\n".join(lines + [f"{dist_info}/RECORD,,", ""])).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return f"{MODULE}-{version}-py3-none-any.whl", out.getvalue()


def upload_body(version: str, payload_size: int) -> tuple[bytes, str]:
    filename, data = wheel_bytes(version, os.urandom(payload_size))
    fields = twine_fields(filename, data, name=PROJECT, version=version, summary="bench", requires_python=None)
    return encode(fields)


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


def setup(url: str, data_dir: Path) -> str:
    """Register the publisher and mint an upload token through the public exchange."""
    httpx.post(
        f"{url}/api/v1/projects/{PROJECT}/publishers",
        json={"provider": "github", "repository": "bench/project", "repository_owner_id": "7", "workflow": "release.yml"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    ).raise_for_status()
    issuer = dev_issuer_for(Settings(data_dir=data_dir, dev=True, public_url=url))  # serve names its issuer after its port
    oidc = issuer.mint(github_claims("bench/project", "7", "release.yml"), "pubtrail", time.time(), lifetime=600)
    response = httpx.post(f"{url}/_/oidc/mint-token", json={"token": oidc})
    response.raise_for_status()
    return response.json()["token"]


def upload_requests(url: str, token: str, bodies: list[tuple[bytes, str]]) -> list[bytes]:
    auth = basic(token)
    return [
        raw_request(httpx.Request("POST", url + "/legacy/", content=body, headers={"Content-Type": ctype, **auth}))
        for body, ctype in bodies
    ]


async def run(url: str, token: str, bodies: list[tuple[bytes, str]], clients: int) -> tuple[float, list[float], dict]:
    result = await run_load(url, upload_requests(url, token, bodies), clients)
    return result.elapsed, result.latencies, result.statuses


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled sample values from a Prometheus text exposition."""
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if line and not line.startswith("#") and "{" not in name:
            values[name] = float(value)
    return values


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def bench_many(tmp: Path, clients: int, uploads: int, size: int, workers: int) -> None:
    data_dir = tmp / "many"
    port = free_port()
    server = start_server(data_dir, port, workers)
    url = f"http://127.0.0.1:{port}"
    try:
        token = setup(url, data_dir)
        warm = [upload_body(f"0.0.{i}", size) for i in range(50)]
        bodies = [upload_body(f"1.0.{i}", size) for i in range(uploads)]
        asyncio.run(run(url, token, warm, clients))
        elapsed, latencies, statuses = asyncio.run(run(url, token, bodies, clients))
        size_after = httpx.get(url + "/api/v1/log").json()["size"]
        metrics = metric_values(httpx.get(url + "/metrics").text)
    finally:
        server.terminate()
        server.wait(timeout=15)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    body_kib = statistics.mean(len(b) for b, _ in bodies) / 1024
    print(f"server processes: {workers}")
    print(f"small uploads: {uploads} distinct wheels (~{body_kib:.0f} KiB request bodies), {clients} concurrent clients, "
          f"answers {statuses}")
    print(f"  throughput: {uploads / elapsed:,.0f} uploads/s (each checked, fsynced and logged before its answer)")
    print(f"  latency: p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"  log size after run: {size_after}")
    batches = metrics.get("pubtrail_log_batch_size_count", 0)
    if batches:
        print(f"  log batches: {batches:.0f}, mean {metrics['pubtrail_log_batch_size_sum'] / batches:.1f} entries, "
              f"mean commit {metrics['pubtrail_log_batch_seconds_sum'] / batches * 1000:.1f} ms")


def bench_large(tmp: Path, mib: int, repeats: int) -> None:
    data_dir = tmp / "large"
    port = free_port()
    server = start_server(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    results = []
    try:
        token = setup(url, data_dir)
        asyncio.run(run(url, token, [upload_body("0.0.1", 20 * 1024)], 1))  # warm-up: imports, caches, pools
        for n in range(repeats):
            body, content_type = upload_body(f"2.0.{n}", mib * MIB)
            before = proc_status(server.pid)
            with httpx.Client(base_url=url, timeout=300) as client:
                started = time.perf_counter()
                response = client.post("/legacy/", content=body, headers={"Content-Type": content_type, **basic(token)})
                elapsed = time.perf_counter() - started
            after = proc_status(server.pid)
            if response.status_code != 200:
                raise SystemExit(f"large upload refused: {response.status_code} {response.reason_phrase}")
            results.append((len(body) / MIB / elapsed, after["VmHWM"] - before["VmHWM"], before, after))
            del body
    finally:
        server.terminate()
        server.wait(timeout=15)
    for speed, growth, before, after in results:
        print(f"large upload: {mib} MiB wheel at {speed:,.0f} MiB/s; server peak RSS growth {growth / MIB:.1f} MiB "
              f"(VmHWM {before['VmHWM'] / MIB:.1f} -> {after['VmHWM'] / MIB:.1f} MiB, "
              f"VmRSS {before['VmRSS'] / MIB:.1f} -> {after['VmRSS'] / MIB:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--uploads", type=int, default=3000)
    parser.add_argument("--size-kib", type=int, default=20, help="payload per small wheel")
    parser.add_argument("--large-mib", type=int, default=50)
    parser.add_argument("--large-repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="server processes for the small-upload run")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          "SQLite (WAL, synchronous=FULL), blobs fsynced; the large upload runs on 1 server process")
    with tempfile.TemporaryDirectory() as tmp:
        if args.uploads:
            bench_many(Path(tmp), args.clients, args.uploads, args.size_kib * 1024, args.workers)
        if args.large_mib:
            bench_large(Path(tmp), args.large_mib, args.large_repeats)


if __name__ == "__main__":
    main()
