"""How an upload was authorised, as the pure parts see it: watch rules (`auth`, `event`),
blast-radius criteria (`auth`), the plain sentence of `authorised_by`, and a mirror written
before API tokens existed, upgraded in place."""

from __future__ import annotations

import sqlite3

import pytest

from app.clients.mirror import FILE, Mirror
from app.entries import UploadEntry, rfc3339
from app.errors import BadRequest
from app.identity import authorised_by
from app.services.criteria import from_query
from app.watch import WatchRuleError, events_of, parse_rule


def _upload(auth: str = "trusted_publishing", v: int = 2) -> UploadEntry:
    trusted = auth == "trusted_publishing"
    return UploadEntry(
        time=rfc3339(1_790_000_000), project="demo", version="1.0", filename="demo-1.0.tar.gz", packagetype="sdist",
        size=1, sha256="a" * 64, blake2b_256="b" * 64, requires_python=None, token_id="0123456789abcdef",
        exchange_index=3 if trusted else None,
        publisher={"provider": "github", "repository": "o/r", "workflow": "publish.yml"} if trusted else None,
        auth=auth, attestations=None if v == 1 else [], v=v,
    )


def test_rules_on_auth_and_event():
    api, trusted, old = _upload("api_token"), _upload(), _upload(v=1)
    by_auth = parse_rule({"name": "api tokens", "auth": "api_token"})
    assert by_auth.matches(api) and not by_auth.matches(trusted) and not by_auth.matches(old)
    assert parse_rule({"name": "tp", "auth": "trusted_publishing"}).matches(old)  # v1 uploads were trusted
    event = parse_rule({"name": "flag", "event": "api_token_on_trusted_project", "project": "demo"})
    assert event.matches(api, None, events_of(api, trusted_project=True))
    assert not event.matches(api, None, events_of(api, trusted_project=False))
    assert not event.matches(trusted, None, events_of(trusted, trusted_project=True))
    # an API-token upload has no identity: identity criteria never match it, an allow-list always does
    assert not parse_rule({"name": "repo", "repository": "o/r"}).matches(api)
    allowed = parse_rule({"name": "u", "project": "demo", "unexpected_publisher": [{"repository": "o/r"}]})
    assert allowed.matches(api) and not allowed.matches(trusted)
    assert parse_rule(by_auth.to_json()) == by_auth


@pytest.mark.parametrize("raw, message", [
    ({"name": "x", "auth": "password"}, "unknown auth"),
    ({"name": "x", "event": "api_token_used"}, "unknown event"),
    ({"name": "x", "event": ""}, "non-empty"),
])
def test_bad_rules_are_refused(raw, message):
    with pytest.raises(WatchRuleError, match=message):
        parse_rule(raw)


def test_blast_radius_criteria_take_auth():
    assert from_query([("auth", "api_token")]).to_json() == {"auth": "api_token"}
    assert from_query([("auth", "trusted_publishing"), ("project", "Demo")]).to_json() == {
        "auth": "trusted_publishing", "project": "demo"}
    with pytest.raises(BadRequest, match="auth must be one of"):
        from_query([("auth", "API_TOKEN")])


def test_authorised_by_reads_plainly():
    token = {"description": "ci-legacy", "time": "2024-06-01T09:30:00Z"}
    assert authorised_by("api_token", None, token) == "uploaded with API token 'ci-legacy' created 2024-06-01"
    who = {"provider": "github", "repository": "ultralytics/ultralytics", "workflow": "publish.yml", "environment": "pypi"}
    assert authorised_by("trusted_publishing", who, None) == (
        "uploaded through trusted publishing: github, ultralytics/ultralytics, workflow publish.yml, environment pypi"
    )


def test_a_mirror_from_before_api_tokens_is_upgraded_in_place(tmp_path):
    conn = sqlite3.connect(tmp_path / FILE)
    conn.executescript(
        """
        CREATE TABLE upload (
            idx INTEGER PRIMARY KEY, at INTEGER NOT NULL, project TEXT NOT NULL, version TEXT NOT NULL,
            filename TEXT NOT NULL, sha256 TEXT NOT NULL, token_id TEXT NOT NULL, exchange_idx INTEGER NOT NULL
        );
        INSERT INTO upload VALUES (5, 1, 'demo', '1.0', 'demo-1.0.tar.gz', 'aa', 't', 4);
        """
    )
    conn.commit()
    conn.close()
    mirror = Mirror(tmp_path)
    rows = mirror.conn.execute("SELECT idx, exchange_idx, auth FROM upload").fetchall()
    assert rows == [(5, 4, "trusted_publishing")]
    mirror.conn.execute("INSERT INTO upload VALUES (6, 2, 'demo', '1.1', 'demo-1.1.tar.gz', 'bb', 'k', NULL, 'api_token')")
    indexes = {row[1] for row in mirror.conn.execute("PRAGMA index_list(upload)")}
    assert {"upload_token", "upload_exchange", "upload_project", "upload_sha256"} <= indexes
    mirror.close()
    Mirror(tmp_path).close()  # idempotent
