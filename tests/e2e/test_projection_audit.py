"""pubtrail audit replays the entries and compares every query table with what they imply."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, update

from app.services.log_audit import audit_sequencer
from app.services.projection_audit import COLUMNS
from app.storage.tables import ExchangeClaim, ExchangeIdentity, Publisher, ReleaseFile, TokenRevocation, UploadToken
from tests.e2e.test_upload import PROJECT, _post, build_wheel


@pytest.fixture
def busy(service, tmp_path):
    """A log with every entry kind: publishers added and removed, exchanges, uploads, a revocation."""
    service.add_github_publisher(PROJECT)
    service.add_github_publisher("other-project")
    gitlab = {"provider": "gitlab", "namespace": "g", "project": "p", "workflow_filepath": ".gitlab-ci.yml"}
    added = service.client.post("/api/v1/projects/third/publishers", json=gitlab, headers=service.admin).json()
    service.client.delete(f"/api/v1/projects/third/publishers/{added['publisher']['id']}", headers=service.admin)
    token = service.upload_token()
    for version in ("1.0.0", "1.0.1"):
        wheel = build_wheel(tmp_path, version)
        assert _post(service, wheel, token=token, version=version).status_code == 200
    doomed = service.upload_token(ref="refs/tags/v2")
    assert service.client.post(
        f"/api/v1/tokens/{doomed.split('.')[1]}/revoke", json={"reason": "test"}, headers=service.admin
    ).status_code == 200
    return service


def _audit(service):
    return audit_sequencer(service.runtime.log.sequencer)


def test_every_query_table_is_rebuilt_from_the_entries(busy):
    report = _audit(busy)
    assert report.ok, report.summary()
    assert report.query_tables == len(COLUMNS) == 8
    assert "8 query tables checked" in report.summary()


@pytest.mark.parametrize(
    "table, change",
    [
        ("release_file", lambda t: update(t).values(version="6.6.6").where(t.c.version == "1.0.1")),
        ("exchange_identity", lambda t: delete(t).where(t.c.log_index == select_first(t))),
        ("exchange_claim", lambda t: update(t).values(value="evil/repo").where(t.c.name == "repository")),
        ("upload_token", lambda t: update(t).values(revoked_at=None)),
        ("token_revocation", lambda t: update(t).values(revoked_by="nobody")),
        ("publisher", lambda t: update(t).values(removed_at=None, removed_by=None, removed_log_index=None)),
        ("publisher", lambda t: insert(t).values(
            id="f" * 16, project="x", provider="github", lookup_key="github:a/b", config="{}", added_at=0,
            added_by="admin", added_log_index=0,
        )),
    ],
)
def test_a_table_that_disagrees_with_the_entries_is_reported(busy, table, change):
    tables = {t.name: t for t in (ReleaseFile.__table__, ExchangeIdentity.__table__, ExchangeClaim.__table__,
                                  UploadToken.__table__, TokenRevocation.__table__, Publisher.__table__)}
    with busy.runtime.engine.begin() as conn:
        assert conn.execute(change(tables[table])).rowcount != 0
    report = _audit(busy)
    assert not report.ok
    assert [p for p in report.problems if p.startswith(f"table {table} is not what the entries imply")], report.problems
    assert len(report.problems) == 1, report.problems


def select_first(table):
    from sqlalchemy import func, select

    return select(func.min(table.c.log_index)).scalar_subquery()
