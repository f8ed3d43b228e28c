"""PEP 740 attestations end to end, with real data: the pypi-attestations 0.0.19 sdist
and its attestations signed by production Sigstore (tests/testdata/pep740/NOTE).

A GitHub-shaped trusted publisher whose claims match the attestations' certificate
(trailofbits/pypi-attestations, release.yml) uploads with the real twine
`--attestations` over a real socket; the upload is logged with the digests, the
Integrity API serves the attestations byte for byte, and `pubtrail verify` checks
them offline. An attestation for another file, from another identity, or with
tampered bytes is a 400 with PyPI's text and leaves nothing behind. No test reaches
the internet: `offline` refuses every connection that is not to this machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import func, select

from app import attestations as pep740
from app.cli import main
from app.entries import decode
from app.services.log_audit import audit_sequencer
from app.storage.tables import ReleaseAttestation
from tests.distributions.builders import encode, twine_fields
from tests.e2e.test_upload import _basic, _snapshot

ASSETS = Path(__file__).resolve().parents[1] / "testdata" / "pep740"
SDIST = ASSETS / "pypi_attestations-0.0.19.tar.gz"
PUBLISH = ASSETS / "pypi_attestations-0.0.19.tar.gz.publish.attestation"
SLSA = ASSETS / "pypi_attestations-0.0.19.tar.gz.slsa.attestation"
PROJECT = "pypi-attestations"
VERSION = "0.0.19"
SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"
INTEGRITY = f"/integrity/{PROJECT}/{VERSION}/{SDIST.name}/provenance"
#: the identity in the attestations' certificate (NOTE)
REPOSITORY, OWNER_ID, WORKFLOW = "trailofbits/pypi-attestations", "2314423", "release.yml"
CLAIMS = dict(repository=REPOSITORY, repository_owner_id=OWNER_ID, workflow=WORKFLOW, ref="refs/tags/v0.0.19",
              sha="08802efe1f8e5fec4ad842d6b8ce97656092ee72", environment=None, event_name="release")
PUBLISHER_JSON = {"kind": "GitHub", "repository": REPOSITORY, "workflow": WORKFLOW, "environment": None}
REFUSED = "Invalid attestations supplied during upload: "


@pytest.fixture
def offline(monkeypatch):
    """Refuse, in this process, every connection and name lookup that is not this machine
    (the server runs in this process: Sigstore verification must not fetch anything)."""
    local = {"127.0.0.1", "::1", "localhost"}
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
    attempts: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        if host not in local:
            attempts.append(str(host))
            raise socket.gaierror(f"offline test: no lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in local:
            attempts.append(str(address[0]))
            raise OSError(f"offline test: no connection to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"something tried to reach {attempts}"


def _publisher(service, **config) -> None:
    body = {"repository": REPOSITORY, "repository_owner_id": OWNER_ID, "workflow": WORKFLOW, "environment": None}
    service.add_github_publisher(PROJECT, **{**body, **config})


def _token(service, **claims) -> str:
    return service.upload_token(**{**CLAIMS, **claims})


def _post(service, token: str, attestations: str | None, *, data: bytes | None = None,
          filename: str = SDIST.name, version: str = VERSION):
    """POST /legacy/ as twine sends the sdist, with `attestations` as twine sends it (a JSON list)."""
    data = SDIST.read_bytes() if data is None else data
    fields = twine_fields(filename, data, name=PROJECT, version=version, summary="attested", filetype="sdist",
                          pyversion="source")
    if attestations is not None:
        fields.insert(-1, ("attestations", attestations))
    body, content_type = encode(fields)
    return service.client.post("/legacy/", content=body, headers={"Content-Type": content_type, **_basic(token)})


def _attestation_rows(service) -> int:
    with service.runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ReleaseAttestation.__table__)).scalar_one()


def _twine(service, token: str, *files: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "twine", "upload", "--attestations", "--repository-url", service.url + "/legacy/",
           "-u", "__token__", "-p", token, "--non-interactive", "--disable-progress-bar", *map(str, files)]
    env = {**os.environ, "TWINE_NON_INTERACTIVE": "1"}
    env.pop("TWINE_REPOSITORY_URL", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


# --- accepted: twine --attestations, the log, the Integrity API, pubtrail verify ----------


def test_twine_uploads_attestations_logged_served_byte_for_byte_and_verified_offline(
    service, tmp_path, offline, capsys
) -> None:
    _publisher(service)
    dist = tmp_path / "dist"
    dist.mkdir()
    for path in (SDIST, PUBLISH, SLSA):
        shutil.copy(path, dist / path.name)
    token = _token(service)
    size_before = service.log_size()
    run = _twine(service, token, *sorted(dist.iterdir()))
    assert run.returncode == 0, run.stdout + run.stderr

    # one entry, the upload's: it records each attestation's predicate type and canonical-JSON digest
    index = service.log_size() - 1
    assert index == size_before
    answer = service.client.get(f"/api/v1/log/entries/{index}").json()
    logged = answer["entry"]
    assert logged["kind"] == "upload" and logged["filename"] == SDIST.name and logged["sha256"] == SHA256
    assert decode(base64.b64decode(answer["entry_bytes"])).attestations == logged["attestations"]
    expected = {
        pep740.PUBLISH_V1: hashlib.sha256(rfc8785.dumps(json.loads(PUBLISH.read_bytes()))).hexdigest(),
        pep740.SLSA_PROVENANCE_V1: hashlib.sha256(rfc8785.dumps(json.loads(SLSA.read_bytes()))).hexdigest(),
    }
    assert {a["predicate_type"]: a["sha256"] for a in logged["attestations"]} == expected
    assert len(logged["attestations"]) == 2

    # the Integrity API: PyPI's shape and type; each attestation exactly as uploaded, canonical
    served = service.client.get(INTEGRITY)
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/vnd.pypi.integrity.v1+json"
    assert served.headers["vary"] == "Accept"
    document = served.json()
    assert document["version"] == 1 and len(document["attestation_bundles"]) == 1
    bundle = document["attestation_bundles"][0]
    assert bundle["publisher"] == PUBLISHER_JSON
    assert [pep740.digest(a) for a in bundle["attestations"]] == [a["sha256"] for a in logged["attestations"]]
    for path in (PUBLISH, SLSA):
        assert rfc8785.dumps(json.loads(path.read_bytes())) in served.content  # byte for byte
    assert served.content == rfc8785.dumps(document)
    as_json = service.client.get(INTEGRITY, headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json" and as_json.content == served.content
    refused = service.client.get(INTEGRITY, headers={"Accept": "text/html"})
    assert (refused.status_code, refused.json()) == (406, {"message": "Request not acceptable"})
    # another spelling of the same release, as PyPI's traversal accepts
    assert service.client.get(f"/integrity/PyPI_Attestations/0.0.19/{SDIST.name}/provenance").content == served.content

    # PEP 691 JSON: the file links its provenance
    simple = service.client.get(f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert simple["meta"]["api-version"] == "1.3"
    assert [f["provenance"] for f in simple["files"]] == [INTEGRITY]
    html = service.client.get(f"/simple/{PROJECT}/").text
    assert f'data-provenance="{INTEGRITY}"' in html

    # the provenance answer says it has attestations and links them
    provenance = service.client.get(f"/api/v1/provenance/{SHA256}").json()
    assert provenance["attestations"] == logged["attestations"]
    assert provenance["provenance_url"] == INTEGRITY
    (release,) = service.client.get(f"/api/v1/projects/{PROJECT}").json()["releases"]
    assert [f["provenance_url"] for f in release["files"]] == [INTEGRITY]

    # pubtrail verify: provenance proven against the pinned key, attestations verified offline
    download = tmp_path / "download"
    download.mkdir()
    (download / SDIST.name).write_bytes(service.client.get(f"/files/{SHA256}/{SDIST.name}").content)
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    capsys.readouterr()
    assert main(["verify", str(download), "--server", service.url, "--key", key]) == 0
    out = capsys.readouterr().out
    assert "docs.pypi.org/attestations/publish/v1, slsa.dev/provenance/v1: verified offline" in out, out

    # the projection audit: the stored bodies hash to the logged digests
    report = audit_sequencer(service.runtime.log.sequencer)
    assert report.ok, report.summary()


def test_verify_fails_when_the_served_attestations_are_not_the_logged_ones(service, tmp_path, offline, capsys) -> None:
    _publisher(service)
    published = json.loads(PUBLISH.read_bytes())
    assert _post(service, _token(service), json.dumps([published])).status_code == 200
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    common = ["--server", service.url, "--key", key]
    assert main(["verify", str(SDIST), *common]) == 0

    # storage altered: a body that still verifies with Sigstore (the SLSA attestation of the
    # same file), but not the one the entry logged. Verify and the audit both catch it.
    slsa_body = rfc8785.dumps(json.loads(SLSA.read_bytes()))
    with service.runtime.engine.begin() as conn:
        conn.execute(ReleaseAttestation.__table__.update().values(body=slsa_body))
    capsys.readouterr()
    assert main(["verify", str(SDIST), *common]) == 1
    out = capsys.readouterr().out
    assert "attestations: the server's attestations hash to" in out, out
    report = audit_sequencer(service.runtime.log.sequencer)
    assert not report.ok
    assert any("does not hash to the digest stored with it" in p for p in report.problems), report.problems
    assert any(p.startswith("table release_attestation is not what the entries imply") for p in report.problems)

    # the attestations gone from storage: verify says so (not "never uploaded")
    with service.runtime.engine.begin() as conn:
        saved = [dict(r._mapping) for r in conn.execute(ReleaseAttestation.__table__.select())]
        conn.execute(ReleaseAttestation.__table__.delete())
    capsys.readouterr()
    assert main(["verify", str(SDIST), *common]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "attestations: the upload entry logged 1 attestations, but the server does not serve them" in out, out
    with service.runtime.engine.begin() as conn:
        conn.execute(ReleaseAttestation.__table__.insert(), saved)

    # a trust root other than the one that signed them (Sigstore's staging root): not verified
    with service.runtime.engine.begin() as conn:
        conn.execute(ReleaseAttestation.__table__.update().values(body=rfc8785.dumps(published)))
    assert main(["verify", str(SDIST), *common]) == 0
    staging = tmp_path / "staging_trusted_root.json"
    staging.write_bytes(_embedded_root("https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"))
    capsys.readouterr()
    assert main(["verify", str(SDIST), *common, "--sigstore-trust-root", str(staging)]) == 1
    assert "attestation 0 does not verify" in capsys.readouterr().out


def _embedded_root(instance: str) -> bytes:
    import importlib.resources

    return importlib.resources.files("sigstore").joinpath("_store", instance, "trusted_root.json").read_bytes()


# --- refused: PyPI's texts, nothing stored ----------------------------------------------


def _refused(service, response, reason: str, before: dict) -> None:
    assert response.status_code == 400, response.text
    assert response.reason_phrase == REFUSED + reason or response.reason_phrase.startswith(REFUSED + reason), (
        response.reason_phrase
    )
    assert _snapshot(service) == before
    assert _attestation_rows(service) == 0
    assert service.client.get(INTEGRITY).status_code == 404


def test_attestation_for_another_file_is_refused_and_nothing_is_stored(service, tmp_path, offline) -> None:
    _publisher(service)
    token = _token(service)
    before = _snapshot(service)
    publish = PUBLISH.read_text()
    # the same name, other bytes: the subject's digest is not the file's
    tampered = bytearray(SDIST.read_bytes())
    tampered[-1] ^= 1
    _refused(service, _post(service, token, f"[{publish}]", data=bytes(tampered)),
             "Could not verify the uploaded artifact using the included attestation: "
             "Verification failed: subject does not match distribution digest", before)
    # another file of the project: the subject's name is not the file's
    other = "pypi_attestations-0.0.20.tar.gz"
    _refused(service, _post(service, token, f"[{publish}]", filename=other, version="0.0.20"),
             "Could not verify the uploaded artifact using the included attestation: Verification failed: "
             f"subject does not match distribution name: {SDIST.name} != {other}", before)


def test_attestation_from_another_identity_is_refused(service, offline) -> None:
    # a trusted publisher of the project, but not the workflow that signed the attestation
    _publisher(service, workflow="publish.yml")
    _publisher(service, repository="octo-org/pypi-attestations", repository_owner_id="65432")
    other_workflow = _token(service, workflow="publish.yml")
    other_repository = _token(service, repository="octo-org/pypi-attestations", repository_owner_id="65432")
    before = _snapshot(service)
    response = _post(service, other_workflow, f"[{PUBLISH.read_text()}]")
    _refused(service, response, "Could not verify the uploaded artifact using the included attestation: "
             "Verification failed: Certificate's Build Config URI", before)
    assert "does not match expected Trusted Publisher (publish.yml @ trailofbits/pypi-attestations)" in (
        response.reason_phrase
    )
    # another repository altogether
    response = _post(service, other_repository, f"[{PUBLISH.read_text()}]")
    _refused(service, response, "Could not verify the uploaded artifact using the included attestation: "
             "Verification failed: ", before)
    assert "https://github.com/octo-org/pypi-attestations" in response.reason_phrase


def test_tampered_attestation_bytes_are_refused(service, offline) -> None:
    _publisher(service)
    token = _token(service)
    before = _snapshot(service)
    published = json.loads(PUBLISH.read_bytes())
    signature = bytearray(published["envelope"]["signature"].encode())
    signature[20] = ord("A") if signature[20] != ord("A") else ord("B")
    tampered = {**published, "envelope": {**published["envelope"], "signature": signature.decode()}}
    _refused(service, _post(service, token, json.dumps([tampered])),
             "Could not verify the uploaded artifact using the included attestation: Verification failed: ", before)
    # a statement naming another digest, under the original signature
    statement = json.loads(base64.b64decode(published["envelope"]["statement"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    forged = {**published, "envelope": {**published["envelope"], "statement": base64.b64encode(
        json.dumps(statement).encode()).decode()}}
    _refused(service, _post(service, token, json.dumps([forged])),
             "Could not verify the uploaded artifact using the included attestation: Verification failed: ", before)


@pytest.mark.parametrize(
    "attestations, reason",
    [
        ("[]", "Malformed attestations: an empty attestation set is not permitted"),
        ("{not json", "Malformed attestations: 1 validation error for list[Attestation]"),
        ('[{"version": 1}]', "Malformed attestations: 2 validation errors for list[Attestation]"),
        ("PUBLISH,PUBLISH,SLSA", "A maximum of 2 attestations per file are supported"),
        ("PUBLISH,PUBLISH", "Multiple attestations for the same file with the same predicate type "
                            "(https://docs.pypi.org/attestations/publish/v1) are not supported"),
    ],
)
def test_malformed_or_repeated_attestations_get_pypis_text(service, offline, attestations, reason) -> None:
    _publisher(service)
    token = _token(service)
    before = _snapshot(service)
    if attestations[0].isupper():
        texts = {"PUBLISH": PUBLISH.read_text(), "SLSA": SLSA.read_text()}
        attestations = "[" + ",".join(texts[name] for name in attestations.split(",")) + "]"
    _refused(service, _post(service, token, attestations), reason, before)
    # the same file without attestations is still accepted afterwards
    assert _post(service, token, None).status_code == 200
    assert service.client.get(INTEGRITY).json() == {"message": f"No provenance available for {SDIST.name}"}


def test_a_publisher_without_attestation_support_is_refused(service, offline) -> None:
    activestate = {"provider": "activestate", "organization": "org", "project": "proj", "actor_id": "actor-1"}
    added = service.client.post(f"/api/v1/projects/{PROJECT}/publishers", json=activestate, headers=service.admin)
    assert added.status_code == 201, added.text
    oidc = service.issuer.sign(service.issuer.activestate_claims(
        now=service.clock(), organization="org", project="proj", actor_id="actor-1"))
    minted = service.mint(oidc)
    assert minted.status_code == 200, minted.text
    before = _snapshot(service)
    _refused(service, _post(service, minted.json()["token"], f"[{PUBLISH.read_text()}]"),
             "Attestations are not currently supported with ActiveState publishers", before)


def test_a_trust_root_that_did_not_sign_them_refuses_them(make_service, tmp_path, offline) -> None:
    staging = tmp_path / "trusted_root.json"
    staging.write_bytes(_embedded_root("https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"))
    service = make_service(sigstore_trust_root=staging)
    _publisher(service)
    token = _token(service)
    before = _snapshot(service)
    _refused(service, _post(service, token, f"[{PUBLISH.read_text()}]"),
             "Could not verify the uploaded artifact using the included attestation: Verification failed: ", before)


def test_an_unreadable_trust_root_stops_the_server_at_start(make_service, tmp_path) -> None:
    from app.config import ConfigError

    bad = tmp_path / "trusted_root.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="PUBTRAIL_SIGSTORE_TRUST_ROOT: cannot read the Sigstore trust root"):
        make_service(sigstore_trust_root=bad)


# --- files without attestations --------------------------------------------------------


def test_files_without_attestations(service, tmp_path, offline, capsys) -> None:
    _publisher(service)
    assert _post(service, _token(service), None).status_code == 200
    logged = service.client.get(f"/api/v1/log/entries/{service.log_size() - 1}").json()["entry"]
    assert logged["attestations"] == []
    missing = service.client.get(INTEGRITY)
    assert (missing.status_code, missing.json()) == (404, {"message": f"No provenance available for {SDIST.name}"})
    assert service.client.get(f"/integrity/{PROJECT}/9.9/{SDIST.name}/provenance").status_code == 404
    assert service.client.get(f"/integrity/{PROJECT}/{VERSION}/nothing-1.0.tar.gz/provenance").status_code == 404
    simple = service.client.get(f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert simple["files"][0]["provenance"] is None
    provenance = service.client.get(f"/api/v1/provenance/{SHA256}").json()
    assert (provenance["attestations"], provenance["provenance_url"]) == ([], None)
    (release,) = service.client.get(f"/api/v1/projects/{PROJECT}").json()["releases"]
    assert release["files"][0]["provenance_url"] is None
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    capsys.readouterr()
    assert main(["verify", str(SDIST), "--server", service.url, "--key", key]) == 0
    assert "attestations none" in " ".join(capsys.readouterr().out.split())


def test_upload_entries_logged_before_attestations_still_decode_and_verify(service, monkeypatch, offline, capsys) -> None:
    """A v1 upload entry (as every upload was logged before entries carried attestations)
    is served, proven and verified as before: no attestations, no provenance URL."""
    from dataclasses import replace

    from app.services.uploads import Uploads

    as_logged = Uploads._entry
    monkeypatch.setattr(Uploads, "_entry", lambda self, *a: replace(as_logged(self, *a), v=1, attestations=None))
    _publisher(service)
    assert _post(service, _token(service), None).status_code == 200
    answer = service.client.get(f"/api/v1/log/entries/{service.log_size() - 1}").json()
    assert answer["entry"]["v"] == 1 and "attestations" not in answer["entry"]
    assert decode(base64.b64decode(answer["entry_bytes"])).encode() == base64.b64decode(answer["entry_bytes"])
    provenance = service.client.get(f"/api/v1/provenance/{SHA256}").json()
    assert (provenance["attestations"], provenance["provenance_url"]) == ([], None)
    assert service.client.get(INTEGRITY).status_code == 404
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    capsys.readouterr()
    assert main(["verify", str(SDIST), "--server", service.url, "--key", key]) == 0
    assert "attestations none" in " ".join(capsys.readouterr().out.split())
    assert audit_sequencer(service.runtime.log.sequencer).ok


def test_attestations_with_an_api_token_are_refused(service, offline) -> None:
    """PyPI verifies attestations against the trusted publisher that authorised the
    upload; an API token has none."""
    _publisher(service)
    created = service.client.post(f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci-legacy"},
                                  headers=service.admin)
    assert created.status_code == 201, created.text
    before = _snapshot(service)
    _refused(service, _post(service, created.json()["token"], f"[{PUBLISH.read_text()}]"),
             "Attestations are only supported when using Trusted Publishing", before)
    # the same upload without attestations is an API-token upload like any other
    assert _post(service, created.json()["token"], None).status_code == 200
    assert service.client.get(f"/api/v1/log/entries/{service.log_size() - 1}").json()["entry"]["auth"] == "api_token"


def _upload_and_verify(service, capsys, publisher: dict, oidc_token: str, sdist: Path, attestation: str,
                       expected_publisher: dict) -> None:
    """Register `publisher` for the sdist's project, mint from `oidc_token`, upload the sdist with
    `attestation` (JSON text), and check what the Integrity API and pubtrail verify make of it."""
    project, version = sdist.name.removesuffix(".tar.gz").rsplit("-", 1)
    project = project.replace("_", "-")
    added = service.client.post(f"/api/v1/projects/{project}/publishers", json=publisher, headers=service.admin)
    assert added.status_code == 201, added.text
    minted = service.mint(oidc_token)
    assert minted.status_code == 200, minted.text
    fields = twine_fields(sdist.name, sdist.read_bytes(), name=project, version=version, filetype="sdist",
                          pyversion="source")
    fields.insert(-1, ("attestations", f"[{attestation}]"))
    body, content_type = encode(fields)
    uploaded = service.client.post("/legacy/", content=body,
                                   headers={"Content-Type": content_type, **_basic(minted.json()["token"])})
    assert uploaded.status_code == 200, uploaded.reason_phrase
    served = service.client.get(f"/integrity/{project}/{version}/{sdist.name}/provenance").json()
    assert served["attestation_bundles"][0]["publisher"] == expected_publisher
    assert served["attestation_bundles"][0]["attestations"] == [json.loads(attestation)]
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    capsys.readouterr()
    assert main(["verify", str(sdist), "--server", service.url, "--key", key]) == 0
    assert "publish/v1: verified offline" in capsys.readouterr().out


def test_a_gitlab_publisher_uploads_and_verifies_real_gitlab_attestations(service, offline, capsys) -> None:
    """The identity for GitLab (project path, pipeline file) from the logged claims, against a
    real attestation signed on GitLab CI (tests/testdata/pep740/NOTE)."""
    gitlab = {"provider": "gitlab", "namespace": "facutuesca", "project": "gitlab-oidc-project",
              "workflow_filepath": ".gitlab-ci.yml"}
    oidc = service.issuer.sign(service.issuer.gitlab_claims(
        now=service.clock(), namespace="facutuesca", project="gitlab-oidc-project", ref="main",
        sha="72f7c63b75eb55ea80864962f0e645c93414da34", environment=None, namespace_id="12885801",
        project_id="55235664"))
    _upload_and_verify(
        service, capsys, gitlab, oidc, ASSETS / "gitlab_oidc_project-0.0.3.tar.gz",
        (ASSETS / "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation").read_text(),
        {"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project", "workflow_filepath": ".gitlab-ci.yml",
         "environment": None},
    )


def test_a_google_publisher_uploads_and_verifies_real_google_attestations(service, offline, capsys) -> None:
    """The identity for Google (the service account's email) from the logged claims, against a
    real attestation signed on Google Cloud Build (tests/testdata/pep740/NOTE)."""
    email = "919436158236-compute@developer.gserviceaccount.com"
    provenance = json.loads((ASSETS / "gcb_attestation_test-0.0.0.tar.gz.provenance").read_bytes())
    (attestation,) = provenance["attestation_bundles"][0]["attestations"]
    oidc = service.issuer.sign(service.issuer.google_claims(now=service.clock(), email=email))
    _upload_and_verify(
        service, capsys, {"provider": "google", "email": email}, oidc, ASSETS / "gcb_attestation_test-0.0.0.tar.gz",
        json.dumps(attestation), {"kind": "Google", "email": email},
    )
