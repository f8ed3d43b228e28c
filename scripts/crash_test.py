#!/usr/bin/env python3
"""Crash test: SIGKILL `pubtrail serve` at random moments under a mixed write load, then check the log.

What is promised: a write is acknowledged only once it is durable and
included, no two inconsistent checkpoints are ever signed, a file is served
only whole and only as its upload entry describes it, and a restart after a
hard kill recovers without any repair.

How it is checked. Real `pubtrail serve` processes (development mode, each
in its own process group, started by `scripts/bench_exchange.start_server`)
take concurrent token exchanges and uploads: `--clients` HTTP clients, each
minting upload tokens from fresh OIDC tokens (`/_/oidc/mint-token`) and
uploading distinct wheels as twine encodes them (real multipart bodies, 2 KiB
to 1 MiB, from `scripts/bench_upload.upload_body`), polling `/checkpoint`, and
downloading files it was told were stored. Meanwhile the process group of a
server is killed with SIGKILL at a random moment (`--kills` times), then the
server is restarted on the same data (at most one server is down at a time).
Then, with every server up again:

- every receipt a client received (an acknowledged write) verifies against
  its own checkpoint, that checkpoint is consistent with the final one, and
  the final log holds at that index an entry with the receipt's leaf hash
  (`lost` counts any that does not);
- every checkpoint any client saw (receipts and `/checkpoint`) verifies with
  the log's key from its key file and is consistent with the final checkpoint
  (consistency proofs from the server, verified with `app.tlog`;
  `inconsistent` counts any that is not, and two roots for one size);
- every acknowledged upload's file is served with its entry's SHA-256 and
  BLAKE2b-256, every file any client downloaded during the run had the hashes
  it was uploaded with, and every file in the blob store hashes to its name
  (no half-written file under a final name; leftovers in the spool are
  allowed and counted);
- `pubtrail audit` (a subprocess, the servers stopped) rebuilds the tree from
  every entry and compares every tile and checkpoint, the projections and
  every stored file with its upload entry; it must pass;
- no server answered a 5xx (a halted log, a 500).

Two set-ups: SQLite with one server process (the default), and with
`--database-url postgresql+psycopg://...` two server processes on one
PostgreSQL database sharing one data folder, killed one at a time while the
other keeps serving (it must acknowledge writes while the first is down).
The PostgreSQL database is emptied first.

Prints the counts (kills, acknowledged writes, lost, inconsistent) and exits
non-zero on any loss, inconsistency, bad file, failed audit or 5xx.

Not covered: power loss. A killed process's writes already in the kernel's
page cache still reach the disk, so this does not test that fsync happens at
the right moments (the code's fsync calls and SQLite's synchronous=FULL do).

    .venv/bin/python scripts/crash_test.py [--kills 20] [--clients 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app import tlog  # noqa: E402
from app.config import Settings  # noqa: E402
from app.keys import load_key, write_new_key  # noqa: E402
from app.oidc.dev_issuer import github_claims  # noqa: E402
from app.runtime import dev_issuer_for  # noqa: E402
from bench_exchange import free_port, start_server  # noqa: E402
from bench_log import reset_postgres  # noqa: E402
from bench_upload import basic, setup, upload_body  # noqa: E402

ORIGIN = "bench.pubtrail.local/log"  # the origin start_server gives the log
FILE_SIZES = (2 * 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024)


@dataclass
class Ack:
    """One acknowledged write: the receipt a client got, and the upload entry for an upload."""

    kind: str
    receipt: dict
    upload: dict | None = None


@dataclass
class Ledger:
    """Everything the clients saw."""

    acks: list[Ack] = field(default_factory=list)
    checkpoints: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    unreached: int = 0  # connection refused: the request never reached a server
    ambiguous: int = 0  # the connection broke mid-request: may or may not be in the log
    downloads: int = 0
    bad_downloads: list[str] = field(default_factory=list)
    acked_while_other_down: int = 0


@dataclass
class Report:
    kills: int = 0
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checkpoints: int = 0
    final_size: int = 0
    stored_files: int = 0
    spool_leftovers: int = 0
    audit: str = ""
    duration: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.inconsistent or self.bad_files or self.errors)


class Servers:
    """`count` pubtrail processes on one data folder (and one database), each in its own process group."""

    def __init__(self, data_dir: Path, count: int, database_url: str | None, log_path: Path):
        self.data_dir = data_dir
        self.ports = [free_port() for _ in range(count)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.env = {"PUBTRAIL_PUBLIC_URL": self.urls[0]}  # one development issuer for every process
        if database_url:
            self.env["PUBTRAIL_DATABASE_URL"] = database_url
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.up = [False] * count
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()

    def start(self, slot: int) -> None:
        self.processes[slot] = start_server(
            self.data_dir, self.ports[slot], extra_env=self.env, new_session=True, stderr=self.log
        )
        self.up[slot] = True

    def kill(self, slot: int) -> None:
        """SIGKILL the server's whole process group, as the OOM killer would (not a power cut:
        what the kernel already holds still reaches the disk)."""
        self.up[slot] = False
        process = self.processes[slot]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for slot, process in enumerate(self.processes):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self.up[slot] = False
        self.log.close()

    def live_url(self) -> str | None:
        live = [url for url, up in zip(self.urls, self.up) if up]
        return random.choice(live) if live else None

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
        env.update(PUBTRAIL_DATA_DIR=str(self.data_dir), PUBTRAIL_ORIGIN=ORIGIN, PYTHONPATH=str(ROOT), **self.env)
        return env


class Client:
    """One writer: exchanges, uploads, checkpoint polls and downloads against whichever server is up."""

    def __init__(self, number: int, servers: Servers, ledger: Ledger, mint_oidc, token: str):
        self.number = number
        self.servers = servers
        self.ledger = ledger
        self.mint_oidc = mint_oidc
        self.token = token
        self.sent = 0

    async def run(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            url = self.servers.live_url()
            if url is None:
                await asyncio.sleep(0.05)
                continue
            roll = random.random()
            if roll < 0.3:
                await self._exchange(http, url)
            elif roll < 0.9:
                await self._upload(http, url)
            else:
                await self._checkpoint(http, url)

    async def _send(self, http: httpx.AsyncClient, url: str, method: str, path: str, **options) -> httpx.Response | None:
        """The answer, or None when the server was down (counted) or died mid-request (ambiguous)."""
        try:
            response = await http.request(method, url + path, **options)
        except httpx.ConnectError:
            self.ledger.unreached += 1
            await asyncio.sleep(0.05)
            return None
        except httpx.HTTPError:
            self.ledger.ambiguous += 1
            return None
        self.ledger.statuses[response.status_code] += 1
        return response

    def _acked(self, url: str) -> None:
        if len(self.servers.urls) > 1 and not all(self.servers.up):
            self.ledger.acked_while_other_down += 1

    async def _exchange(self, http: httpx.AsyncClient, url: str) -> None:
        self.sent += 1
        response = await self._send(
            http, url, "POST", "/_/oidc/mint-token", json={"token": self.mint_oidc(f"c{self.number}-{self.sent}")}
        )
        if response is not None and response.status_code == 200:
            body = response.json()
            self.ledger.acks.append(Ack("exchange", body["receipt"]))
            self.ledger.checkpoints.add(body["receipt"]["checkpoint"])
            self.token = body["token"]
            self._acked(url)

    async def _upload(self, http: httpx.AsyncClient, url: str) -> None:
        self.sent += 1
        content, content_type = upload_body(f"{self.number}.{self.sent}", random.choice(FILE_SIZES))
        response = await self._send(
            http, url, "POST", "/legacy/", content=content,
            headers={"Content-Type": content_type, **basic(self.token)},
        )
        if response is None or response.status_code != 200:
            return
        body = response.json()
        if body.get("duplicate"):
            return  # an earlier ambiguous attempt of this very file was logged after all
        self.ledger.acks.append(Ack("upload", body["receipt"], body["upload"]))
        self.ledger.checkpoints.add(body["receipt"]["checkpoint"])
        self._acked(url)
        if random.random() < 0.3:
            await self._download(http, body["upload"])

    async def _download(self, http: httpx.AsyncClient, upload: dict) -> None:
        url = self.servers.live_url()
        if url is None:
            return
        response = await self._send(http, url, "GET", f"/files/{upload['sha256']}/{upload['filename']}")
        if response is None or response.status_code != 200:
            return
        self.ledger.downloads += 1
        problem = file_problem(response.content, upload)
        if problem:
            self.ledger.bad_downloads.append(f"{upload['filename']} served during the run: {problem}")

    async def _checkpoint(self, http: httpx.AsyncClient, url: str) -> None:
        response = await self._send(http, url, "GET", "/checkpoint")
        if response is not None and response.status_code == 200:
            self.ledger.checkpoints.add(response.text)


def file_problem(data: bytes, upload: dict) -> str | None:
    """What is wrong with `data` as the file of `upload` (an upload entry), or None."""
    if len(data) != upload["size"]:
        return f"{len(data)} bytes, the entry says {upload['size']}"
    if hashlib.sha256(data).hexdigest() != upload["sha256"]:
        return "SHA-256 differs from the entry's"
    if hashlib.blake2b(data, digest_size=32).hexdigest() != upload["blake2b_256"]:
        return "BLAKE2b-256 differs from the entry's"
    return None


async def drive(servers: Servers, ledger: Ledger, report: Report, *, kills: int, clients: int,
                token: str, mint_oidc, min_up: float, max_up: float) -> None:
    """Run the clients while killing and restarting servers `kills` times."""
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5), limits=limits) as http:
        workers = [Client(n, servers, ledger, mint_oidc, token) for n in range(clients)]
        tasks = [asyncio.create_task(worker.run(http, stop)) for worker in workers]
        try:
            for _ in range(kills):
                await asyncio.sleep(random.uniform(min_up, max_up))
                slot = random.randrange(len(servers.urls))
                await asyncio.to_thread(servers.kill, slot)
                report.kills += 1
                await asyncio.sleep(random.uniform(0, 0.3))  # clients meet a dead server for a moment
                await asyncio.to_thread(servers.start, slot)
            await asyncio.sleep(min_up)  # some writes after the last restart
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def settle(urls: list[str], timeout: float = 30.0) -> None:
    """Wait until every server names the same latest size: a process learns of
    another's batches within the reader's `latest_max_age` (0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        sizes = {httpx.get(url + "/api/v1/log", timeout=30).json()["size"] for url in urls}
        if len(sizes) == 1 or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def check(url: str, files_root: Path, ledger: Ledger, report: Report, verifier) -> None:
    """Check the log served at `url` (and the blob store at `files_root`) against
    everything the clients were told, trusting only `verifier` (the log's key)."""
    origin = verifier.name
    with httpx.Client(base_url=url, timeout=60) as http:
        final = tlog.open_checkpoint(http.get("/api/v1/log").json()["checkpoint"], [verifier], origin=origin)
        report.final_size = final.size
        roots: dict[int, bytes] = {final.size: final.root_hash}
        consistent: dict[int, bool] = {final.size: True}

        def consistent_with_final(note: str) -> bool:
            try:
                seen = tlog.open_checkpoint(note, [verifier], origin=origin)
            except tlog.TlogError as exc:
                report.inconsistent.append(f"a checkpoint a client saw does not verify: {exc}")
                return False
            if seen.size in roots and roots[seen.size] != seen.root_hash:
                report.inconsistent.append(f"two different roots were signed for size {seen.size}")
                consistent[seen.size] = False
                return False
            roots[seen.size] = seen.root_hash
            if seen.size not in consistent:
                consistent[seen.size] = _proven_consistent(http, seen, final, report)
            return consistent[seen.size]

        for note in sorted(ledger.checkpoints):
            consistent_with_final(note)
        report.checkpoints = len(ledger.checkpoints)

        for ack in ledger.acks:
            receipt = ack.receipt
            where = f"{ack.kind} receipt for index {receipt['index']}"
            if not consistent_with_final(receipt["checkpoint"]):
                report.lost.append(f"{where}: its checkpoint is not consistent with the final one")
                continue
            proof = receipt["inclusion_proof"]
            leaf = bytes.fromhex(receipt["leaf_hash"])
            try:
                checkpoint = tlog.open_checkpoint(receipt["checkpoint"], [verifier], origin=origin)
                if proof["tree_size"] != checkpoint.size:
                    raise tlog.ProofError("proof size differs from the checkpoint's")
                tlog.verify_inclusion(
                    leaf, receipt["index"], checkpoint.size, [bytes.fromhex(h) for h in proof["hashes"]],
                    checkpoint.root_hash,
                )
            except tlog.TlogError as exc:
                report.lost.append(f"{where}: the receipt does not verify: {exc}")
                continue
            stored = http.get(f"/api/v1/log/entries/{receipt['index']}")
            if stored.status_code != 200:
                report.lost.append(f"{where}: the final log has no entry there ({stored.status_code})")
                continue
            entry_bytes = base64.b64decode(stored.json()["entry_bytes"])
            if tlog.leaf_hash(entry_bytes) != leaf:
                report.lost.append(f"{where}: the final log holds another entry there")
                continue
            if ack.upload is not None:
                if json.loads(entry_bytes) != ack.upload:
                    report.lost.append(f"{where}: the logged upload entry is not the one answered")
                    continue
                served = http.get(f"/files/{ack.upload['sha256']}/{ack.upload['filename']}")
                problem = file_problem(served.content, ack.upload) if served.status_code == 200 else (
                    f"not served ({served.status_code})")
                if problem:
                    report.bad_files.append(f"{ack.upload['filename']}: {problem}")
        report.acknowledged = len(ledger.acks)
    report.bad_files.extend(ledger.bad_downloads)
    _check_blob_store(files_root, report)


def _proven_consistent(http: httpx.Client, seen, final, report: Report) -> bool:
    if seen.size == 0 or seen.size > final.size:
        if seen.size > final.size:
            report.inconsistent.append(f"a client saw size {seen.size}, beyond the final {final.size}")
        return seen.size == 0
    answer = http.get("/api/v1/log/proof/consistency", params={"first": seen.size, "second": final.size})
    if answer.status_code != 200:
        report.inconsistent.append(f"no consistency proof from size {seen.size} ({answer.status_code})")
        return False
    try:
        tlog.verify_consistency(
            seen.size, final.size, [bytes.fromhex(h) for h in answer.json()["hashes"]], seen.root_hash,
            final.root_hash,
        )
    except tlog.TlogError as exc:
        report.inconsistent.append(f"checkpoint of size {seen.size} is not consistent with the final one: {exc}")
        return False
    return True


def _check_blob_store(root: Path, report: Report) -> None:
    """Every file under a content address holds exactly that content."""
    for path in (root / "sha256").glob("??/??/*"):
        report.stored_files += 1
        if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            report.bad_files.append(f"stored file {path.name} does not hash to its name (half-written?)")
    spool = root / "tmp"
    report.spool_leftovers = sum(1 for _ in spool.iterdir()) if spool.is_dir() else 0


def run(data_dir: Path, *, kills: int, clients: int, database_url: str | None, processes: int,
        min_up: float = 0.5, max_up: float = 2.0, seed: int | None = None) -> Report:
    """The whole test in `data_dir`; returns the report (`report.ok`)."""
    random.seed(seed)
    report = Report()
    ledger = report.ledger
    started = time.monotonic()
    servers = Servers(data_dir, processes, database_url, data_dir.parent / "servers.log")
    try:
        write_new_key(data_dir / "log-signing.key", ORIGIN)  # before the processes: they would race to make it
        with ThreadPoolExecutor(processes) as pool:  # start-up is mostly imports: start them together
            list(pool.map(servers.start, range(processes)))
        token = setup(servers.urls[0], data_dir)
        issuer = dev_issuer_for(Settings(data_dir=data_dir, dev=True, public_url=servers.urls[0]))
        claims = github_claims("bench/project", "7", "release.yml")

        def mint_oidc(jti: str) -> str:
            return issuer.mint(claims | {"jti": jti}, "pubtrail", time.time(), lifetime=600)

        asyncio.run(drive(servers, ledger, report, kills=kills, clients=clients, token=token,
                          mint_oidc=mint_oidc, min_up=min_up, max_up=max_up))
        settle(servers.urls)
        _, verifier = load_key(data_dir / "log-signing.key", ORIGIN)
        check(servers.urls[0], data_dir / "files", ledger, report, verifier)
    finally:
        servers.stop()
    audit = subprocess.run([sys.executable, "-m", "app.cli", "audit"], env=servers.cli_env(), cwd=ROOT,
                           capture_output=True, text=True)
    report.audit = (audit.stdout + audit.stderr).strip()
    if audit.returncode != 0:
        report.errors.append(f"pubtrail audit failed: {report.audit}")
    server_errors = {status: n for status, n in ledger.statuses.items() if status >= 500}
    if server_errors:
        report.errors.append(f"servers answered 5xx: {server_errors}")
    if processes > 1 and report.kills and not ledger.acked_while_other_down:
        report.errors.append("no write was acknowledged while a server was down: the other did not keep serving")
    report.duration = time.monotonic() - started
    return report


def print_report(report: Report, title: str) -> None:
    ledger = report.ledger
    kinds = Counter(ack.kind for ack in ledger.acks)
    print(f"{title}: {report.duration:.0f} s")
    print(f"  kills: {report.kills}")
    print(f"  acknowledged writes: {report.acknowledged} ({kinds['exchange']} exchanges, {kinds['upload']} uploads)")
    print(f"  lost: {len(report.lost)}")
    print(f"  inconsistent: {len(report.inconsistent)}")
    print(f"  bad files: {len(report.bad_files)}")
    print(f"  checkpoints seen by clients: {report.checkpoints}, final size {report.final_size}")
    print(f"  not acknowledged: {ledger.ambiguous} cut off mid-request, {ledger.unreached} refused connections")
    print(f"  answers: {dict(sorted(ledger.statuses.items()))}")
    if ledger.acked_while_other_down:
        print(f"  acknowledged while one server was down: {ledger.acked_while_other_down}")
    print(f"  files: {ledger.downloads} downloaded during the run, {report.stored_files} in the blob store, "
          f"{report.spool_leftovers} spool leftovers")
    print(f"  audit: {report.audit.splitlines()[0] if report.audit else '-'}")
    for problem in (report.lost + report.inconsistent + report.bad_files + report.errors)[:20]:
        print(f"  PROBLEM: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per set-up (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent writers (default: %(default)s)")
    parser.add_argument("--database-url", help="PostgreSQL: run two server processes on it (it is emptied first)")
    parser.add_argument("--min-up", type=float, default=0.5, help="shortest time between restart and kill, s")
    parser.add_argument("--max-up", type=float, default=2.0, help="longest time between restart and kill, s")
    parser.add_argument("--seed", type=int, help="random seed (kill moments, file sizes, request mix)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pubtrail-crash-") as tmp:
        if args.database_url:
            if not reset_postgres(args.database_url):
                return 2
            title, processes = "PostgreSQL, two server processes, one killed at a time", 2
        else:
            title, processes = "SQLite, one server process", 1
        log = Path(tmp) / "servers.log"
        try:
            report = run(Path(tmp) / "data", kills=args.kills, clients=args.clients, database_url=args.database_url,
                         processes=processes, min_up=args.min_up, max_up=args.max_up, seed=args.seed)
        except BaseException:
            print_log_tail(log)
            raise
        print_report(report, title)
        if not report.ok:
            print_log_tail(log)
    return 0 if report.ok else 1


def print_log_tail(log: Path, lines: int = 40) -> None:
    if log.exists():
        print(f"server log (last {lines} lines):")
        print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


if __name__ == "__main__":
    sys.exit(main())
