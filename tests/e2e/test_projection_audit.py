"""pubtrail audit replays the entries and compares every query table with what they imply."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, update

from app.services.log_audit import audit_sequencer
from app.services.projection_audit import COLUMNS
from app.storage.tables import (
    ApiToken,
    ExchangeClaim,
    ExchangeIdentity,
    Incident,
    IncidentToken,
    ProjectSetting,
    Publisher,
    ReleaseFile,
    TokenRevocation,
    UploadToken,
)
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
    service.upload_token(ref="refs/tags/v3")  # live: the incident revokes it
    declared = service.client.post("/api/v1/incidents", headers=service.admin, json={
        "description": "the release workflow leaked its token", "criteria": {"ref": "refs/tags/v3"},
    })
    assert declared.status_code == 201, declared.text
    assert len(declared.json()["revoked_tokens"]) == 1
    # a long-lived API token used, another revoked, and a project switched to trusted publishing only
    used = service.client.post(f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci"}, headers=service.admin)
    assert used.status_code == 201, used.text
    assert _post(service, build_wheel(tmp_path, "1.0.2"), token=used.json()["token"], version="1.0.2").status_code == 200
    gone = service.client.post(f"/api/v1/projects/{PROJECT}/tokens", json={"description": "old"}, headers=service.admin)
    assert service.client.delete(
        f"/api/v1/projects/{PROJECT}/tokens/{gone.json()['id']}", headers=service.admin
    ).status_code == 200
    assert service.client.patch(
        "/api/v1/projects/other-project", json={"trusted_publishing_only": True}, headers=service.admin
    ).status_code == 200
    return service


def _audit(service):
    return audit_sequencer(service.runtime.log.sequencer)


def test_every_query_table_is_rebuilt_from_the_entries(busy):
    report = _audit(busy)
    assert report.ok, report.summary()
    assert report.query_tables == len(COLUMNS) == 13
    assert "13 query tables checked" in report.summary()


def test_every_table_is_log_projection_or_named_operational():
    """A new table must be compared by the audit, or be declared not derived from entries."""
    from sqlmodel import SQLModel

    import app.storage.tables  # noqa: F401

    log = {"log_state", "log_entry", "log_tile", "signed_checkpoint"}
    operational = {"used_jti", "failed_exchange", "log_halt", "monitor", "webhook_delivery", "witness_cosignature"}
    assert set(SQLModel.metadata.tables) == log | operational | set(COLUMNS)


@pytest.mark.parametrize(
    "table, change",
    [
        ("release_file", lambda t: update(t).values(version="6.6.6").where(t.c.version == "1.0.1")),
        ("exchange_identity", lambda t: delete(t).where(t.c.log_index == select_first(t))),
        ("exchange_claim", lambda t: update(t).values(value="evil/repo").where(t.c.name == "repository")),
        ("upload_token", lambda t: update(t).values(revoked_at=None)),
        ("token_revocation", lambda t: update(t).values(revoked_by="nobody")),
        ("incident", lambda t: update(t).values(description="nothing happened")),
        ("incident_token", lambda t: delete(t)),
        ("api_token", lambda t: update(t).values(revoked_at=None, revoked_by=None, revoked_log_index=None)),
        ("api_token", lambda t: update(t).values(description="innocent")),
        ("project_setting", lambda t: update(t).values(trusted_publishing_only=False)),
        ("publisher", lambda t: update(t).values(removed_at=None, removed_by=None, removed_log_index=None)),
        ("publisher", lambda t: insert(t).values(
            id="f" * 16, project="x", provider="github", lookup_key="github:a/b", config="{}", added_at=0,
            added_by="admin", added_log_index=0,
        )),
    ],
)
def test_a_table_that_disagrees_with_the_entries_is_reported(busy, table, change):
    tables = {t.__table__.name: t.__table__ for t in (
        ReleaseFile, ExchangeIdentity, ExchangeClaim, UploadToken, TokenRevocation, Publisher, Incident, IncidentToken,
        ApiToken, ProjectSetting,
    )}
    with busy.runtime.engine.begin() as conn:
        assert conn.execute(change(tables[table])).rowcount != 0
    report = _audit(busy)
    assert not report.ok
    assert [p for p in report.problems if p.startswith(f"table {table} is not what the entries imply")], report.problems
    assert len(report.problems) == 1, report.problems


def select_first(table):
    from sqlalchemy import func, select

    return select(func.min(table.c.log_index)).scalar_subquery()
