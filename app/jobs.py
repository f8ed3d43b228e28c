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
    blobs = getattr(runtime, "blobs", None)
    return blobs.sweep_spool(older_than) if blobs is not None else 0


def start_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """Start the periodic jobs on the running event loop; the caller shuts it down."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(prune_used_jtis, "interval", minutes=10, args=[runtime], id="prune-jtis")
    scheduler.add_job(sweep_upload_spool, "interval", hours=1, args=[runtime], id="sweep-spool")
    scheduler.start()
    return scheduler
