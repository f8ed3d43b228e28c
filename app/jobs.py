"""Periodic jobs, wired to APScheduler in one place. Each job is a plain
function of the runtime, so tests call it directly.

Jobs that act on the shared database or file store run in one process at a
time, whatever the number of processes or hosts serving one database
(`pubtrail serve --workers N`): each round first takes the job's lock
without waiting (`JobLocks`), and a process that finds it taken skips the
round. The JWKS refresh is the exception: it refreshes the cache of the
process it runs in, so every process runs it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, text

from app.runtime import Runtime
from app.services.housekeeping import prune_failed_exchanges
from app.services.self_audit import SelfAudit, SelfAuditReport
from app.storage.db import is_sqlite

log = logging.getLogger("pubtrail.jobs")


def prune_used_jtis(runtime: Runtime) -> int:
    """Forget OIDC jtis whose tokens expired; they can no longer be replayed."""
    removed = runtime.exchange.prune_used_jtis()
    if removed:
        log.info("pruned %d expired jtis", removed)
    return removed


def prune_failed_exchange_audit(runtime: Runtime) -> int:
    """Keep the refused-exchange audit table at its cap (upload tokens, expired or
    not, are projections of the log and are never pruned)."""
    return prune_failed_exchanges(runtime.engine)


def sweep_upload_spool(runtime: Runtime, older_than: float = 3600.0) -> int:
    """Delete spooled upload files left behind by a crash mid-upload."""
    return runtime.blobs.sweep_spool(older_than, now=runtime.clock())


def collect_orphan_blobs(runtime: Runtime, older_than: float = 3600.0) -> int:
    """Delete stored files that no upload entry references: an upload refused
    after its file was stored (a lost race, a revoked token) leaves one."""
    removed = runtime.uploads.collect_orphan_blobs(older_than)
    if removed:
        log.info("removed %d unreferenced stored files", removed)
    return removed


def new_self_audit(runtime: Runtime) -> SelfAudit:
    """The self-audit of `runtime`'s log (it keeps its sample cursor between rounds)."""
    sequencer = runtime.log.sequencer
    return SelfAudit(
        sequencer.store, sequencer.verifier, sequencer.origin, sample=runtime.settings.self_audit_sample
    )


def self_audit(runtime: Runtime, auditor: SelfAudit) -> SelfAuditReport:
    """Audit a sample of the stored log (`app.services.self_audit`); on any
    mismatch halt the log in every process (no checkpoint is signed until
    `pubtrail audit` passes), which /healthz then reports with a 503. The halt
    is logged once; every failed round is counted in
    `pubtrail_self_audit_rounds_total{result="failed"}`."""
    report = auditor.run()
    runtime.metrics.self_audit_rounds.labels("ok" if report.ok else "failed").inc()
    if not report.ok:
        runtime.log.sequencer.halt(report.reason())
    return report


async def refresh_jwks(runtime: Runtime) -> dict[str, str | None]:
    """Re-fetch the keys of every issuer this process knows once they are
    `PUBTRAIL_JWKS_REFRESH_INTERVAL` old, so exchanges find them cached."""
    outcome = await runtime.exchange.verifier.jwks.refresh_ahead(runtime.settings.jwks_refresh_interval)
    for issuer, error in outcome.items():
        if error is not None:
            log.warning("JWKS refresh of %s failed, keeping the keys held: %s", issuer, error)
    return outcome


class JobLocks:
    """Per-job locks shared by every process using one database, taken without waiting.

    PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a connection
    held for the job's run, so it also spans hosts. SQLite: an exclusive
    non-blocking `flock` on `<database>-job-<name>.lock` beside the database
    (not the writer lock, which appends need meanwhile). An in-memory SQLite
    database has one process: a thread lock per job.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sqlite = is_sqlite(engine)
        database = engine.url.database if self._sqlite else None
        self._file_base = database if database and database != ":memory:" else None
        self._thread_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Yield True while this process holds job `name`'s lock, False if another holds it."""
        if not self._sqlite:
            with self._advisory(name) as held:
                yield held
        elif self._file_base is None:
            lock = self._thread_locks.setdefault(name, threading.Lock())
            held = lock.acquire(blocking=False)
            try:
                yield held
            finally:
                if held:
                    lock.release()
        else:
            with self._flock(name) as held:
                yield held

    @contextmanager
    def _advisory(self, name: str) -> Iterator[bool]:
        key = int.from_bytes(hashlib.sha256(b"pubtrail-job:" + name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
            conn.commit()  # the lock is the session's: do not sit idle in a transaction meanwhile
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()

    @contextmanager
    def _flock(self, name: str) -> Iterator[bool]:
        fd = os.open(f"{self._file_base}-job-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # closing the descriptor releases the lock
        finally:
            os.close(fd)


def export_static_copy(runtime: Runtime):
    """Bring PUBTRAIL_EXPORT_DIR up to the checkpoint `/checkpoint` serves (app.services.export:
    new tiles only, the checkpoint last, after the copy was checked against it). With witnesses,
    that is the latest witnessed checkpoint; until there is one, the round does nothing."""
    from app.services.export import publish

    result = publish(runtime.log.reader, runtime.settings.export_dir, getattr(runtime, "witnessing", None))
    if result is None:
        return None
    if result.tiles_written or result.bundles_written:
        log.info("static copy %s: %s", runtime.settings.export_dir, result.summary())
    return result


def deliver_webhooks(runtime: Runtime) -> int:
    """One pass of the monitors' webhook deliveries (app.services.deliveries): a backstop
    for the worker task each serving process runs; leases keep the two from making
    one attempt twice. Returns the number of attempts made."""
    return runtime.deliveries.run_once_sync()


def run_once(runtime: Runtime, locks: JobLocks, name: str, job: Callable, *args):
    """Run `job(runtime, *args)` unless another process runs job `name` now
    (then count the skip in `pubtrail_jobs_skipped_total` and return None)."""
    with locks.hold(name) as held:
        if not held:
            runtime.metrics.jobs_skipped.labels(name).inc()
            log.debug("job %s runs in another process; skipped this round", name)
            return None
        return job(runtime, *args)


def start_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """Start the periodic jobs on the running event loop; the caller shuts it down."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    locks = JobLocks(runtime.engine)
    settings = runtime.settings

    def once(name: str, job: Callable, *args, **interval) -> None:
        scheduler.add_job(run_once, "interval", args=[runtime, locks, name, job, *args], id=name, **interval)

    once("prune-jtis", prune_used_jtis, minutes=10)
    once("prune-failed-exchanges", prune_failed_exchange_audit, hours=1)
    once("sweep-spool", sweep_upload_spool, hours=1)
    once("orphan-blobs", collect_orphan_blobs, hours=1)
    once("webhooks", deliver_webhooks, minutes=1)
    if settings.export_dir is not None:
        once("static-export", export_static_copy, seconds=max(1.0, settings.export_interval))
    if settings.self_audit_interval > 0:
        once("self-audit", self_audit, new_self_audit(runtime), seconds=settings.self_audit_interval)
    if settings.jwks_refresh_interval > 0:
        # every process: each refreshes its own key cache (first round at start, to warm it)
        scheduler.add_job(
            refresh_jwks, "interval", args=[runtime], id="refresh-jwks",
            seconds=max(1.0, settings.jwks_refresh_interval / 2), next_run_time=_now(),
        )
    scheduler.start()
    return scheduler


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
