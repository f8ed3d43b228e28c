"""Uploads through the legacy API over a real socket: twine in, pip out, every refusal.

The twine/pip test runs the real CLIs in subprocesses against the running
service; the refusal tests use httpx with bodies encoded exactly as twine
encodes them, and check that a refused upload leaves nothing behind (no
entry, no row, no blob, no spool file).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app import entries
from app.storage.tables import Project, ReleaseFile
from tests.distributions.builders import digests, encode, twine_fields

PROJECT = "sampleproject"
WHEEL = "sampleproject-1.0.0-py3-none-any.whl"
SDIST = "sampleproject-1.0.0.tar.gz"


# --- real distributions ---------------------------------------------------------


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path, version: str = "1.0.0", *, payload: bytes = b"", filename: str | None = None) -> Path:
    """A valid pure-Python wheel: module, METADATA, WHEEL and a RECORD that hashes them."""
    dist_info = f"{PROJECT}-{version}.dist-info"
    files = {
        f"{PROJECT}/__init__.py": b"__version__ = %r\n" % version,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n"
            "Summary: A sample project\nRequires-Python: >=3.8\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pubtrail-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload:
        files[f"{PROJECT}/data.bin"] = payload
    record = "\n".join([_record_line(n, d) for n, d in files.items()] + [f"{dist_info}/RECORD,,", ""])
    files[f"{dist_info}/RECORD"] = record.encode()
    path = directory / (filename or f"{PROJECT}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # same inputs, same bytes
            # payload stored, not deflated: sizes stay predictable for the size-limit test
            info.compress_type = zipfile.ZIP_STORED if name.endswith("data.bin") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def build_sdist(directory: Path, version: str = "1.0.0") -> Path:
    """A valid sdist: one top-level directory holding PKG-INFO, pyproject.toml and the package."""
    top = f"{PROJECT}-{version}"
    members = {
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\nSummary: A sample project\n".encode(),
        f"{top}/pyproject.toml": f'[project]\nname = "{PROJECT}"\nversion = "{version}"\n'.encode(),
        f"{top}/{PROJECT}/__init__.py": b"__version__ = %r\n" % version,
    }
    path = directory / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return path


# --- helpers --------------------------------------------------------------------


def _dir(parent: Path, name: str) -> Path:
    (parent / name).mkdir()
    return parent / name


def _basic(token: str, username: str = "__token__") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


def _post(service, path: Path | None = None, *, token: str | None = None, headers: dict | None = None,
          data: bytes | None = None, filename: str | None = None, **fields) -> httpx.Response:
    """POST /legacy/ with the form twine would send for `path` (fields overridable, None drops one)."""
    data = path.read_bytes() if data is None else data
    filename = filename or path.name
    defaults = {"name": PROJECT, "version": "1.0.0", "summary": "A sample project"}
    body, content_type = encode(twine_fields(filename, data, **{**defaults, **fields}))
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if token is not None:
        all_headers.update(_basic(token))
    return service.client.post("/legacy/", content=body, headers=all_headers)


def _snapshot(service) -> dict:
    """Everything an upload could leave behind."""
    files = service.runtime.blobs.root
    with service.runtime.engine.connect() as conn:
        releases = conn.execute(select(func.count()).select_from(ReleaseFile.__table__)).scalar_one()
        projects = conn.execute(select(func.count()).select_from(Project.__table__)).scalar_one()
    return {
        "log": service.log_size(),
        "blobs": sorted(p.name for p in (files / "sha256").rglob("*") if p.is_file()),
        "spool": sorted(p.name for p in (files / "tmp").iterdir()),
        "releases": releases,
        "projects": projects,
    }


def _entry(service, index: int) -> tuple[dict, bytes, dict]:
    body = service.client.get(f"/api/v1/log/entries/{index}").json()
    return body["entry"], base64.b64decode(body["entry_bytes"]), body


def _twine(service, token: str, *files: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "twine", "upload", "--repository-url", service.url + "/legacy/",
           "-u", "__token__", "-p", token, "--non-interactive", "--disable-progress-bar", *map(str, files)]
    env = {**os.environ, "TWINE_NON_INTERACTIVE": "1"}
    env.pop("TWINE_REPOSITORY_URL", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def publisher_token(service) -> str:
    service.add_github_publisher(PROJECT)
    return service.upload_token()


# --- twine in, pip out ------------------------------------------------------------


def test_twine_upload_is_logged_and_pip_gets_the_same_bytes(service, tmp_path, database_url):
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel, sdist = build_wheel(dist), build_sdist(dist)
    service.add_github_publisher(PROJECT)
    token = service.upload_token()
    exchange_index = service.log_size() - 1
    exchange, _, _ = _entry(service, exchange_index)
    assert exchange["kind"] == "exchange"
    before = service.log_size()

    run = _twine(service, token, wheel, sdist)
    assert run.returncode == 0, run.stdout + run.stderr
    assert service.log_size() == before + 2

    for index, path, packagetype in ((before, wheel, "bdist_wheel"), (before + 1, sdist, "sdist")):
        entry, raw, body = _entry(service, index)
        assert entries.decode(raw).encode() == raw
        hashes = digests(path.read_bytes())
        assert entry["kind"] == "upload"
        assert (entry["project"], entry["version"], entry["filename"], entry["packagetype"]) == (
            PROJECT, "1.0.0", path.name, packagetype)
        assert (entry["sha256"], entry["blake2b_256"], entry["size"]) == (
            hashes["sha256"], hashes["blake2b_256"], path.stat().st_size)
        assert entry["exchange_index"] == exchange_index
        assert entry["token_id"] == exchange["token_id"] == token.split(".")[1]
        assert entry["publisher"] == {
            "issuer": exchange["issuer"], "provider": "github", "repository": "octo-org/sampleproject",
            "workflow": "release.yml", "ref": "refs/tags/v1.0.0", "sha": "a" * 40, "environment": "pypi",
        }
        assert token.encode() not in raw
        service.verify_receipt(body, raw)
        assert service.runtime.blobs.path_for(hashes["sha256"]).read_bytes() == path.read_bytes()

    # the simple index lists both files; pip fetches the wheel through it, byte for byte
    page = service.client.get(f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("application/vnd.pypi.simple.v1+json")
    listed = {f["filename"]: f for f in page.json()["files"]}
    assert set(listed) == {wheel.name, sdist.name}
    assert listed[wheel.name]["hashes"]["sha256"] == digests(wheel.read_bytes())["sha256"]
    assert (listed[wheel.name]["requires-python"], listed[sdist.name]["requires-python"]) == (">=3.8", None)
    sdist_link = listed[sdist.name]["url"].split("#", 1)[0]
    assert service.client.get(sdist_link).content == sdist.read_bytes()

    download = tmp_path / "download"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env = {k: v for k, v in env.items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--isolated", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", service.url + "/simple/", "-d", str(download), PROJECT],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (download / wheel.name).read_bytes() == wheel.read_bytes()

    # the same files again: 200 from the server, twine succeeds, the log does not grow
    size = service.log_size()
    again = _twine(service, token, wheel, sdist)
    assert again.returncode == 0, again.stdout + again.stderr
    assert service.log_size() == size
    metrics = service.client.get("/metrics").text
    assert 'pubtrail_uploads_total{result="accepted"} 2.0' in metrics
    assert 'pubtrail_uploads_total{result="duplicate"} 2.0' in metrics


def test_upload_answers_with_a_verifiable_receipt(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    before = _snapshot(service)
    response = _post(service, wheel, token=publisher_token)
    assert response.status_code == 200, response.text
    body = response.json()
    _, raw, _ = _entry(service, body["receipt"]["index"])
    assert entries.decode(raw).to_json() == body["upload"]
    service.verify_receipt(body["receipt"], raw)
    after = _snapshot(service)
    assert after["log"] == before["log"] + 1
    assert after["blobs"] == [digests(wheel.read_bytes())["sha256"]]
    assert after["spool"] == [] and after["releases"] == 1 and after["projects"] == 1


# --- refusals: each leaves nothing behind -------------------------------------------


def _refused(service, response: httpx.Response, status: int, fragment: str, before: dict) -> None:
    assert response.status_code == status, (response.status_code, response.reason_phrase)
    assert fragment in response.reason_phrase, response.reason_phrase
    assert _snapshot(service) == before


def test_refused_without_valid_credentials(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    before = _snapshot(service)
    cases = [
        ({}, f"Invalid or non-existent authentication information. See {service.runtime.settings.public_url}/help/uploads#invalid-auth"),
        ({"Authorization": "Bearer " + publisher_token}, "use HTTP Basic authentication"),
        ({"Authorization": "Basic !!!not-base64"}, "not valid base64"),
        ({"Authorization": "Basic \u00e9t\u00e9".encode("latin-1")}, "not valid base64"),
        (_basic(publisher_token, username="alice"), "only upload tokens are accepted, with the username '__token__'"),
        (_basic("pypi-AgEIcHlwaS5vcmc"), "Invalid API Token: the token is not a pubtrail upload token. See "),
        (_basic(publisher_token[:-4] + "AAAA"),
         f"Invalid API Token: the token is not recognised. See {service.runtime.settings.public_url}/help/uploads#invalid-auth"),
    ]
    for headers, fragment in cases:
        _refused(service, _post(service, wheel, headers=headers), 403, fragment, before)
    metrics = service.client.get("/metrics").text
    assert f'pubtrail_uploads_total{{result="auth_failed"}} {float(len(cases))}' in metrics


def test_refused_with_an_expired_token(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    before = _snapshot(service)
    service.clock.value += 15 * 60
    _refused(service, _post(service, wheel, token=publisher_token), 403, "Invalid API Token: the token has expired. See", before)


def test_refused_with_a_revoked_token(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    token_id = publisher_token.split(".")[1]
    assert service.client.post(f"/api/v1/tokens/{token_id}/revoke", headers=service.admin).status_code == 200
    before = _snapshot(service)
    _refused(service, _post(service, wheel, token=publisher_token), 403, "Invalid API Token: the token has been revoked. See", before)


def test_refused_outside_the_token_scope(service, publisher_token, tmp_path):
    other = tmp_path / "otherproject-1.0.0-py3-none-any.whl"
    other.write_bytes(build_wheel(tmp_path).read_bytes())
    before = _snapshot(service)
    response = _post(service, other, token=publisher_token, name="OtherProject")
    _refused(service, response, 403, "The given token isn't allowed to upload to project 'OtherProject'", before)


def _bad_uploads(tmp_path: Path):
    wheel = build_wheel(tmp_path)
    data = wheel.read_bytes()
    return {
        "digest mismatch": (dict(sha256_digest="0" * 64), 400,
                            "The digest supplied does not match a digest calculated from the uploaded file."),
        "md5 mismatch": (dict(md5_digest="0" * 32), 400, "The digest supplied does not match"),
        "no digest": (dict(sha256_digest=None, blake2_256_digest=None), 400, "Include at least one message digest"),
        "malformed digest": (dict(sha256_digest="xyz"), 400, "Invalid value for sha256_digest"),
        "filename of another version": (dict(version="1.0.1"), 400, "Version in filename should be '1.0.1' not '1.0.0'"),
        "filename of another project": (dict(name="sample-project2"), 403, "isn't allowed to upload to project"),
        "wrong filetype": (dict(filetype="bdist_egg"), 400, "Invalid value for filetype. Error: Use a known file type."),
        "sdist filetype for a wheel": (dict(filetype="sdist", pyversion="source"), 400,
                                       "Extension .whl is invalid for filetype sdist"),
        "invalid version": (dict(version="one.zero"), 400, "'one.zero' is an invalid value for Version"),
        "local version": (dict(version="1.0.0+local"), 400, "Can't use PEP 440 local versions."),
        "invalid name": (dict(name="-bad-"), 400, "'-bad-' is an invalid value for Name"),
        "unknown metadata version": (dict(metadata_version="9.9"), 400, "Unknown Metadata Version"),
        "not an archive": (dict(data=b"this is not a zip file at all" * 10), 400,
                           "Invalid distribution file. File is not a zipfile"),
        "wheel without METADATA": (
            dict(data=_without(data, "METADATA")), 400, "does not contain the required METADATA file"),
        "image content type": (dict(content_type="image/png"), 400, "Invalid distribution file."),
        "retired action": (dict(**{":action": "doc_upload"}), 410, "Uploading documentation is no longer supported"),
        "bad filename": (dict(filename="../" + WHEEL), 400, "Cannot upload a file with '/' or '\\' in the name."),
    }, wheel


def _without(wheel_bytes: bytes, member: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith(member):
                target.writestr(info, source.read(info))
    return out.getvalue()


def test_invalid_uploads_are_refused_and_leave_nothing(service, publisher_token, tmp_path):
    cases, wheel = _bad_uploads(tmp_path)
    before = _snapshot(service)
    for name, (overrides, status, fragment) in cases.items():
        overrides = dict(overrides)
        data = overrides.pop("data", None)
        filename = overrides.pop("filename", None)
        content_type = overrides.pop("content_type", None)
        if content_type is not None:
            response = _post_with_type(service, wheel, publisher_token, content_type)
        else:
            response = _post(service, wheel, token=publisher_token, data=data, filename=filename, **overrides)
        assert response.status_code == status, (name, response.status_code, response.reason_phrase)
        assert fragment in response.reason_phrase, (name, response.reason_phrase)
        assert _snapshot(service) == before, name
    metrics = service.client.get("/metrics").text
    assert 'pubtrail_uploads_total{result="invalid"}' in metrics
    assert 'pubtrail_uploads_total{result="gone"} 1.0' in metrics


def _post_with_type(service, wheel: Path, token: str, content_type: str) -> httpx.Response:
    fields = twine_fields(wheel.name, wheel.read_bytes(), name=PROJECT, version="1.0.0")
    fields[-1] = ("content", (wheel.name, io.BytesIO(wheel.read_bytes()), content_type))
    body, form_type = encode(fields)
    return service.client.post("/legacy/", content=body, headers={"Content-Type": form_type, **_basic(token)})


def test_malformed_bodies_are_refused(service, publisher_token):
    before = _snapshot(service)
    for content, content_type, fragment in (
        (b"name=sampleproject", "application/x-www-form-urlencoded", "Use a multipart/form-data request"),
        (b"--xx\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nsampleproject\r\n", "multipart/form-data; boundary=xx",
         "the body ended before the closing boundary"),
    ):
        response = service.client.post("/legacy/", content=content, headers={"Content-Type": content_type, **_basic(publisher_token)})
        _refused(service, response, 400, fragment, before)


def test_too_large_is_refused_while_streaming(make_service, tmp_path):
    service = make_service(max_upload_size=64 * 1024)
    service.add_github_publisher(PROJECT)
    token = service.upload_token()
    wheel = build_wheel(tmp_path, payload=os.urandom(100 * 1024))
    before = _snapshot(service)
    response = _post(service, wheel, token=token)
    _refused(service, response, 400, "File too large. Limit for project 'sampleproject' is 0 MB", before)
    assert 'pubtrail_uploads_total{result="too_large"} 1.0' in service.client.get("/metrics").text
    # just under the limit is fine
    small = build_wheel(_dir(tmp_path, "small"), payload=os.urandom(40 * 1024))
    assert _post(service, small, token=token).status_code == 200


# --- duplicates -------------------------------------------------------------------


def test_same_file_again_is_200_and_changes_nothing(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    first = _post(service, wheel, token=publisher_token)
    assert first.status_code == 200
    before = _snapshot(service)
    again = _post(service, wheel, token=publisher_token)
    assert again.status_code == 200, again.reason_phrase
    assert again.json() == {"duplicate": True, "filename": wheel.name, "sha256": digests(wheel.read_bytes())["sha256"],
                            "log_index": first.json()["receipt"]["index"]}
    assert _snapshot(service) == before


def test_same_filename_other_content_is_file_already_exists(service, publisher_token, tmp_path):
    assert _post(service, build_wheel(tmp_path), token=publisher_token).status_code == 200
    before = _snapshot(service)
    other = build_wheel(_dir(tmp_path, "other"), payload=b"changed")
    response = _post(service, other, token=publisher_token)
    blake2 = digests(other.read_bytes())["blake2b_256"]
    _refused(service, response, 400,
             f"File already exists ('{WHEEL}', with blake2_256 hash '{blake2}'). "
             f"See {service.runtime.settings.public_url}/help/uploads#file-name-reuse for more information.", before)


def test_same_content_under_another_filename_is_file_already_exists(service, publisher_token, tmp_path):
    """PyPI's rule: a file exists if its name *or* its BLAKE2 digest is already stored."""
    wheel = build_wheel(tmp_path)
    assert _post(service, wheel, token=publisher_token).status_code == 200
    before = _snapshot(service)
    response = _post(service, wheel, token=publisher_token, filename="sampleproject-1.0.0-py2.py3-none-any.whl")
    _refused(service, response, 400, "File already exists ('sampleproject-1.0.0-py2.py3-none-any.whl'", before)


def test_concurrent_uploads_of_one_filename_resolve_to_one_entry(service, publisher_token, tmp_path):
    """Racing uploads of one filename: one entry; identical content is 200, other content 400."""
    variants = [
        build_wheel(_dir(tmp_path, f"v{n}"), payload=b"same" if n < 3 else b"variant %d" % n).read_bytes()
        for n in range(6)
    ]
    before = service.log_size()

    async def race():
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            async def one(data: bytes) -> httpx.Response:
                body, content_type = encode(twine_fields(WHEEL, data, name=PROJECT, version="1.0.0"))
                return await client.post("/legacy/", content=body,
                                         headers={"Content-Type": content_type, **_basic(publisher_token)})
            return await asyncio.gather(*(one(data) for data in variants))

    responses = asyncio.run(race())
    assert service.log_size() == before + 1
    with service.runtime.engine.connect() as conn:
        (stored,) = conn.execute(select(ReleaseFile.__table__.c.sha256)).scalars().all()
    winner = next(d for d in variants if hashlib.sha256(d).hexdigest() == stored)
    for data, response in zip(variants, responses):
        if data == winner:
            assert response.status_code == 200, response.reason_phrase
        else:
            assert response.status_code == 400 and response.reason_phrase.startswith("File already exists ("), (
                response.status_code, response.reason_phrase)
    assert list((service.runtime.blobs.root / "tmp").iterdir()) == []


# --- routing and the simple index ----------------------------------------------------


def test_legacy_without_slash_redirects_with_308(service):
    """Relative Location: a forged Host header must not send the upload elsewhere."""
    response = service.client.post("/legacy", content=b"x", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/legacy/"
    forged = service.client.post("/legacy?x=1", content=b"x", follow_redirects=False,
                                 headers={"Host": "evil.example"})
    assert forged.status_code == 308 and forged.headers["location"] == "/legacy/?x=1"


def test_simple_index_negotiation_redirects_and_files(service, publisher_token, tmp_path):
    wheel = build_wheel(tmp_path)
    assert _post(service, wheel, token=publisher_token).status_code == 200
    sha256 = digests(wheel.read_bytes())["sha256"]
    client = service.client

    index = client.get("/simple/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert f'href="/simple/{PROJECT}/"' in index.text
    assert index.headers["vary"] == "Accept"
    as_json = client.get("/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert as_json["projects"] == [{"name": PROJECT}]
    assert client.get("/simple/", headers={"Accept": "application/xml"}).status_code == 406

    page = client.get(f"/simple/{PROJECT}/")
    assert page.status_code == 200
    assert f'href="/files/{sha256}/{WHEEL}#sha256={sha256}"' in page.text
    assert 'data-requires-python="&gt;=3.8"' in page.text
    html_v1 = client.get(f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+html"})
    assert html_v1.headers["content-type"].startswith("application/vnd.pypi.simple.v1+html")

    for path in ("/simple/SampleProject/", "/simple/Sample_Project", "/simple/sampleproject"):
        moved = client.get(path, follow_redirects=False)
        assert moved.status_code == 301, path
    assert client.get("/simple/SampleProject/", follow_redirects=False).headers["location"] == f"/simple/{PROJECT}/"
    assert client.get("/simple/sampleproject", follow_redirects=False).headers["location"] == f"/simple/{PROJECT}/"
    assert client.get("/simple/unknown-project/").status_code == 404
    assert client.get("/simple", follow_redirects=False).status_code == 301

    served = client.get(f"/files/{sha256}/{WHEEL}")
    assert served.status_code == 200 and served.content == wheel.read_bytes()
    assert "immutable" in served.headers["cache-control"]
    assert client.get(f"/files/{sha256}/other-1.0-py3-none-any.whl").status_code == 404
    assert client.get(f"/files/{'0' * 64}/{WHEEL}").status_code == 404
    assert client.get(f"/files/not-a-hash/{WHEEL}").status_code == 404
    assert client.get(f"/files/{sha256.upper()}/{WHEEL}").status_code == 404


# --- refusals after the checks ------------------------------------------------------


def test_absurdly_long_version_is_refused_before_anything_is_stored(service, publisher_token, tmp_path):
    """A valid PEP 440 version of 40,000 characters: the filename carrying it is refused in
    the multipart headers (the entry-size check behind it is a second line of defence)."""
    version = "1" + ".0" * 20_000
    wheel = build_wheel(tmp_path, version=version, filename="long.whl")
    before = _snapshot(service)
    response = _post(service, wheel, token=publisher_token, version=version,
                     filename=f"{PROJECT}-{version}-py3-none-any.whl")
    _refused(service, response, 400, "Maximum header size exceeded", before)


def test_token_revoked_while_the_body_streams_in_is_refused(service, publisher_token, tmp_path, monkeypatch):
    """Authorised at the headers, revoked while the body streams in: 403, no entry, nothing
    stored. Revoked after the file was stored but before the entry is appended: 403, no
    entry; the file is unreferenced and the orphan collector removes it later."""
    import time

    from app.jobs import collect_orphan_blobs

    wheel = build_wheel(tmp_path)
    body, content_type = encode(twine_fields(wheel.name, wheel.read_bytes(), name=PROJECT, version="1.0.0"))
    grant = service.runtime.tokens.authenticate(publisher_token, service.clock())
    before = _snapshot(service)

    def slow_body():
        yield body[:100]
        time.sleep(0.5)  # the server has checked the headers by now
        service.runtime.tokens.revoke(grant.token_id, service.clock())
        yield body[100:]

    response = service.client.post(
        "/legacy/", content=slow_body(), headers={"Content-Type": content_type, **_basic(publisher_token)}
    )
    assert response.status_code == 403, response.text
    assert "revoked or expired during the upload" in response.reason_phrase
    assert _snapshot(service) == before

    # revoked between the blob commit and the append: refused under the write lock
    token = service.upload_token()
    grant = service.runtime.tokens.authenticate(token, service.clock())
    blobs = service.runtime.blobs
    real_commit = blobs.commit

    def commit_then_revoke(staged):
        path = real_commit(staged)
        service.runtime.tokens.revoke(grant.token_id, service.clock())
        return path

    monkeypatch.setattr(blobs, "commit", commit_then_revoke)
    before = _snapshot(service)
    response = _post(service, wheel, token=token)
    assert response.status_code == 403 and "revoked or expired during the upload" in response.reason_phrase
    after = _snapshot(service)
    assert after["log"] == before["log"] and after["releases"] == before["releases"]
    assert after["spool"] == []
    assert len(after["blobs"]) == len(before["blobs"]) + 1  # stored before the append was refused
    assert collect_orphan_blobs(service.runtime, older_than=3600) == 0  # too young to judge
    service.clock.value += 2 * 3600
    os.utime(blobs.path_for(hashlib.sha256(wheel.read_bytes()).hexdigest()),
             (service.clock.value - 7200, service.clock.value - 7200))
    assert collect_orphan_blobs(service.runtime, older_than=3600) == 1
    assert _snapshot(service)["blobs"] == before["blobs"]
