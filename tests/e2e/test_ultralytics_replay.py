"""An Ultralytics-shaped incident (December 2024), replayed: the first malicious releases came
from the project's genuine trusted-publishing workflow (publish.yml), the later ones were
uploaded with a leaked long-lived API token. Responders told them apart by how each upload was
authorised; so must pubtrail: blast-radius queries by workflow, by token and by `auth` each
return exactly their half, verified against the pinned key (server and local mirror alike);
provenance says plainly how each file was authorised and flags the API-token ones; a watch
rule on `api_token_on_trusted_project` fires for them only; revoking the token and switching
the project to trusted-publishing-only each stop the second path (403)."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.clients.blast_radius import fetch_and_verify as blast_radius
from app.clients.http import Server
from app.clients.provenance import verify_provenance
from app.tlog import note
from tests.e2e.test_monitor import follower, key_of
from tests.e2e.test_upload import _post, build_sdist, build_wheel

PROJECT = "sampleproject"
REPOSITORY = "ultralytics/sampleproject"


def _workflow_token(service, version: str) -> str:
    """An upload token minted for a run of the genuine publish.yml on tag v<version>."""
    ref = f"{REPOSITORY}/.github/workflows/publish.yml@refs/tags/v{version}"
    return service.upload_token(
        repository=REPOSITORY, workflow_ref=ref, job_workflow_ref=ref, ref=f"refs/tags/v{version}", environment=None,
    )


@pytest.fixture
def replay(service, tmp_path):
    """8.3.41 and 8.3.42 from publish.yml (trusted publishing), then 8.3.45 and 8.3.46 with the
    API token 'ci-legacy' that had been created long before."""
    service.add_github_publisher(PROJECT, repository=REPOSITORY, workflow="publish.yml", environment="")
    created = service.client.post(
        f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci-legacy"}, headers=service.admin
    )
    assert created.status_code == 201, created.text
    api_token = created.json()
    halves: dict[str, list[str]] = {"trusted_publishing": [], "api_token": []}
    for version in ("8.3.41", "8.3.42"):
        service.clock.value += 3600
        token = _workflow_token(service, version)
        for path in (build_wheel(tmp_path, version), build_sdist(tmp_path, version)):
            assert _post(service, path, token=token, version=version).status_code == 200
            halves["trusted_publishing"].append(path.name)
    for version in ("8.3.45", "8.3.46"):
        service.clock.value += 3600
        for path in (build_wheel(tmp_path, version), build_sdist(tmp_path, version)):
            response = _post(service, path, token=api_token["token"], version=version)
            assert response.status_code == 200, response.reason_phrase
            halves["api_token"].append(path.name)
    return service, api_token, halves, tmp_path


def _files(result) -> list[str]:
    return sorted(item["filename"] for item, _ in result.uploads)


def test_blast_radius_by_workflow_token_and_auth_each_return_exactly_their_half(replay):
    service, api_token, halves, _ = replay
    verifier = note.Verifier(key_of(service))
    with Server(service.url) as server:
        by_workflow = blast_radius(server, verifier, {"repository": REPOSITORY, "workflow": "publish.yml"})
        by_token = blast_radius(server, verifier, {"token_id": api_token["id"]})
        by_api = blast_radius(server, verifier, {"auth": "api_token", "project": PROJECT})
        by_tp = blast_radius(server, verifier, {"auth": "trusted_publishing", "project": PROJECT})
        api_alone = blast_radius(server, verifier, {"auth": "api_token"})
        nothing = blast_radius(server, verifier, {"workflow": "publish.yml", "auth": "api_token"})
    assert _files(by_workflow) == _files(by_tp) == sorted(halves["trusted_publishing"])
    assert _files(by_token) == _files(by_api) == _files(api_alone) == sorted(halves["api_token"])
    assert len(by_workflow.exchanges) == 2 and by_token.exchanges == [] and by_api.exchanges == []
    assert {item["auth"] for item, _ in by_token.uploads} == {"api_token"}
    assert {item["auth"] for item, _ in by_workflow.uploads} == {"trusted_publishing"}
    assert nothing.uploads == [] and nothing.exchanges == []
    # the CSV says how each upload was authorised
    csv = service.client.get("/api/v1/blast-radius", params={"project": PROJECT, "format": "csv"}).text
    rows = [line.split(",") for line in csv.strip().splitlines()]
    assert rows[0][-1] == "auth"
    assert sorted(r[-1] for r in rows[1:]) == ["api_token"] * 4 + ["trusted_publishing"] * 4
    bad = service.client.get("/api/v1/blast-radius", params={"auth": "password"})
    assert bad.status_code == 400 and "auth must be one of" in bad.json()["detail"]


def test_provenance_says_how_each_file_was_authorised(replay):
    service, api_token, halves, tmp_path = replay
    verifier = note.Verifier(key_of(service))
    entries = {}
    size = service.log_size()
    for index in range(size):
        entry = service.client.get(f"/api/v1/log/entries/{index}").json()["entry"]
        if entry["kind"] == "upload":
            entries[entry["filename"]] = entry
    created_on = api_token["created_at"][:10]

    leaked = verify_provenance(
        service.client.get(f"/api/v1/provenance/{entries[halves['api_token'][0]]['sha256']}").json(), verifier
    )
    assert leaked.auth == "api_token" and leaked.publisher is None and leaked.exchange_index is None
    assert leaked.authorised_by == f"uploaded with API token 'ci-legacy' created {created_on}"
    assert leaked.api_token is not None and leaked.api_token.token_id == api_token["id"]
    assert leaked.flags == ["api_token_on_trusted_project"]
    # a change of identity from the trusted workflow to no publisher at all
    first_api = verify_provenance(service.client.get(
        f"/api/v1/provenance/{entries['sampleproject-8.3.45-py3-none-any.whl']['sha256']}").json(), verifier)
    assert first_api.continuity.changed and first_api.continuity.previous_version == "8.3.42"

    genuine = verify_provenance(
        service.client.get(f"/api/v1/provenance/{entries[halves['trusted_publishing'][0]]['sha256']}").json(), verifier
    )
    assert genuine.auth == "trusted_publishing" and genuine.flags == [] and genuine.api_token is None
    assert genuine.authorised_by == f"uploaded through trusted publishing: github, {REPOSITORY}, workflow publish.yml"

    # the project page names the token instead of an exchange, without proofs
    page = service.client.get(f"/api/v1/projects/{PROJECT}").json()
    files = {f["filename"]: f for r in page["releases"] for f in r["files"]}
    api_file = files[halves["api_token"][0]]
    assert api_file["auth"] == "api_token" and api_file["exchange"] is None and api_file["publisher"] is None
    assert api_file["api_token"]["id"] == api_token["id"] and api_file["flags"] == ["api_token_on_trusted_project"]
    assert api_file["authorised_by"] == leaked.authorised_by
    assert files[halves["trusted_publishing"][0]]["flags"] == []

    # a tampered answer is caught: an API-token upload passed off as trusted publishing
    answer = service.client.get(f"/api/v1/provenance/{entries[halves['api_token'][0]]['sha256']}").json()
    answer["authorised_by"] = genuine.authorised_by
    with pytest.raises(Exception, match="authorised_by"):
        verify_provenance(answer, verifier)

    # pubtrail verify prints the path plainly
    wheel = build_wheel(tmp_path / "v", "8.3.45") if (tmp_path / "v").mkdir() is None else None
    assert main(["verify", str(wheel), "--server", service.url, "--key", key_of(service)]) == 0


def test_the_mirror_answers_the_same_and_the_watch_event_fires_for_the_api_token_half(replay, capsys):
    service, api_token, halves, tmp_path = replay
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "api token on a trusted project"\nevent = "api_token_on_trusted_project"\n'
        '[[rule]]\nname = "any api token upload"\nauth = "api_token"\n'
    )
    state = str(tmp_path / "state")
    args = ["monitor", "--server", service.url, "--key", key_of(service), "--state", state, "--once",
            "--watch", str(rules)]
    assert main(args) == 0
    out = capsys.readouterr().out
    fired = [line for line in out.splitlines() if "ALERT rule 'api token on a trusted project'" in line]
    assert len(fired) == 4, out
    assert len([line for line in out.splitlines() if "ALERT rule 'any api token upload'" in line]) == 4

    monitor = follower(service, tmp_path)
    monitor.step()
    for criteria in ({"token_id": api_token["id"]}, {"auth": "api_token", "project": PROJECT},
                     {"workflow": "publish.yml"}):
        server_answer = service.client.get("/api/v1/blast-radius", params=criteria).json()
        mirrored = monitor.mirror.blast_radius(criteria, now=int(service.clock())).to_json()
        assert [u["filename"] for u in mirrored["uploads"]] == [u["filename"] for u in server_answer["uploads"]]
        assert mirrored["totals"]["uploads"] == server_answer["totals"]["uploads"]
        assert mirrored["totals"]["tokens_valid"] == server_answer["totals"]["tokens_valid"], criteria
    for name in (halves["api_token"][0], halves["trusted_publishing"][0]):
        sha256 = next(
            e["sha256"] for e in (service.client.get(f"/api/v1/log/entries/{i}").json()["entry"]
                                  for i in range(service.log_size())) if e.get("filename") == name
        )
        server_answer = service.client.get(f"/api/v1/provenance/{sha256}").json()
        assert monitor.mirror.provenance(sha256) == server_answer
        assert main(["provenance", "--mirror", str(tmp_path / "state"), sha256]) == 0
        assert json.loads(capsys.readouterr().out) == server_answer


def test_revoking_the_token_and_trusted_publishing_only_stop_the_second_path(replay):
    service, api_token, _, tmp_path = replay
    second = service.client.post(
        f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci-other"}, headers=service.admin
    ).json()
    assert service.client.delete(
        f"/api/v1/projects/{PROJECT}/tokens/{api_token['id']}", headers=service.admin
    ).status_code == 200
    before = service.log_size()
    refused = _post(service, build_wheel(tmp_path, "8.3.47"), token=api_token["token"], version="8.3.47")
    assert refused.status_code == 403 and "revoked" in refused.reason_phrase
    assert service.client.patch(
        f"/api/v1/projects/{PROJECT}", json={"trusted_publishing_only": True}, headers=service.admin
    ).status_code == 200
    refused = _post(service, build_wheel(tmp_path, "8.3.47"), token=second["token"], version="8.3.47")
    assert refused.status_code == 403 and "trusted publishing only" in refused.reason_phrase
    assert service.log_size() == before + 1  # the settings entry only
    # the genuine workflow still publishes
    token = _workflow_token(service, "8.3.47")
    assert _post(service, build_wheel(tmp_path, "8.3.47"), token=token, version="8.3.47").status_code == 200


def test_a_server_monitor_on_the_event_matches_the_api_token_uploads_only(replay):
    """The webhook scanner derives api_token_on_trusted_project from the publisher table as of
    each upload's index: the four API-token uploads match, nothing else does."""
    import time

    from sqlalchemy import select

    from app.storage.tables import Monitor, WebhookDelivery

    service, _, _, _ = replay
    monitor = service.client.post("/api/v1/monitors", headers=service.admin, json={
        "name": "api token on a trusted project", "match": {"event": "api_token_on_trusted_project"},
        "webhook_url": "http://127.0.0.1:9/hook",
    })
    assert monitor.status_code == 201, monitor.text
    bad = service.client.post("/api/v1/monitors", headers=service.admin, json={
        "name": "typo", "match": {"event": "api_token_on_trusted"}, "webhook_url": "http://127.0.0.1:9/hook",
    })
    assert bad.status_code == 400 and "unknown event" in bad.text
    # a monitor looks at entries logged after it: replay the API-token half once more, with a new token
    second = service.client.post(
        f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci-other"}, headers=service.admin
    ).json()
    for version in ("8.3.47", "8.3.48"):
        assert _post(service, build_wheel(service.runtime.settings.data_dir, version), token=second["token"],
                     version=version).status_code == 200
    assert _post(service, build_wheel(service.runtime.settings.data_dir, "8.3.49"),
                 token=_workflow_token(service, "8.3.49"), version="8.3.49").status_code == 200
    table, monitors = WebhookDelivery.__table__, Monitor.__table__
    size, deadline = service.log_size(), time.monotonic() + 30
    while True:  # until the monitor has looked at every entry
        service.runtime.deliveries.scan()
        with service.runtime.engine.connect() as conn:
            cursor = conn.execute(select(monitors.c.cursor).where(monitors.c.id == monitor.json()["id"])).scalar()
            indexes = sorted(conn.execute(select(table.c.entry_index).where(
                table.c.monitor_id == monitor.json()["id"])).scalars())
        if cursor >= size:
            break
        assert time.monotonic() < deadline, f"the monitor's cursor stays at {cursor} of {size}"
        time.sleep(0.1)
    uploads = [i for i in range(service.log_size())
               if service.client.get(f"/api/v1/log/entries/{i}").json()["entry"].get("token_id") == second["id"]
               and service.client.get(f"/api/v1/log/entries/{i}").json()["entry"]["kind"] == "upload"]
    assert indexes == uploads and len(uploads) == 2


@pytest.mark.parametrize("criteria", ["token_id", "auth"])
def test_an_incident_on_the_api_token_half_revokes_the_token(replay, criteria):
    """Declared by token id or by auth=api_token, the incident revokes the live API token (listed
    in the entry's revoked_tokens, its api_token row revoked by the incident), twine then gets
    403 with it, blast radius counts it among tokens_valid until then, and the audit agrees."""
    from app.services.log_audit import audit_sequencer
    from tests.e2e.test_upload import _twine

    service, api_token, _, tmp_path = replay
    asked = {"token_id": api_token["id"]} if criteria == "token_id" else {"auth": "api_token"}
    verifier = note.Verifier(key_of(service))
    with Server(service.url) as server:
        assert blast_radius(server, verifier, asked).totals["tokens_valid"] == 1
    declared = service.client.post(
        "/api/v1/incidents", json={"description": "ci-legacy leaked", "criteria": asked, "revoke_tokens": True},
        headers=service.admin,
    )
    assert declared.status_code == 201, declared.text
    answer = declared.json()
    assert answer["revoked_tokens"] == [api_token["id"]]
    logged = service.client.get(f"/api/v1/log/entries/{answer['log_index']}").json()["entry"]
    assert logged["kind"] == "incident" and logged["revoked_tokens"] == [api_token["id"]]
    listed = service.client.get(f"/api/v1/projects/{PROJECT}/tokens", headers=service.admin).json()["tokens"]
    assert [(t["id"], t["revoked_by"], t["revoked_log_index"]) for t in listed] == [
        (api_token["id"], "admin", answer["log_index"])]
    assert service.client.get(f"/api/v1/incidents/{answer['id']}").json()["revoked_tokens"] == [api_token["id"]]
    with Server(service.url) as server:
        assert blast_radius(server, verifier, asked).totals["tokens_valid"] == 0
    monitor = follower(service, tmp_path)
    monitor.step()
    assert monitor.mirror.blast_radius(asked, now=int(service.clock())).totals["tokens_valid"] == 0
    dist = tmp_path / "late"
    dist.mkdir()
    before = service.log_size()
    twine = _twine(service, api_token["token"], build_wheel(dist, "8.3.47"))
    assert twine.returncode != 0 and "403" in twine.stdout + twine.stderr, twine.stdout + twine.stderr
    assert service.log_size() == before
    # a second incident finds nothing left to revoke
    again = service.client.post("/api/v1/incidents", json={"description": "again", "criteria": asked},
                                headers=service.admin)
    assert again.status_code == 201 and again.json()["revoked_tokens"] == []
    report = audit_sequencer(service.runtime.log.sequencer)
    assert report.ok, report.summary()
