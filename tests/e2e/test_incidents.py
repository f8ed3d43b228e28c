"""Incidents: declared over the admin API, tokens revoked in the entry's own transaction, coverage."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from app import entries
from app.errors import Conflict
from app.storage.tables import Incident, IncidentToken, UploadToken
from tests.e2e.blast_corpus import Corpus, _add, mint, upload

URL = "/api/v1/incidents"


@pytest.fixture
def scene(service, tmp_path):
    """Two repositories' publishers; app-1 minted three tokens (one used, one expired), app-2 one."""
    corpus = Corpus()
    for repository in ("octo-org/app-1", "octo-org/app-2"):
        _add(service, repository, "release.yml")
    old = mint(service, corpus, "octo-org/app-1", "release.yml", "refs/tags/v1", "pypi", "rsa-1")
    service.clock.value += 20 * 60  # `old` has expired
    used = mint(service, corpus, "octo-org/app-1", "release.yml", "refs/tags/v1", "pypi", "rsa-1")
    spare = mint(service, corpus, "octo-org/app-1", "release.yml", "refs/heads/main", None, "rsa-2")
    other = mint(service, corpus, "octo-org/app-2", "release.yml", "refs/tags/v1", "pypi", "rsa-1")
    first = upload(service, corpus, used, tmp_path)
    elsewhere = upload(service, corpus, other, tmp_path)
    return corpus, dict(old=old, used=used, spare=spare, other=other), first, elsewhere


def _files(page):
    """Every file dict in a project page, wherever it nests them."""
    if isinstance(page, dict):
        if "filename" in page and "incidents" in page:
            yield page
        for value in page.values():
            yield from _files(value)
    elif isinstance(page, list):
        for value in page:
            yield from _files(value)


def declare(service, **body):
    body = {"description": "app-1's CI was compromised", "criteria": {"repository": "octo-org/app-1"}, **body}
    return service.client.post(URL, json=body, headers=service.admin)


def _counts(service) -> tuple[int, int, int]:
    with service.runtime.engine.connect() as conn:
        revoked = conn.execute(
            select(func.count()).select_from(UploadToken.__table__).where(UploadToken.revoked_at.is_not(None))
        ).scalar_one()
        incidents = conn.execute(select(func.count()).select_from(Incident.__table__)).scalar_one()
        listed = conn.execute(select(func.count()).select_from(IncidentToken.__table__)).scalar_one()
    return revoked, incidents, listed


def test_declare_revokes_live_matching_tokens_only(service, scene, tmp_path):
    corpus, tokens, first, elsewhere = scene
    response = declare(service)
    assert response.status_code == 201, response.text
    answer = response.json()
    want = sorted([tokens["used"].token_id, tokens["spare"].token_id])  # not the expired one, not app-2's
    assert answer["revoked_tokens"] == want
    assert answer["removed_publishers"] == []
    # the entry says all of it, and its receipt proves it
    entry_answer = service.client.get(f"/api/v1/log/entries/{answer['log_index']}").json()
    raw = base64.b64decode(entry_answer["entry_bytes"])
    entry = entries.decode(raw)
    assert isinstance(entry, entries.IncidentEntry)
    assert (entry.incident_id, entry.revoked_tokens, entry.actor) == (answer["id"], want, "admin")
    assert entry.criteria == {"repository": "octo-org/app-1"}
    service.verify_receipt(answer["receipt"], raw)
    # the blast radius at that moment
    blast = answer["blast_radius"]
    assert [i["index"] for i in blast["uploads"]] == [first.index]
    states = {i["token_id"]: i["token_state"] for i in blast["exchanges"]}
    assert states == {tokens["old"].token_id: "expired", tokens["used"].token_id: "revoked",
                      tokens["spare"].token_id: "revoked"}
    assert blast["totals"]["tokens_valid"] == 0

    # revoked tokens are refused (403); the unrelated repository's token still uploads
    size = service.log_size()
    for name in ("used", "spare"):
        upload(service, corpus, tokens[name], tmp_path, refused=403)
    assert service.log_size() == size
    upload(service, corpus, tokens["other"], tmp_path)

    # public reads: the list with totals, one incident with its blast radius and revoked tokens
    listed = service.client.get(URL).json()["incidents"]
    assert [i["id"] for i in listed] == [answer["id"]]
    assert listed[0]["totals"]["uploads"] == 1 and listed[0]["declared_by"] == "admin"
    one = service.client.get(f"{URL}/{answer['id']}").json()
    assert one["revoked_tokens"] == want
    assert [i["index"] for i in one["blast_radius"]["uploads"]] == [first.index]
    assert service.client.get(f"{URL}/inc-nope").status_code == 404

    # coverage: the compromised repository's file, not the other one
    covering = service.runtime.incidents.covering(first.index)
    assert covering == [{"id": answer["id"], "description": "app-1's CI was compromised",
                         "log_index": answer["log_index"], "declared_at": entry.time}]
    assert service.runtime.incidents.covering(elsewhere.index) == []
    # a second incident on the same file: both cover it, oldest first; covering_many agrees
    second = declare(service, description="the token leaked", criteria={"token_id": tokens["used"].token_id}).json()
    assert second["revoked_tokens"] == []  # already revoked by the first
    both = service.runtime.incidents.covering(first.index)
    assert [i["id"] for i in both] == [answer["id"], second["id"]]
    assert service.runtime.incidents.covering_many([elsewhere.index, first.index]) == {
        first.index: both, elsewhere.index: []}
    covering = both
    # ... named in provenance answers and project pages
    for record, want_incidents in ((first, covering), (elsewhere, [])):
        sha256 = service.client.get(f"/api/v1/log/entries/{record.index}").json()["entry"]["sha256"]
        provenance = service.client.get(f"/api/v1/provenance/{sha256}")
        assert provenance.status_code == 200, provenance.text
        assert provenance.json()["incidents"] == want_incidents
        page = service.client.get(f"/api/v1/projects/{record.project}").json()
        files = [f for f in _files(page) if f["filename"] == record.filename]
        assert [f["incidents"] for f in files] == [want_incidents]


def test_a_failure_midway_leaves_no_entry_and_no_revocation(service, scene, tmp_path, monkeypatch):
    corpus, tokens, _, _ = scene
    size = service.log_size()
    before = _counts(service)

    def broken(*_args, **_kwargs):  # runs after the tokens' UPDATE, inside the entry's transaction
        raise Conflict("injected: the incident rows could not be written")

    monkeypatch.setattr("app.services.incidents.write_incident", broken)
    response = declare(service)
    assert response.status_code == 409 and "injected" in response.json()["detail"]
    assert service.log_size() == size
    assert _counts(service) == before
    monkeypatch.undo()
    # the tokens still work: nothing was revoked
    upload(service, corpus, tokens["spare"], tmp_path)
    assert declare(service).status_code == 201


def test_disable_publishers_removes_each_matching_publisher(service, scene):
    corpus, tokens, _, _ = scene
    response = declare(service, disable_publishers=True, revoke_tokens=False)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["revoked_tokens"] == []
    removed = answer["removed_publishers"]
    assert [(r["project"], r["publisher_id"]) for r in removed] == [("proj-1", tokens["used"].publisher_id)]
    entry = service.client.get(f"/api/v1/log/entries/{removed[0]['log_index']}").json()["entry"]
    assert (entry["kind"], entry["action"], entry["publisher_id"]) == ("publisher", "remove", tokens["used"].publisher_id)
    # app-1 can no longer mint; app-2 still can
    refused = service.mint(service.issuer.sign(service.issuer.github_claims(
        now=service.clock(), repository="octo-org/app-1", repository_owner_id="1000", workflow="release.yml")))
    assert refused.status_code == 422
    mint(service, corpus, "octo-org/app-2", "release.yml", "refs/tags/v1", "pypi", "rsa-1")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ([], "JSON object"),
        ({"criteria": {"repository": "a/b"}}, "description"),
        ({"description": "x"}, "criteria is required"),
        ({"description": "x", "criteria": {}}, "at least one criterion"),
        ({"description": "x", "criteria": {"since": "2026-01-01T00:00:00Z"}}, "at least one criterion"),
        ({"description": "x", "criteria": {"repository": 5}}, "must be a string"),
        ({"description": "x", "criteria": {"repo": "a/b"}}, "unknown criterion"),
        ({"description": "x", "criteria": {"repository": "a/b"}, "revoke_tokens": "yes"}, "true or false"),
        ({"description": "x", "criteria": {"repository": "a/b"}, "extra": 1}, "unknown fields"),
        ({"description": "x" * 2001, "criteria": {"repository": "a/b"}}, "description"),
    ],
)
def test_bad_declarations_are_400_and_log_nothing(service, body, fragment):
    size = service.log_size()
    response = service.client.post(URL, json=body, headers=service.admin)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]
    assert service.log_size() == size


def test_declaring_needs_the_admin_token(service):
    response = service.client.post(URL, json={"description": "x", "criteria": {"repository": "a/b"}})
    assert response.status_code == 401


def test_a_token_minted_while_declaring_is_not_missed(service, scene, monkeypatch):
    """The token list is checked again under the write lock: a stale plan is recomputed, never logged."""
    corpus, tokens, _, _ = scene
    from app.services.incidents import Incidents

    real = Incidents._live_tokens_now
    calls = []

    def stale_first(self, criteria, now):
        planned = real(self, criteria, now)
        calls.append(planned)
        upload_tokens, api_tokens = planned
        return (upload_tokens[1:], api_tokens) if len(calls) == 1 else planned  # the first plan misses a token

    monkeypatch.setattr(Incidents, "_live_tokens_now", stale_first)
    size = service.log_size()
    answer = declare(service).json()
    assert len(calls) == 2
    want = sorted([tokens["used"].token_id, tokens["spare"].token_id])
    assert answer["revoked_tokens"] == want
    assert service.log_size() == size + 1  # one incident entry, not two
