"""GET /api/v1/provenance/{sha256} over a real socket, on SQLite and PostgreSQL.

Files are uploaded through the legacy API with tokens minted from known OIDC
claims; every answer is checked against that ground truth, and its two (or
three) log items are proven against the answer's checkpoint with the pinned
verifier key.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import event

from app.services.provenance import continuity
from tests.e2e.provenance_support import PROJECT, mint, open_answer, upload, verify_item

RELEASE_YML = {"workflow": "release.yml", "environment": "pypi"}


def _provenance(service, sha256: str) -> dict:
    response = service.client.get(f"/api/v1/provenance/{sha256}")
    assert response.status_code == 200, response.text
    return response.json()


def _expected_publisher(claims: dict) -> dict:
    """The publisher fields, read straight from the claims the test signed."""
    workflow_ref = claims["job_workflow_ref"]
    return {
        "issuer": claims["iss"],
        "provider": "github",
        "repository": claims["repository"],
        "repository_owner_id": claims["repository_owner_id"],
        "workflow": workflow_ref.split("@", 1)[0].rsplit("/", 1)[1],
        "workflow_ref": claims["workflow_ref"],
        "job_workflow_ref": workflow_ref,
        "ref": claims["ref"],
        "sha": claims["sha"],
        "environment": claims.get("environment"),
        "run_id": claims["run_id"],
        "run_attempt": claims["run_attempt"],
        "actor": claims["actor"],
        "subject": claims["sub"],
    }


def test_provenance_of_a_wheel_and_an_sdist(service, tmp_path):
    service.add_github_publisher(PROJECT)
    publisher = mint(service)
    wheel = upload(service, publisher, tmp_path / "w", "1.0.0", "wheel")
    service.clock.value += 5
    sdist = upload(service, publisher, tmp_path / "s", "1.0.0", "sdist")
    service.clock.value += 5
    service.add_github_publisher("another-project")  # the log grows past the uploads

    for file in (wheel, sdist):
        answer = _provenance(service, file.sha256)
        assert {k: answer[k] for k in ("project", "version", "filename", "packagetype", "size", "sha256",
                                       "blake2b_256", "uploaded_at")} == {
            "project": PROJECT, "version": "1.0.0", "filename": file.path.name, "packagetype": file.packagetype,
            "size": file.size, "sha256": file.sha256, "blake2b_256": file.blake2b_256, "uploaded_at": file.time,
        }
        assert answer["publisher"] == _expected_publisher(file.claims)
        assert answer["incidents"] == []
        assert answer["identity_continuity"] == {
            "changed": False,
            "current": {"provider": "github", "repository": "octo-org/sampleproject", "workflow": "release.yml",
                        "environment": "pypi"},
            "previous": None,
            "previous_release": None,
        }
        # both items proven at the size of the answer's checkpoint, which verifies with the pinned key
        checkpoint = open_answer(service, answer)
        assert checkpoint.size == service.log_size()
        upload_item, exchange_item = answer["upload"], answer["exchange"]
        assert (upload_item["index"], exchange_item["index"]) == (file.index, file.exchange_index)
        upload_entry = json.loads(verify_item(checkpoint, upload_item))
        exchange_entry = json.loads(verify_item(checkpoint, exchange_item))
        assert upload_item["entry"] == upload_entry and exchange_item["entry"] == exchange_entry
        assert (upload_entry["kind"], exchange_entry["kind"]) == ("upload", "exchange")
        assert (upload_entry["sha256"], upload_entry["blake2b_256"], upload_entry["size"]) == (
            file.sha256, file.blake2b_256, file.size)
        assert upload_entry["exchange_index"] == exchange_item["index"]
        assert upload_entry["token_id"] == exchange_entry["token_id"] == publisher.token.split(".")[1]
        assert exchange_entry["claims"]["repository"] == file.claims["repository"]
        # exactly the item shape of /api/v1/log/entries/{i} (there proven at the latest size, the same here)
        entry_answer = service.client.get(f"/api/v1/log/entries/{file.index}").json()
        assert {k: entry_answer[k] for k in upload_item} == upload_item


def test_upper_case_hex_is_the_same_digest(service, tmp_path):
    service.add_github_publisher(PROJECT)
    wheel = upload(service, mint(service), tmp_path, "1.0.0")
    assert _provenance(service, wheel.sha256.upper()) == _provenance(service, wheel.sha256)


@pytest.mark.parametrize(
    "bad", ["abc", "0" * 63, "0" * 65, "g" * 64, "0" * 62 + " 0", "sha256:" + "0" * 57, "%00" + "0" * 61]
)
def test_anything_but_64_hex_digits_is_400(service, bad):
    response = service.client.get(f"/api/v1/provenance/{bad}")
    assert response.status_code == 400
    assert response.json() == {"detail": "sha256 must be 64 hex digits (the SHA-256 of the file)"}


def test_unknown_hash_is_404_naming_it(service, tmp_path):
    service.add_github_publisher(PROJECT)
    upload(service, mint(service), tmp_path, "1.0.0")
    unknown = "AB" * 32
    response = service.client.get(f"/api/v1/provenance/{unknown}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"no uploaded file has sha256 {unknown.lower()}"}


def test_identity_continuity_across_releases(service, tmp_path):
    service.add_github_publisher(PROJECT)  # release.yml, environment pypi
    service.add_github_publisher(PROJECT, environment=None)  # release.yml, any environment
    service.add_github_publisher(PROJECT, workflow="deploy.yml")
    main = mint(service)
    v1_wheel = upload(service, main, tmp_path / "1", "1.0.0")
    v1_sdist = upload(service, main, tmp_path / "1s", "1.0.0", "sdist")
    # the same identity, the repository spelled in another case (GitHub names are case-insensitive)
    v11 = upload(service, mint(service, repository="Octo-Org/SampleProject"), tmp_path / "11", "1.1.0")
    # another environment
    staging = mint(service, environment="staging")
    v2 = upload(service, staging, tmp_path / "2", "2.0.0")
    # the sdist of 2.0.0, by the original identity: compared with 1.1.0, not with 2.0.0's wheel
    v2_sdist = upload(service, main, tmp_path / "2s", "2.0.0", "sdist")
    # another workflow
    v3 = upload(service, mint(service, workflow="deploy.yml"), tmp_path / "3", "3.0.0")

    expected = [  # file, its previous release's file, changed
        (v1_wheel, None, False),
        (v1_sdist, None, False),
        (v11, v1_sdist, False),
        (v2, v11, True),
        (v2_sdist, v11, False),
        (v3, v2_sdist, True),
    ]
    for file, previous, changed in expected:
        answer = _provenance(service, file.sha256)
        got = answer["identity_continuity"]
        identity = _expected_publisher(file.claims)
        assert got["changed"] is changed, file.path.name
        assert got["current"] == {k: identity[k] for k in ("provider", "repository", "workflow", "environment")}
        if previous is None:
            assert got["previous"] is None and got["previous_release"] is None
            continue
        before = _expected_publisher(previous.claims)
        assert got["previous"] == {k: before[k] for k in ("provider", "repository", "workflow", "environment")}
        release = got["previous_release"]
        assert (release["version"], release["filename"]) == (previous.version, previous.path.name)
        assert release["upload"]["index"] == previous.index
        # the previous upload is proven at the answer's size, and continuity follows from proven entries alone
        checkpoint = open_answer(service, answer)
        previous_entry = json.loads(verify_item(checkpoint, release["upload"]))
        current_entry = json.loads(base64.b64decode(answer["upload"]["entry_bytes"]))
        recomputed = continuity(current_entry["publisher"], previous_entry["publisher"])
        assert recomputed == {k: got[k] for k in ("changed", "current", "previous")}

    v11_answer = _provenance(service, v11.sha256)["identity_continuity"]
    assert v11_answer["current"]["repository"] == "Octo-Org/SampleProject"  # shown as logged
    assert v11_answer["previous"]["repository"] == "octo-org/sampleproject"
    assert _provenance(service, v2.sha256)["identity_continuity"]["current"]["environment"] == "staging"
    assert _provenance(service, v3.sha256)["identity_continuity"]["current"]["workflow"] == "deploy.yml"


def test_continuity_compares_the_four_fields_only():
    base = {"provider": "github", "repository": "o/r", "workflow": "w.yml", "environment": "pypi", "ref": "a"}
    assert continuity(base, {**base, "ref": "b", "sha": "c"})["changed"] is False
    assert continuity(base, {**base, "repository": "O/R"})["changed"] is False
    for field, other in (("provider", "gitlab"), ("repository", "o/other"), ("workflow", "W.yml"),
                         ("environment", None)):
        assert continuity(base, {**base, field: other})["changed"] is True, field
    assert continuity(base, None) == {"changed": False, "current": {k: base[k] for k in
                                      ("provider", "repository", "workflow", "environment")}, "previous": None}


@pytest.mark.parametrize("with_incidents", [False, True])
def test_provenance_reads_a_constant_number_of_rows(make_service, tmp_path, monkeypatch, with_incidents):
    """No per-file or per-release queries: the statements one answer runs do not grow with the
    project; without incident coverage (the incidents service's own cost) they are three."""
    # the webhook worker's passes would be counted too: after its first, it sleeps past the test
    service = make_service(webhook_poll_interval=3600)
    if not with_incidents:
        monkeypatch.setattr(service.runtime.provenance, "incidents", None)
    service.add_github_publisher(PROJECT)
    publisher = mint(service)
    files = [upload(service, publisher, tmp_path / str(i), f"1.{i}.0") for i in range(8)]
    statements: list[str] = []
    engine = service.runtime.engine

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    for file in (files[1], files[-1]):
        _provenance(service, file.sha256)  # warm the tile cache
        event.listen(engine, "before_cursor_execute", count)
        try:
            _provenance(service, file.sha256)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    first, last = statements[: len(statements) // 2], statements[len(statements) // 2:]
    assert len(first) == len(last), statements
    if not with_incidents:
        assert len(first) == 3, statements  # the file, its previous release, the entries


def test_a_file_logged_by_another_process_is_answered_at_once(make_service, tmp_path):
    """Another process's checkpoints reach this one's cache late; a file newer than the
    cached checkpoint makes the answer re-read the latest one instead of failing."""
    here, there = make_service(), make_service()  # two processes' runtimes on one database
    here.add_github_publisher(PROJECT)
    assert here.client.get("/api/v1/provenance/" + "0" * 64).status_code == 404  # caches the checkpoint
    wheel = upload(there, mint(there), tmp_path, "1.0.0")
    answer = _provenance(here, wheel.sha256)
    assert answer["upload"]["index"] == wheel.index and answer["tree_size"] > wheel.index
    verify_item(open_answer(here, answer), answer["upload"])
