"""The exchange_identity projection: written with each exchange, rebuilt from the log for
exchanges logged before the table existed."""

from __future__ import annotations

from sqlalchemy import delete, select

from app.runtime import build_runtime
from app.services.exchange import backfill_identities
from app.storage.tables import ExchangeIdentity

_identity = ExchangeIdentity.__table__


def _rows(service):
    with service.runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(_identity).order_by(_identity.c.log_index))]


def test_each_exchange_gets_its_identity_row(service):
    service.add_github_publisher(repository="Octo-Org/SampleProject")
    service.mint(service.github_token(repository="Octo-Org/SampleProject", actor="octocat"))
    [row] = _rows(service)
    assert row["log_index"] == 1 and row["provider"] == "github"
    assert row["repository"] == "octo-org/sampleproject"  # stored folded for queries
    assert row["workflow"] == "release.yml" and row["environment"] == "pypi"
    assert row["job_workflow_ref"] == "octo-org/sampleproject/.github/workflows/release.yml@refs/tags/v1.0.0"
    assert row["at"] == int(service.clock())


def test_missing_rows_are_rebuilt_from_the_log(service):
    service.add_github_publisher()
    for ref in ("refs/tags/v1", "refs/tags/v2", "refs/tags/v3"):
        assert service.mint(service.github_token(ref=ref)).status_code == 200
    before = _rows(service)
    assert len(before) == 3
    with service.runtime.engine.begin() as conn:
        conn.execute(delete(_identity).where(_identity.c.log_index != before[1]["log_index"]))
    assert backfill_identities(service.runtime.log.sequencer) == 2
    assert _rows(service) == before
    assert backfill_identities(service.runtime.log.sequencer) == 0

    with service.runtime.engine.begin() as conn:
        conn.execute(delete(_identity))
    restarted = build_runtime(service.runtime.settings, clock=service.clock)  # start-up fills them in
    restarted.close()
    assert _rows(service) == before
