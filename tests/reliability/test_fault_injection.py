"""A fault at any write step of an append: nothing acknowledged is lost, nothing unacknowledged is claimed.

What pubtrail promises (docs/design.md, "Sequencing and durability"): a
receipt is handed out only for an entry that is committed, in the log at the
receipt's index with the receipt's leaf hash, under a stored checkpoint the
receipt carries. A failed write fails its callers with an error and leaves
the log sound: the next batch succeeds (or the log halts with a reason), a
restart over the same database and data folder recovers, and the full audit
(`pubtrail audit`: entries, tiles, checkpoints, query tables, stored files)
finds nothing wrong.

How it is checked, on SQLite and on PostgreSQL: a real service (build_runtime)
drives real entries through its services, in rounds of four requests: a
trusted publisher added for the round's project and one for a second project,
concurrently, so that one batch has two waiters (two `publisher` entries); an
OIDC token exchanged for an upload token (an `exchange` entry; the token is
signed by a local issuer and verified against its JWKS over HTTP); and a
wheel uploaded with that token (a multipart body parsed into the spool,
stored content-addressed, an `upload` entry). `tests/reliability/faults.py`
numbers every write step of a normal round (each INSERT/UPDATE of the batch
transactions, the bulk entry insert, the commits, the spool write, each fsync
and the rename of the blob store: 30 steps), fails the test if it finds
fewer than expected or one kind missing, and then, for every step and each of two modes, runs one round in which that
step fails: "before" (raises, nothing done) and "after" (done, then raises;
for the commit: committed, acknowledgement lost). After each fault:

- every receipt handed out in the round is in the log at its index with its
  leaf hash, under the stored checkpoint it carries, and its inclusion proof
  verifies against that signed checkpoint;
- the callers that failed are exactly those the fault concerns: every waiter
  of the batch for a fault in a batch-wide step, the one entry for a fault in
  its projection (the other waiter of that batch gets its receipt), and each
  failure was caused by the injected fault;
- the log grew by exactly the receipts handed out, except after a commit whose
  acknowledgement was lost, where the entries of that batch are in the log
  though their callers got an error;
- no upload is left half-received in the spool;
- the failed requests, retried as a client would (the publisher again, a fresh
  OIDC token, the same file again), succeed; after a lost acknowledgement the
  retry is answered as for a request already done (409 conflict for the
  publisher, "already stored" for the file);
- the service is stopped and a new one is built over the same database and
  data folder (the start-up integrity check runs); the next fault's round runs
  on it (after the last fault, a normal round);
- the full audit (`audit_sequencer` with the blob store, what `pubtrail audit`
  runs) reports no problem.

Each log takes 12 faults (then a new log starts, so that the audit after each
fault stays short); at the end of each, every receipt handed out on it is
checked again against the final log, and each receipt's checkpoint is proven
consistent with the final one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import tlog
from app.errors import Conflict
from app.oidc.publishers import publisher_from_config
from app.runtime import Runtime, build_runtime
from app.sequencer import LogHalted, Receipt
from app.services.log_audit import audit_sequencer
from app.services.uploads import Accepted, AlreadyStored
from tests.conftest import reset_postgres
from tests.distributions.builders import build_wheel, chunked, encode, twine_fields
from tests.reliability.faults import MODES, FaultInjector, InjectedFault
from tests.support.oidc_issuer import GITHUB_ISSUER, LocalOIDCIssuer

NOW = 1_790_000_000.0
TIMEOUT = 30.0

#: every kind of write step a round must contain (the enumeration fails if one goes missing)
REQUIRED_STEPS = {
    "INSERT publisher",  # publisher projection
    "INSERT release_file",  # upload projection
    "INSERT log_entry (bulk)",
    "INSERT log_tile",
    "INSERT signed_checkpoint",
    "UPDATE log_state",
    "COMMIT",
    "blob write (spool)",
    "blob fsync file",
    "blob rename",
    "blob fsync dir",
}
FAULTS_PER_LOG = 12
MIN_STEPS = 30  # 3 batches of 5 log writes, 9 projection statements, 6 blob steps (spool write, file fsync, 2 fsyncs for the new fan-out folder, rename, folder fsync)
#: steps of the batch as a whole: a fault there fails every waiter of the batch
BATCH_STEPS = {"INSERT log_entry (bulk)", "INSERT log_tile", "INSERT signed_checkpoint", "UPDATE log_state", "COMMIT"}


async def _fetch(url: str) -> bytes:
    """The JWKS over HTTP with urllib: pubtrail's own fetcher builds a TLS context per
    fetch (about 0.2 s of CPU), once per restart here."""
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()

    return await asyncio.to_thread(get)


@pytest.fixture
def issuer():
    with LocalOIDCIssuer(audience="pubtrail") as server:
        yield server


@dataclass
class Round:
    """What one round's callers were told."""

    number: int
    receipts: list[Receipt] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    token: str | None = None
    already_stored: AlreadyStored | None = None

    @property
    def complete(self) -> bool:
        return not self.errors and self.token is not None and len(self.receipts) == 4


class Harness:
    """One log, restarted at will over the same database and data folder."""

    def __init__(self, settings, issuer: LocalOIDCIssuer, injector: FaultInjector, tmp_path: Path):
        self.settings = settings
        self.issuer = issuer
        self.injector = injector
        self.files = tmp_path / "wheels"
        self.files.mkdir(parents=True)
        self.clock = lambda: NOW
        self.runtime: Runtime | None = None
        self.receipts: list[Receipt] = []
        self._bodies: dict[int, tuple[bytes, str]] = {}

    async def open(self) -> None:
        self.runtime = build_runtime(self.settings, clock=self.clock, fetch=_fetch)
        self.injector.install_runtime(self.runtime)
        await self.runtime.log.sequencer.start()

    async def close(self) -> None:
        await self.runtime.log.sequencer.stop()
        self.runtime.close()
        self.runtime = None

    async def restart(self) -> None:
        await self.close()
        await self.open()

    @property
    def store(self):
        return self.runtime.log.sequencer.store

    def size(self) -> int:
        return self.store.state().size

    # --- the three requests --------------------------------------------------------

    @staticmethod
    def project(number: int) -> str:
        return f"fault-{number:04d}"

    async def add_publisher(self, number: int, sibling: bool = False) -> Receipt:
        """The round's publisher, for its project or (`sibling`) for a second project."""
        project = self.project(number) + ("-b" if sibling else "")
        publisher = publisher_from_config(
            "github",
            {
                "repository": "octo-org/sampleproject",
                "repository_owner_id": "65432",
                "workflow": f"release-{number}.yml",
                "environment": "pypi",
            },
        )
        _, receipt = await asyncio.wait_for(
            self.runtime.publishers.add(project, publisher, "fault-test"), TIMEOUT
        )
        return receipt

    async def exchange(self, number: int):
        oidc = self.issuer.sign(self.issuer.github_claims(now=self.clock(), workflow=f"release-{number}.yml"))
        body = json.dumps({"token": oidc}).encode()
        return await asyncio.wait_for(self.runtime.exchange.mint(body, "127.0.0.1"), TIMEOUT)

    def upload_body(self, number: int) -> tuple[bytes, str]:
        """Round `number`'s wheel upload (the same body every time it is asked for). Its
        content is chosen so that its fan-out folder is new: every round then takes
        the same write steps (a new folder adds fsyncs)."""
        if number not in self._bodies:
            name = self.project(number).replace("-", "_")
            path = self.files / f"{name}-1.0-py3-none-any.whl"
            for nonce in range(10_000):
                build_wheel(path, name=name, version="1.0", extra={f"{name}/nonce.py": b"N = %d\n" % nonce})
                data = path.read_bytes()
                if not self.runtime.blobs.path_for(hashlib.sha256(data).hexdigest()).parent.exists():
                    break
            self._bodies[number] = encode(twine_fields(path.name, data, name=self.project(number), version="1.0"))
        return self._bodies[number]

    async def upload(self, number: int, token: str) -> Accepted | AlreadyStored:
        body, content_type = self.upload_body(number)
        authorization = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        uploads = self.runtime.uploads
        grant = await uploads.authenticate(authorization)
        return await asyncio.wait_for(uploads.upload(grant, chunked(body), content_type), TIMEOUT)

    # --- rounds ----------------------------------------------------------------------

    async def round(self, number: int) -> Round:
        """Run round `number`; stop at the first refused request (the later ones depend on it)."""
        out = Round(number)
        # two waiters in one batch: both are queued before the sequencer collects
        added = await asyncio.gather(self.add_publisher(number), self.add_publisher(number, True), return_exceptions=True)
        for op, result in zip(("publisher", "sibling"), added):
            if isinstance(result, Exception):
                out.errors[op] = result
            else:
                out.receipts.append(result)
        if "publisher" in out.errors:
            return out
        try:
            minted = await self.exchange(number)
        except Exception as exc:  # noqa: BLE001
            out.errors["exchange"] = exc
            return out
        out.token = minted.token
        out.receipts.append(minted.receipt)
        try:
            result = await self.upload(number, out.token)
        except Exception as exc:  # noqa: BLE001
            out.errors["upload"] = exc
            return out
        if isinstance(result, Accepted):
            out.receipts.append(result.receipt)
        else:
            out.already_stored = result
        return out

    # --- checks ----------------------------------------------------------------------

    def check_receipts(self, receipts: list[Receipt]) -> None:
        """Each receipt's entry is in the log at its index with its leaf hash, under the
        stored checkpoint the receipt carries, and its inclusion proof verifies."""
        sequencer = self.runtime.log.sequencer
        stored = self.store.entries_at([r.index for r in receipts])
        for receipt in receipts:
            entry = stored.get(receipt.index)
            assert entry is not None, f"receipt for entry {receipt.index}, which is not in the log"
            assert entry.leaf_hash == receipt.leaf_hash == tlog.leaf_hash(entry.data), receipt.index
            checkpoint = self.store.checkpoint(receipt.tree_size)
            assert checkpoint is not None and checkpoint.note == receipt.checkpoint
            parsed = tlog.open_checkpoint(receipt.checkpoint, [sequencer.verifier], origin=sequencer.origin)
            assert (parsed.size, parsed.root_hash) == (receipt.tree_size, receipt.root_hash)
            tlog.verify_inclusion(
                receipt.leaf_hash, receipt.index, receipt.tree_size, receipt.inclusion_proof, receipt.root_hash
            )

    def check_consistent_with_latest(self, receipts: list[Receipt]) -> None:
        latest = self.store.checkpoint()
        tree = self.runtime.log.sequencer.tree
        for size, root in sorted({(r.tree_size, r.root_hash) for r in receipts}):
            if size == latest.size:
                assert root == latest.root_hash
                continue
            proof = tree.consistency_proof(size, latest.size)
            tlog.verify_consistency(size, latest.size, proof, root, latest.root_hash)

    def audit(self) -> None:
        report = audit_sequencer(self.runtime.log.sequencer, blobs=self.runtime.blobs)
        assert report.ok, report.summary()
        assert report.files and report.query_tables


def _caused_by_fault(error: BaseException, fault: InjectedFault) -> bool:
    seen = error
    while seen is not None:
        if seen is fault:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _baseline(harness: Harness, injector: FaultInjector) -> list[str]:
    """The write steps of a normal round (round 1: round 0 warms the caches, e.g. JWKS)."""
    await harness.open()
    try:
        for number in range(2):
            injector.start()
            done = await harness.round(number)
            baseline = injector.stop()
            assert done.complete, done.errors
            harness.receipts += done.receipts
        harness.check_receipts(harness.receipts)
        harness.audit()
    finally:
        await harness.close()
    missing = REQUIRED_STEPS - set(baseline)
    assert not missing, f"the enumeration lost write steps {sorted(missing)}: {baseline}"
    assert len(baseline) >= MIN_STEPS, baseline
    return baseline


async def _faults(harness: Harness, injector: FaultInjector, baseline: list[str], plan) -> int:
    """On one log: a normal round, then for each (step, mode) of `plan` a round with
    that fault, the retries, a restart and the audit (the next fault's round then
    runs on the restarted service; after the last one a normal round does).
    Returns how many faults lost an acknowledgement."""
    lost_acks = 0
    await harness.open()
    try:
        number = 0
        for step, mode in plan:
            if number == 0:
                done = await harness.round(number)
                assert done.complete, done.errors
                harness.receipts += done.receipts
                number += 1
            lost_acks += await _one_fault(harness, injector, number, step, mode, baseline)
            number += 1
        fresh = await harness.round(number)
        assert fresh.complete, fresh.errors
        harness.receipts += fresh.receipts
        harness.check_receipts(harness.receipts)
        harness.check_consistent_with_latest(harness.receipts)
        return lost_acks
    finally:
        if harness.runtime is not None:
            await harness.close()


async def _one_fault(harness: Harness, injector: FaultInjector, number: int, step: int, mode: str,
                     baseline: list[str]) -> bool:
    """Round `number` with the fault, the retries, a restart, the audit; True if the
    fault lost an acknowledgement (a commit done, its caller told it failed)."""
    label = baseline[step]
    before = harness.size()
    injector.start((step, mode))
    faulted = await harness.round(number)
    trace = injector.stop()
    fault = injector.fired
    assert fault is not None and fault.label == label, (step, mode, label, trace)
    assert trace[: step + 1] == baseline[: step + 1], (step, mode)
    # the callers whose step failed heard about it: every waiter of the batch, or
    # the one entry whose projection failed
    failed = set(faulted.errors)
    assert failed, (label, mode, "nobody heard of the fault")
    for error in faulted.errors.values():
        assert _caused_by_fault(error, fault), (label, mode, error)
    if failed & {"publisher", "sibling"}:
        expected = 2 if label in BATCH_STEPS else 1
        assert failed <= {"publisher", "sibling"} and len(failed) == expected, (label, mode, failed)
    else:
        assert len(failed) == 1, (label, mode, failed)
    harness.check_receipts(faulted.receipts)
    harness.receipts += faulted.receipts
    spool = harness.runtime.blobs.spool_dir
    assert not list(spool.iterdir()), (label, mode, "a half-received upload was left in the spool")
    unacknowledged = harness.size() - before - len(faulted.receipts)
    ack_lost = label == "COMMIT" and mode == "after"
    assert unacknowledged == (len(failed) if ack_lost else 0), (label, mode, unacknowledged)

    # the next batches: the client retries what failed
    retried = await _retry(harness, number, faulted, ack_lost)
    harness.check_receipts(retried.receipts)
    harness.receipts += retried.receipts

    await harness.restart()  # the start-up integrity check runs here
    harness.audit()
    return ack_lost


async def _retry(harness: Harness, number: int, faulted: Round, ack_lost: bool) -> Round:
    """Retry the failed requests and the ones that depend on them, as a client would."""
    sequencer = harness.runtime.log.sequencer
    failed = set(faulted.errors)
    retried = Round(number, token=faulted.token)
    try:
        for op in ("publisher", "sibling"):
            if op in failed:
                try:
                    retried.receipts.append(await harness.add_publisher(number, op == "sibling"))
                    assert not ack_lost, "a publisher whose entry is logged was registered again"
                except Conflict:
                    assert ack_lost, "a publisher the log never took is reported as registered"
        if retried.token is None:
            minted = await harness.exchange(number)  # a fresh OIDC token: the failed one's jti may be used
            retried.token = minted.token
            retried.receipts.append(minted.receipt)
        if failed & {"publisher", "exchange", "upload"}:
            result = await harness.upload(number, retried.token)
            if isinstance(result, AlreadyStored):
                assert ack_lost and "upload" in failed, "a file the log never took is reported as stored"
            else:
                assert not (ack_lost and "upload" in failed), "a file whose entry is logged was logged again"
                retried.receipts.append(result.receipt)
    except LogHalted as halted:
        # The promise allows a halt with a clear reason; but none of these faults is
        # damage to stored data, so none of them may halt the log.
        assert str(halted) and sequencer.halted(), halted
        raise AssertionError(f"a write fault halted the log: {halted}") from halted
    return retried


def test_a_fault_at_any_write_step_of_a_batch_loses_nothing(make_settings, database_url, issuer, tmp_path, monkeypatch):
    postgres = not database_url.startswith("sqlite")
    injector = FaultInjector()
    injector.install_modules(monkeypatch)

    def fresh_log(name: str) -> Harness:
        """A new, empty log: its own data folder (SQLite database, key, files)."""
        data_dir = tmp_path / name
        if postgres:
            reset_postgres(database_url)
            url = database_url
        else:
            url = f"sqlite:///{data_dir / 'db.sqlite3'}"
        settings = make_settings(data_dir=data_dir, database_url=url, jwks_urls=issuer.jwks_overrides(GITHUB_ISSUER))
        return Harness(settings, issuer, injector, data_dir)

    started = time.perf_counter()
    baseline = asyncio.run(_baseline(fresh_log("baseline"), injector))
    steps = int(os.environ.get("PUBTRAIL_FAULT_STEPS", len(baseline)))  # fewer, to debug one step
    plan = [(step, mode) for step in range(steps) for mode in MODES]
    lost_acks = 0
    for first in range(0, len(plan), FAULTS_PER_LOG):  # a new log now and then: the audit reads all of it
        chunk = plan[first : first + FAULTS_PER_LOG]
        lost_acks += asyncio.run(_faults(fresh_log(f"faults-{first}"), injector, baseline, chunk))
    faults = len(plan)
    elapsed = time.perf_counter() - started
    print(
        f"\n{'postgresql' if postgres else 'sqlite'}: {len(baseline)} write steps, {faults} injected faults "
        f"({lost_acks} lost acknowledgements), {elapsed:.1f} s"
    )
    assert faults == 2 * steps and lost_acks == baseline[:steps].count("COMMIT")
    assert baseline.count("INSERT publisher") == 2  # the first batch has two waiters
