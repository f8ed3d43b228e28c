"""The verifying clients against a real pubtrail over a real socket: uploads through the legacy API,
`pubtrail verify` on the downloaded files, and crafted answers made from the server's own."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.clients import errors
from app.clients.http import Server
from app.clients.provenance import LocalFile, fetch_and_verify, verify_provenance
from app.tlog import note
from tests.e2e.conftest import issuer, make_service, service  # noqa: F401 - fixtures
from tests.e2e.test_upload import PROJECT, _post, build_sdist, build_wheel


@pytest.fixture
def published(service, tmp_path):
    """sampleproject 1.0.0 (wheel and sdist) by release.yml, then 1.1.0 by another workflow."""
    service.add_github_publisher(PROJECT)
    service.add_github_publisher(PROJECT, workflow="deploy.yml")
    built = tmp_path / "built"
    built.mkdir()
    token = service.upload_token()
    files = {}
    for path in (build_wheel(built), build_sdist(built)):
        assert _post(service, path, token=token).status_code == 200
        files[path.name] = path
    service.clock.value += 3600
    newer = build_wheel(built, "1.1.0")
    assert _post(service, newer, token=service.upload_token(workflow="deploy.yml"), version="1.1.0").status_code == 200
    files[newer.name] = newer
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    return service, key, files


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_a_pip_download_folder(published, tmp_path, capsys):
    service, key, _files = published
    download = tmp_path / "downloaded"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--isolated", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", service.url + "/simple/", "-d", str(download), f"{PROJECT}==1.0.0"],
        capture_output=True, text=True, timeout=120,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    code, out, err = run(capsys, "verify", str(download), "--server", service.url, "--key", key)
    assert code == 0, err
    assert "OK" in out and "sampleproject-1.0.0-py3-none-any.whl" in out
    assert "octo-org/sampleproject (github)" in out and "release.yml" in out and "refs/tags/v1.0.0" in out
    assert "a" * 40 in out and "pypi" in out and "incidents    none" in out and "WARNING" not in out


def test_verify_several_files_and_a_changed_identity(published, capsys):
    service, key, files = published
    paths = [str(p) for p in files.values()]
    code, out, err = run(capsys, "verify", *paths, "--server", service.url, "--key", key)
    assert code == 0, err
    assert out.count("OK ") == 3
    assert "WARNING publisher identity changed since 1.0.0" in out and "deploy.yml" in out
    code, out, err = run(capsys, "verify", *paths, "--server", service.url, "--key", key, "--strict-identity")
    assert code == 1
    assert err.startswith("pubtrail: 1 of 3 files failed verification") and "identity continuity" in err


def test_verify_refuses_what_is_not_in_the_log(published, tmp_path, capsys):
    service, key, files = published
    stranger = tmp_path / "sampleproject-9.9.9-py3-none-any.whl"
    stranger.write_bytes(b"never uploaded")
    code, out, err = run(capsys, "verify", str(stranger), "--server", service.url, "--key", key)
    assert code == 1 and "known to the server: this file was never uploaded" in err and "404" in err

    other_key = note.generate_key(note.Verifier(key).name)[1]
    wheel = str(files["sampleproject-1.0.0-py3-none-any.whl"])
    code, out, err = run(capsys, "verify", wheel, "--server", service.url, "--key", other_key)
    assert code == 1 and "checkpoint signature" in err and "not signed by the pinned key" in err

    code, out, err = run(capsys, "verify", wheel, "--server", "http://127.0.0.1:9", "--key", key)
    assert code == 1 and "cannot reach http://127.0.0.1:9" in err


def test_crafted_answers_from_the_real_server(published):
    service, key, files = published
    verifier = note.Verifier(key)
    wheel = LocalFile.read(files["sampleproject-1.1.0-py3-none-any.whl"])
    with Server(service.url) as server:
        verified = fetch_and_verify(server, verifier, wheel)
    assert verified.continuity.changed and verified.continuity.previous["workflow"] == "release.yml"
    real = service.client.get(f"/api/v1/provenance/{wheel.sha256}").json()

    tampered = {**real, "upload": {**real["upload"]}}
    data = base64.b64decode(real["upload"]["entry_bytes"]).replace(b"1.1.0", b"1.0.1")
    tampered["upload"]["entry_bytes"] = base64.b64encode(data).decode()
    with pytest.raises(errors.EntryBytesError):
        verify_provenance(tampered, verifier, wheel)

    index, size = real["exchange"]["index"], real["tree_size"]
    assert index + 1 < size
    older = service.client.get(f"/api/v1/log/proof/inclusion?index={index}&tree_size={index + 1}").json()
    tampered = {**real, "exchange": {**real["exchange"], "inclusion_proof": older}}
    with pytest.raises(errors.ProofSizeError):
        verify_provenance(tampered, verifier, wheel)

    upload = real["upload"]["index"]
    signed_before = service.client.get(f"/api/v1/log/checkpoints/{upload}").text  # a true checkpoint, before the upload
    tampered = {**real, "checkpoint": signed_before, "tree_size": upload}
    with pytest.raises(errors.NotCoveredError):
        verify_provenance(tampered, verifier, wheel)

    tampered = {**real, "publisher": {**real["publisher"], "workflow": "release.yml"}}
    with pytest.raises(errors.AnswerMismatchError):
        verify_provenance(tampered, verifier, wheel)
    assert size == service.log_size()


def test_blast_radius_against_the_real_server(published, capsys):
    import json

    service, key, files = published
    asked = ["--server", service.url, "--key", key, "--repository", "Octo-Org/SampleProject"]
    code, out, err = run(capsys, "blast-radius", *asked, "--json", "--limit", "1")
    assert code == 0, err
    answer = json.loads(out)
    assert sorted(u["filename"] for u in answer["uploads"]) == sorted(files)
    assert answer["totals"]["uploads"] == 3 and len(answer["exchanges"]) == 2 and answer["next_cursor"] is None
    assert answer["projects"] == {PROJECT: {"1.0.0": [f.name for f in files.values()][:2], "1.1.0": ["sampleproject-1.1.0-py3-none-any.whl"]}}

    code, out, err = run(capsys, "blast-radius", *asked, "--workflow", "deploy.yml")
    assert code == 0, err
    assert "sampleproject-1.1.0-py3-none-any.whl" in out and "sampleproject-1.0.0.tar.gz" not in out
    assert "Totals: 1 exchanges, 1 uploads, 1 projects, 1 releases" in out

    code, out, err = run(capsys, "blast-radius", *asked, "--csv")
    assert code == 0, err
    assert out.splitlines()[0].startswith("index,") and len(out.splitlines()) == 4

    other_key = note.generate_key(note.Verifier(key).name)[1]
    code, out, err = run(capsys, "blast-radius", *asked[:2], "--key", other_key, *asked[4:])
    assert code == 1 and "checkpoint signature" in err and not out
    code, out, err = run(capsys, "blast-radius", *asked[:4])
    assert code == 2 and "at least one criterion" in err


def test_blast_radius_csv_of_api_token_uploads_verifies(published, tmp_path, capsys):
    """An API-token upload has no publisher: its CSV row has empty publisher cells, and the client agrees."""
    service, key, _files = published
    created = service.client.post(
        f"/api/v1/projects/{PROJECT}/tokens", json={"description": "ci-legacy"}, headers=service.admin
    ).json()
    built = tmp_path / "legacy"
    built.mkdir()
    assert _post(service, build_wheel(built, "1.2.0"), token=created["token"], version="1.2.0").status_code == 200
    asked = ["--server", service.url, "--key", key]
    for criteria in (["--auth", "api_token"], ["--token-id", created["id"]]):
        code, out, err = run(capsys, "blast-radius", *asked, *criteria, "--csv")
        assert code == 0, err
        header, row = out.splitlines()
        cells = dict(zip(header.split(","), row.split(",")))
        assert cells["auth"] == "api_token" and cells["token_id"] == created["id"]
        assert cells["issuer"] == cells["repository"] == cells["exchange_index"] == ""
