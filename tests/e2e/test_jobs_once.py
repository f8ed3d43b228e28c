"""Jobs run in one process at a time: two schedulers on one database (two
engines, as two worker processes or hosts would have) never run one job at
once; the one that finds the job's lock taken skips the round."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from app.jobs import JobLocks, prune_failed_exchange_audit, run_once
from app.metrics import Metrics
from app.services.exchange import FAILED_EXCHANGES_KEPT
from app.storage.db import make_engine
from app.storage.log_store import create_schema
from app.storage.tables import FailedExchange


@pytest.fixture
def two_processes(database_url):
    """Two (runtime-like, JobLocks) pairs, each with its own engine on one database."""
    engines = [make_engine(database_url), make_engine(database_url)]
    yield [(SimpleNamespace(metrics=Metrics(), engine=engine), JobLocks(engine)) for engine in engines]
    for engine in engines:
        engine.dispose()


def _skipped(runtime, job: str) -> float:
    return runtime.metrics.jobs_skipped.labels(job)._value.get()


def test_a_job_held_elsewhere_is_skipped_and_counted(two_processes):
    (first, first_locks), (second, second_locks) = two_processes
    started, release = threading.Event(), threading.Event()

    def slow(_runtime):
        started.set()
        assert release.wait(10)
        return "done"

    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("a", run_once(first, first_locks, "self-audit", slow)))
    worker.start()
    assert started.wait(10)
    ran = []
    assert run_once(second, second_locks, "self-audit", lambda _r: ran.append(1)) is None
    assert ran == [] and _skipped(second, "self-audit") == 1
    # another job is not held back by this one
    assert run_once(second, second_locks, "prune-jtis", lambda _r: "other") == "other"
    release.set()
    worker.join(10)
    assert results == {"a": "done"}
    # released: the next round runs wherever it is scheduled
    assert run_once(second, second_locks, "self-audit", lambda _r: "now") == "now"
    assert _skipped(first, "self-audit") == 0


def test_two_schedulers_never_run_one_job_at_once(two_processes):
    running, overlaps, runs = [0], [], []
    guard = threading.Lock()

    def job(_runtime, who):
        with guard:
            running[0] += 1
            if running[0] > 1:
                overlaps.append(who)
        time.sleep(0.002)
        with guard:
            running[0] -= 1
        runs.append(who)

    def scheduler(runtime, locks, who):
        for _ in range(60):
            run_once(runtime, locks, "orphan-blobs", job, who)

    threads = [threading.Thread(target=scheduler, args=(*pair, who)) for who, pair in enumerate(two_processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert overlaps == []
    skipped = sum(_skipped(runtime, "orphan-blobs") for runtime, _ in two_processes)
    assert len(runs) + skipped == 120 and skipped > 0 and runs


def test_failed_exchange_audit_is_pruned_to_its_cap(database_url):
    engine = make_engine(database_url)
    try:
        create_schema(engine)
        table = FailedExchange.__table__
        with engine.begin() as conn:
            conn.execute(table.delete())
            conn.execute(
                table.insert(),
                [{"at": n, "code": "invalid-token", "description": "x"} for n in range(FAILED_EXCHANGES_KEPT + 42)],
            )
        runtime = SimpleNamespace(engine=engine)
        assert prune_failed_exchange_audit(runtime) == 42
        assert prune_failed_exchange_audit(runtime) == 0
        with engine.connect() as conn:
            oldest = conn.execute(table.select().order_by(table.c.id).limit(1)).first()
            count = conn.execute(table.select()).all()
        assert len(count) == FAILED_EXCHANGES_KEPT and oldest.at == 42
    finally:
        engine.dispose()


def test_every_job_but_the_per_process_jwks_refresh_runs_through_its_lock(service):
    from app.jobs import start_scheduler

    async def scheduled():
        scheduler = start_scheduler(service.runtime)
        try:
            return {job.id: job for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)

    jobs = asyncio.run(scheduled())
    assert {"prune-jtis", "prune-failed-exchanges", "sweep-spool", "orphan-blobs", "self-audit", "refresh-jwks"} <= set(jobs)
    for name, job in jobs.items():
        if name != "refresh-jwks":
            assert job.func is run_once and job.args[2] == name, name


def test_refresh_jwks_job_fetches_every_configured_issuer_then_waits_for_their_age(service):
    from app.jobs import refresh_jwks

    first = asyncio.run(refresh_jwks(service.runtime))
    assert first and all(error is None for error in first.values())
    assert set(first) == set(service.runtime.settings.jwks_urls)
    assert asyncio.run(refresh_jwks(service.runtime)) == {}  # keys of monotonic seconds ago are fresh
    service.add_github_publisher()
    service.issuer.reset_counts()
    assert service.mint(service.github_token()).status_code == 200
    assert service.issuer.request_counts["/jwks"] == 0  # the exchange found its keys cached


_HOLDER = """
import sys
from app.jobs import JobLocks
from app.storage.db import make_engine
engine = make_engine(sys.argv[1])
with JobLocks(engine).hold("self-audit") as held:
    print("held" if held else "taken", flush=True)
    sys.stdin.read()  # until the test closes our stdin
engine.dispose()
"""


def test_a_job_held_by_another_process_is_skipped(database_url):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, database_url], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    engine = make_engine(database_url)
    try:
        assert holder.stdout.readline().strip() == "held"
        runtime = SimpleNamespace(metrics=Metrics())
        assert run_once(runtime, JobLocks(engine), "self-audit", lambda _r: "ran") is None
        assert _skipped(runtime, "self-audit") == 1
        holder.stdin.close()
        assert holder.wait(30) == 0
        assert run_once(runtime, JobLocks(engine), "self-audit", lambda _r: "ran") == "ran"
    finally:
        if holder.poll() is None:
            holder.kill()
        engine.dispose()
