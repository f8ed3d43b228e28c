"""Periodic jobs are plain functions of the runtime (time from the runtime's clock)."""

from __future__ import annotations

import os

from app.jobs import prune_used_jtis, sweep_upload_spool


def test_prune_used_jtis_forgets_only_expired_tokens(service):
    service.add_github_publisher()
    assert service.mint(service.github_token()).status_code == 200
    assert prune_used_jtis(service.runtime) == 0
    service.clock.value += 3600  # the OIDC token (5 min) and its grace minute are long gone
    assert prune_used_jtis(service.runtime) == 1


def test_sweep_upload_spool_removes_old_leftovers(service):
    spool = service.runtime.blobs.spool_dir
    old, fresh = spool / "old.part", spool / "fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    now = service.clock()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(fresh, (now - 60, now - 60))
    assert sweep_upload_spool(service.runtime, older_than=3600) == 1
    assert not old.exists() and fresh.exists()
