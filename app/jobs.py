"""Periodic jobs, wired to APScheduler in one place. Each job is a plain
function of the runtime, so tests call it directly."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.runtime import Runtime

log = logging.getLogger("pubtrail.jobs")


def prune_used_jtis(runtime: Runtime) -> int:
    """Forget OIDC jtis whose tokens expired; they can no longer be replayed."""
    removed = runtime.exchange.prune_used_jtis()
    if removed:
        log.info("pruned %d expired jtis", removed)
    return removed


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


def start_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """Start the periodic jobs on the running event loop; the caller shuts it down."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(prune_used_jtis, "interval", minutes=10, args=[runtime], id="prune-jtis")
    scheduler.add_job(sweep_upload_spool, "interval", hours=1, args=[runtime], id="sweep-spool")
    scheduler.add_job(collect_orphan_blobs, "interval", hours=1, args=[runtime], id="orphan-blobs")
    scheduler.start()
    return scheduler
