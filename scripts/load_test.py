#!/usr/bin/env python3
"""Load test: a realistic mix of writes and reads against `pubtrail serve` for a fixed time.

    .venv/bin/python scripts/load_test.py [--duration 60] [--clients 32] [--processes 1]
                                          [--database-url postgresql+psycopg://...] [--no-audit]

Starts `pubtrail serve` (development mode, for its OIDC issuer) in a
temporary data folder, on SQLite or on the PostgreSQL database given by
`--database-url` (emptied first), with `--processes` server processes
sharing the port (`serve --workers N`, as the two-process PostgreSQL tests
run it), with the edge settings of compose.yaml's API processes. It
registers a GitHub trusted publisher, mints an upload token through the
public exchange and seeds a few uploads, then keeps `--clients`
keep-alive connections busy for `--duration` seconds with this mix (weights
out of 100, chosen at random per request):

    exchange      12  POST /_/oidc/mint-token, a fresh OIDC token each (jti)
    upload        10  POST /legacy/, a distinct ~20 KiB wheel each, as twine sends it
    inclusion     12  GET /api/v1/log/proof/inclusion?index=I
    consistency    8  GET /api/v1/log/proof/consistency?first=M
    entry         10  GET /api/v1/log/entries/I
    checkpoint     8  GET /checkpoint
    tile          12  GET /tile/0/N (full or the partial right edge)
    bundle         8  GET /tile/entries/N, gzip accepted
    provenance    12  GET /api/v1/provenance/SHA256 of a file uploaded earlier
    blast-radius   8  GET /api/v1/blast-radius?repository=bench/project&limit=20

Reads name only entries already acknowledged to a writer. Every answer must
be 200; the script prints throughput and p50/p99 per request type and the
errors, runs `pubtrail audit` over the final log (the tree rebuilt from every
entry, every file checked; `--no-audit` skips it), and exits 1 when any
request failed or timed out or the audit did not pass.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import tlog  # noqa: E402
from app.config import Settings  # noqa: E402
from app.oidc.dev_issuer import github_claims  # noqa: E402
from app.runtime import dev_issuer_for  # noqa: E402
from scripts.bench_exchange import ADMIN, free_port, start_server  # noqa: E402
from scripts.bench_log import reset_postgres  # noqa: E402
from scripts.bench_upload import PROJECT, basic, metric_values, setup, wheel_bytes  # noqa: E402
from scripts.loadgen import CONNECTION_LOST, TIMED_OUT, raw_request, run_mix  # noqa: E402
from tests.distributions.builders import encode, twine_fields  # noqa: E402

#: the pubtrail settings of compose.yaml that are not names, paths or secrets: every run here uses them,
#: so the figures are those of the deployment's configuration
def compose_tunables(path: Path = ROOT / "compose.yaml") -> dict[str, str]:
    import yaml

    environment = yaml.safe_load(path.read_text())["x-pubtrail-api"]["environment"]
    skip = {"PUBTRAIL_ORIGIN", "PUBTRAIL_PUBLIC_URL", "PUBTRAIL_DATA_DIR"}
    return {name: str(value) for name, value in environment.items()
            if name.startswith("PUBTRAIL_") and name not in skip and not name.endswith("_FILE")}


MIX = {
    "exchange": 12, "upload": 10, "inclusion": 12, "consistency": 8, "entry": 10, "checkpoint": 8,
    "tile": 12, "bundle": 8, "provenance": 12, "blast-radius": 8,
}
WRITES = ("exchange", "upload")
PAYLOAD = 20 * 1024


class Workload:
    """Builds each next request of the mix and learns from the answers (acknowledged size, uploaded files)."""

    def __init__(self, url: str, data_dir: Path, token: str | None, size: int, files: list[str], seed: int = 1,
                 mix: dict[str, int] | None = None):
        self.url = url
        self.rng = random.Random(seed)
        self.issuer = dev_issuer_for(Settings(data_dir=data_dir, dev=True, public_url=url))
        self.claims = github_claims("bench/project", "7", "release.yml")
        self.auth = basic(token) if token else {}
        self.acknowledged = size  # entries in the log that some writer holds a receipt for
        self.files = files
        self.counter = seed << 32  # distinct jtis and versions across workloads with distinct seeds
        mix = MIX if mix is None else mix
        self.kinds = list(mix)
        self.weights = list(mix.values())

    def _get(self, path: str, **headers: str) -> bytes:
        return raw_request(httpx.Request("GET", self.url + path, headers={"Accept-Encoding": "identity", **headers}))

    def next(self) -> tuple[str, bytes, object]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "provenance" and not self.files:
            kind = "checkpoint"
        self.counter += 1
        n, size, rng = self.counter, self.acknowledged, self.rng
        if kind == "exchange":
            oidc = self.issuer.mint(self.claims | {"jti": f"load-{n}-{rng.random()}"}, "pubtrail", time.time(),
                                    lifetime=600)
            return kind, raw_request(httpx.Request("POST", self.url + "/_/oidc/mint-token", json={"token": oidc})), None
        if kind == "upload":
            version = f"2.{n}.{rng.randrange(10**9)}"
            filename, data = wheel_bytes(version, os.urandom(PAYLOAD))
            body, ctype = encode(twine_fields(filename, data, name=PROJECT, version=version, summary="load",
                                              requires_python=None))
            request = httpx.Request("POST", self.url + "/legacy/", content=body,
                                    headers={"Content-Type": ctype, **self.auth})
            return kind, raw_request(request), hashlib.sha256(data).hexdigest()
        if kind == "inclusion":
            return kind, self._get(f"/api/v1/log/proof/inclusion?index={rng.randrange(size)}"), None
        if kind == "consistency":
            return kind, self._get(f"/api/v1/log/proof/consistency?first={rng.randrange(1, size + 1)}&second={size}"), None
        if kind == "entry":
            return kind, self._get(f"/api/v1/log/entries/{rng.randrange(size)}"), None
        if kind == "checkpoint":
            return kind, self._get("/checkpoint"), None
        if kind in ("tile", "bundle"):
            full = size // 256
            if full and (rng.random() < 0.8 or size % 256 == 0):
                index, width = rng.randrange(full), 256
            else:
                index, width = full, size % 256
            if kind == "tile":
                return kind, self._get("/" + tlog.tile_path(0, index, width)), None
            return kind, self._get("/" + tlog.entries_path(index, width), **{"Accept-Encoding": "gzip"}), None
        if kind == "provenance":
            return kind, self._get(f"/api/v1/provenance/{rng.choice(self.files)}"), None
        return kind, self._get("/api/v1/blast-radius?repository=bench/project&limit=20"), None

    def answered(self, kind: str, status: int, tag: object) -> None:
        if status == 200 and kind in WRITES:
            self.acknowledged += 1
            if kind == "upload":
                self.files.append(tag)


def seed_uploads(url: str, token: str, count: int) -> list[str]:
    """Upload `count` wheels before the run, so provenance has files from the start."""
    hashes = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(count):
            filename, data = wheel_bytes(f"1.0.{n}", os.urandom(PAYLOAD))
            body, ctype = encode(twine_fields(filename, data, name=PROJECT, version=f"1.0.{n}", summary="seed",
                                              requires_python=None))
            client.post("/legacy/", content=body, headers={"Content-Type": ctype, **basic(token)}).raise_for_status()
            hashes.append(hashlib.sha256(data).hexdigest())
    return hashes


def audit(data_dir: Path, database_url: str | None) -> tuple[bool, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(PUBTRAIL_DATA_DIR=str(data_dir), PUBTRAIL_ADMIN_TOKEN=ADMIN, PUBTRAIL_DEV="1",
               PUBTRAIL_ORIGIN="bench.pubtrail.local/log", PYTHONPATH=str(ROOT))
    if database_url:
        env["PUBTRAIL_DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "app.cli", "audit"], env=env, capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, output[-1] if output else ""


def proc_rss(pid: int) -> int:
    """Resident memory of a process and its descendants, in bytes (Linux /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def report(results: dict, duration: float) -> int:
    """Print the table; return the number of requests that did not get a 200."""
    print(f"{'request':<14} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  errors")
    errors = 0
    everything = []
    for kind in MIX:
        result = results.get(kind)
        if result is None or not result.latencies:
            print(f"{kind:<14} {0:>7}")
            continue
        bad = {s: n for s, n in result.statuses.items() if s != 200}
        errors += sum(bad.values())
        everything += result.latencies
        named = {({TIMED_OUT: "timeout", CONNECTION_LOST: "connection lost"}.get(s, s)): n for s, n in bad.items()}
        print(f"{kind:<14} {len(result.latencies):>7} {len(result.latencies) / duration:>8,.1f} "
              f"{result.percentile(0.5) * 1000:>8.1f} {result.percentile(0.99) * 1000:>8.1f}  {named or 0}")
    everything.sort()
    if everything:
        p = lambda q: everything[min(len(everything) - 1, int(len(everything) * q))] * 1000  # noqa: E731
        print(f"{'all':<14} {len(everything):>7} {len(everything) / duration:>8,.1f} {p(0.5):>8.1f} {p(0.99):>8.1f}  "
              f"{errors}")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--processes", type=int, default=1, help="server processes (serve --workers N)")
    parser.add_argument("--database-url", help="PostgreSQL URL (emptied first); default: SQLite in the data folder")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as timed out")
    parser.add_argument("--seed-uploads", type=int, default=20)
    parser.add_argument("--no-audit", action="store_true", help="skip `pubtrail audit` of the final log")
    args = parser.parse_args()

    if args.database_url and not reset_postgres(args.database_url):
        return 1
    database = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
    print(f"machine: {os.cpu_count()} cores (shared), Python {sys.version.split()[0]}; server: {args.processes} "
          f"process(es) on {database}; {args.clients} clients for {args.duration:.0f} s")
    with tempfile.TemporaryDirectory(prefix="pubtrail-load-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        extra = {**compose_tunables(), "PUBTRAIL_UPLOAD_TOKEN_LIFETIME": str(int(args.duration) + 3600)}
        if args.database_url:
            extra["PUBTRAIL_DATABASE_URL"] = args.database_url
        server = start_server(data_dir, port, args.processes, extra)
        url = f"http://127.0.0.1:{port}"
        try:
            token = setup(url, data_dir)
            files = seed_uploads(url, token, args.seed_uploads)
            size = httpx.get(url + "/api/v1/log").json()["size"]
            workload = Workload(url, data_dir, token, size, files)
            rss_before = proc_rss(server.pid)
            metrics_before = metric_values(httpx.get(url + "/metrics").text)
            results = asyncio.run(run_mix(url, workload.next, args.clients, args.duration, timeout=args.timeout,
                                          on_response=workload.answered))
            rss_after = proc_rss(server.pid)
            time.sleep(1.0)  # another server process may answer from a latest checkpoint up to 0.5 s old
            final = httpx.get(url + "/api/v1/log").json()["size"]
            metrics_after = metric_values(httpx.get(url + "/metrics").text)
        finally:
            server.terminate()
            server.wait(timeout=30)
        elapsed = next(iter(results.values())).elapsed
        errors = report(results, elapsed)
        writes = sum(results[k].statuses.get(200, 0) for k in WRITES if k in results)
        batches = metrics_after.get("pubtrail_log_batch_size_count", 0) - metrics_before.get(
            "pubtrail_log_batch_size_count", 0)
        if batches:
            seconds = metrics_after["pubtrail_log_batch_seconds_sum"] - metrics_before["pubtrail_log_batch_seconds_sum"]
            entries = metrics_after["pubtrail_log_batch_size_sum"] - metrics_before["pubtrail_log_batch_size_sum"]
            print(f"log batches{' (of the process that answered /metrics)' if args.processes > 1 else ''}: "
                  f"{batches:.0f}, mean {entries / batches:.1f} entries, mean {seconds / batches * 1000:.1f} ms "
                  "to write, sign and commit")
        print(f"load average during the run (1/5/15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"log: {size:,} -> {final:,} entries ({writes:,} acknowledged writes); server RSS "
              f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB")
        passed, line = (True, "skipped") if args.no_audit else audit(data_dir, args.database_url)
        print(f"pubtrail audit: {'passed' if passed else 'FAILED'} ({line})")
        if final < writes + size:
            print(f"FAILED: {writes + size - final} acknowledged writes are missing from the log")
            return 1
    if errors or not passed:
        print(f"FAILED: {errors} requests without a 200" + ("" if passed else "; the audit failed"))
        return 1
    print("errors: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
