"""Long-lived API tokens over a real socket: created, listed and revoked by an admin (each a
logged entry with a receipt), used by real twine, refused once revoked or once the project
takes trusted publishing only; and PyPI's stale-release guard."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from app import entries
from app.services.log_audit import audit_sequencer
from app.storage.tables import ApiToken, ReleaseFile
from tests.e2e.test_upload import PROJECT, _post, _twine, build_sdist, build_wheel

DAY = 86_400


def _entry(service, index: int) -> tuple[dict, bytes, dict]:
    body = service.client.get(f"/api/v1/log/entries/{index}").json()
    return body["entry"], base64.b64decode(body["entry_bytes"]), body


def _create(service, description: str = "ci-legacy", project: str = PROJECT) -> dict:
    response = service.client.post(
        f"/api/v1/projects/{project}/tokens", json={"description": description}, headers=service.admin
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def project_with_publisher(service, tmp_path):
    """sampleproject with a GitHub publisher and a first release uploaded through it."""
    service.add_github_publisher(PROJECT)
    token = service.upload_token()
    assert _post(service, build_wheel(tmp_path, "1.0.0"), token=token).status_code == 200
    return service


def test_admin_creates_lists_and_revokes_api_tokens_as_logged_entries(project_with_publisher):
    service = project_with_publisher
    before = service.log_size()
    created = _create(service)
    assert set(created) == {"id", "token", "description", "created_at", "project", "receipt"}
    assert created["token"].startswith(f"pubtrail-api-v1.{created['id']}.")
    assert created["description"] == "ci-legacy" and created["project"] == PROJECT
    entry, raw, body = _entry(service, before)
    assert entry == {
        "kind": "api_token", "v": 1, "time": created["created_at"], "action": "create", "project": PROJECT,
        "token_id": created["id"], "description": "ci-legacy", "actor": "admin",
    }
    secret = created["token"].split(".")[2]
    assert secret.encode() not in raw
    service.verify_receipt(created["receipt"], raw)
    with service.runtime.engine.connect() as conn:  # only the hash is kept
        stored = conn.execute(select(ApiToken.__table__)).one()
    assert secret.encode() not in bytes(stored.secret_hash) and len(bytes(stored.secret_hash)) == 32

    listed = service.client.get(f"/api/v1/projects/{PROJECT}/tokens", headers=service.admin)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tokens"]] == [created["id"]]
    assert secret not in listed.text and "token\"" not in listed.text.replace('"tokens"', "")
    assert listed.json()["tokens"][0]["revoked_at"] is None

    revoked = service.client.delete(f"/api/v1/projects/{PROJECT}/tokens/{created['id']}", headers=service.admin)
    assert revoked.status_code == 200, revoked.text
    entry, raw, _ = _entry(service, before + 1)
    assert (entry["kind"], entry["action"], entry["token_id"], entry["description"]) == (
        "api_token", "revoke", created["id"], "ci-legacy")
    service.verify_receipt(revoked.json()["receipt"], raw)
    assert revoked.json()["token"]["revoked_log_index"] == before + 1
    again = service.client.delete(f"/api/v1/projects/{PROJECT}/tokens/{created['id']}", headers=service.admin)
    assert again.status_code == 404 and service.log_size() == before + 2


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {}, 400),
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {"description": ""}, 400),
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {"description": 5}, 400),
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {"description": "x" * 201}, 400),
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {"description": "a\u0000b"}, 400),
        ("POST", f"/api/v1/projects/{PROJECT}/tokens", {"description": "d", "scope": "all"}, 400),
        ("POST", "/api/v1/projects/no-such-project/tokens", {"description": "d"}, 404),
        ("POST", "/api/v1/projects/-bad-/tokens", {"description": "d"}, 400),
        ("GET", "/api/v1/projects/no-such-project/tokens", None, 404),
        ("DELETE", f"/api/v1/projects/{PROJECT}/tokens/0123456789abcdef", None, 404),
        ("PATCH", f"/api/v1/projects/{PROJECT}", {"trusted_publishing_only": "yes"}, 400),
        ("PATCH", f"/api/v1/projects/{PROJECT}", {"trusted_publishing_only": 1}, 400),
        ("PATCH", f"/api/v1/projects/{PROJECT}", {}, 400),
        ("PATCH", "/api/v1/projects/no-such-project", {"trusted_publishing_only": True}, 404),
    ],
)
def test_bad_admin_requests_are_refused_and_log_nothing(project_with_publisher, method, path, body, status):
    service = project_with_publisher
    before = service.log_size()
    response = service.client.request(method, path, json=body, headers=service.admin)
    assert response.status_code == status, response.text
    assert service.log_size() == before
    assert service.client.request(method, path, json=body).status_code == 401


def test_twine_uploads_with_an_api_token_and_the_entry_says_so(project_with_publisher, tmp_path):
    service = project_with_publisher
    created = _create(service)
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel, sdist = build_wheel(dist, "1.0.1"), build_sdist(dist, "1.0.1")
    before = service.log_size()
    run = _twine(service, created["token"], wheel, sdist)
    assert run.returncode == 0, run.stdout + run.stderr
    assert service.log_size() == before + 2
    for index in (before, before + 1):
        entry, raw, body = _entry(service, index)
        decoded = entries.decode(raw)
        assert decoded.encode() == raw and decoded.v == 2
        assert (entry["auth"], entry["token_id"], entry["exchange_index"], entry["publisher"], entry["attestations"]) == (
            "api_token", created["id"], None, None, [])
        assert created["token"].split(".")[2].encode() not in raw
        service.verify_receipt(body, raw)
    with service.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(ReleaseFile.__table__.c.token_id, ReleaseFile.__table__.c.exchange_log_index)
            .where(ReleaseFile.__table__.c.version == "1.0.1")
        ).all()
    assert sorted(rows) == [(created["id"], None)] * 2
    report = audit_sequencer(service.runtime.log.sequencer)
    assert report.ok, report.summary()


def test_a_token_of_another_project_or_a_wrong_secret_is_refused(project_with_publisher, tmp_path):
    service = project_with_publisher
    service.add_github_publisher("other-project")
    other = _create(service, project="other-project")
    wheel = build_wheel(tmp_path, "1.0.1")
    before = service.log_size()
    refused = _post(service, wheel, token=other["token"], version="1.0.1")
    assert refused.status_code == 403 and "isn't allowed to upload to project" in refused.reason_phrase
    mine = _create(service)
    forged = mine["token"][:-4] + ("AAAA" if not mine["token"].endswith("AAAA") else "BBBB")
    refused = _post(service, wheel, token=forged, version="1.0.1")
    assert refused.status_code == 403 and "not recognised" in refused.reason_phrase
    assert service.log_size() == before + 1  # only the second token's create entry


def test_revoking_the_token_or_trusted_publishing_only_stops_api_token_uploads(project_with_publisher, tmp_path):
    service = project_with_publisher
    first, second = _create(service, "ci-legacy"), _create(service, "ci-other")
    assert _post(service, build_wheel(tmp_path, "1.0.1"), token=first["token"], version="1.0.1").status_code == 200

    assert service.client.delete(
        f"/api/v1/projects/{PROJECT}/tokens/{first['id']}", headers=service.admin).status_code == 200
    before = service.log_size()
    refused = _post(service, build_wheel(tmp_path, "1.0.2"), token=first["token"], version="1.0.2")
    assert refused.status_code == 403 and "revoked" in refused.reason_phrase, refused.reason_phrase
    assert service.log_size() == before

    patched = service.client.patch(f"/api/v1/projects/{PROJECT}", json={"trusted_publishing_only": True},
                                   headers=service.admin)
    assert patched.status_code == 200, patched.text
    entry, raw, _ = _entry(service, before)
    assert entry == {"kind": "project_settings", "v": 1, "time": entry["time"], "project": PROJECT,
                     "trusted_publishing_only": True, "actor": "admin"}
    service.verify_receipt(patched.json()["receipt"], raw)
    refused = _post(service, build_wheel(tmp_path, "1.0.2"), token=second["token"], version="1.0.2")
    assert refused.status_code == 403
    assert "trusted publishing only" in refused.reason_phrase, refused.reason_phrase
    # trusted publishing still works
    token = service.upload_token()
    assert _post(service, build_wheel(tmp_path, "1.0.2"), token=token, version="1.0.2").status_code == 200
    # and switching it back lets the live token upload again
    assert service.client.patch(f"/api/v1/projects/{PROJECT}", json={"trusted_publishing_only": False},
                                headers=service.admin).status_code == 200
    assert _post(service, build_wheel(tmp_path, "1.0.3"), token=second["token"], version="1.0.3").status_code == 200
    report = audit_sequencer(service.runtime.log.sequencer)
    assert report.ok, report.summary()


def test_new_files_for_a_release_older_than_the_window_are_refused(project_with_publisher, tmp_path):
    """PyPI's stale-release guard, with PyPI's text; the window counts from the release's first file."""
    service = project_with_publisher  # 1.0.0's wheel uploaded at NOW
    created = _create(service)
    service.clock.value += 14 * DAY  # exactly 14 days: still inside
    sdist = build_sdist(tmp_path, "1.0.0")
    assert _post(service, sdist, token=created["token"]).status_code == 200
    service.clock.value += 1
    late = build_wheel(tmp_path, "1.0.0", payload=b"late", filename="sampleproject-1.0.0-py2.py3-none-any.whl")
    before = service.log_size()
    with service.runtime.engine.connect() as conn:
        files = conn.execute(select(func.count()).select_from(ReleaseFile.__table__)).scalar_one()
    refused = _post(service, late, token=created["token"])
    assert refused.status_code == 400
    assert refused.reason_phrase == "Uploading new files to releases older than 14 days is not allowed."
    assert service.log_size() == before
    with service.runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ReleaseFile.__table__)).scalar_one() == files
    # a new release is always allowed, whatever its age
    assert _post(service, build_wheel(tmp_path, "2.0.0"), token=created["token"], version="2.0.0").status_code == 200


@pytest.mark.parametrize("spelling", ["1.0", "1", "1.0.0.0"])
def test_the_stale_release_guard_finds_the_release_by_canonical_version(project_with_publisher, tmp_path, spelling):
    """1.0.0's first file is older than the window: "1.0" (or "1") is the same release, as on PyPI."""
    service = project_with_publisher  # 1.0.0's wheel uploaded at NOW
    created = _create(service)
    service.clock.value += 14 * DAY + 1
    before = service.log_size()
    refused = _post(service, build_sdist(tmp_path, spelling), token=created["token"], version=spelling)
    assert refused.status_code == 400, refused.text
    assert refused.reason_phrase == "Uploading new files to releases older than 14 days is not allowed."
    assert service.log_size() == before


def test_the_window_is_configurable(make_service, tmp_path):
    service = make_service(release_file_window_days=1)
    service.add_github_publisher(PROJECT)
    assert _post(service, build_wheel(tmp_path, "1.0.0"), token=service.upload_token()).status_code == 200
    service.clock.value += DAY + 1
    refused = _post(service, build_sdist(tmp_path, "1.0.0"), token=service.upload_token())
    assert refused.status_code == 400
    assert refused.reason_phrase == "Uploading new files to releases older than 1 days is not allowed."


def test_the_cli_creates_lists_revokes_and_sets_trusted_publishing_only(project_with_publisher, monkeypatch, capsys):
    import json

    from app.cli import main
    from tests.conftest import ADMIN_TOKEN

    service = project_with_publisher
    monkeypatch.setenv("PUBTRAIL_ADMIN_TOKEN", ADMIN_TOKEN)
    url = ["--url", service.url]
    assert main(["tokens", "create", PROJECT, "--description", "ci-legacy", *url]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("pubtrail-api-v1.") and created["receipt"]["index"] == service.log_size() - 1
    assert main(["tokens", "list", PROJECT, *url]) == 0
    listed = capsys.readouterr().out
    assert created["id"] in listed and created["token"] not in listed
    assert main(["tokens", "revoke", PROJECT, created["id"], *url]) == 0
    assert json.loads(capsys.readouterr().out)["token"]["revoked_by"] == "admin"
    assert main(["tokens", "revoke", PROJECT, created["id"], *url]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["projects", "set", PROJECT, "--trusted-publishing-only", "true", *url]) == 0
    assert json.loads(capsys.readouterr().out)["trusted_publishing_only"] is True
    assert main(["projects", "set", PROJECT, "--trusted-publishing-only", "maybe", *url]) == 2


def test_the_answer_carrying_a_new_api_tokens_secret_is_not_cached(project_with_publisher):
    service = project_with_publisher
    response = service.client.post(
        f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci"}, headers=service.admin
    )
    assert response.status_code == 201 and "token" in response.json()
    assert response.headers["cache-control"] == "no-store"
