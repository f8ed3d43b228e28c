"""schemathesis against the ASGI app, in process: no 5xx, and every answer as /openapi.json describes it.

The app runs on SQLite with a fixed clock, its log already holding two
trusted publishers, two exchanges and an upload, so that the read routes
have something to answer. For every operation of the schema, schemathesis
generates valid and invalid requests (a bounded, derandomized number, so the
run is the same everywhere and takes seconds); requests to secured
operations carry the credentials their security scheme names half of the
time (the admin token; ``__token__`` and a live upload token), so that they
reach the checks behind authentication too. Known-good requests (index 0,
the uploaded file, ...) complete the generated ones, which rarely guess them.
Requests needing a real OIDC token or a real distribution mostly get 4xx:
that is fine as long as the answer is the one the schema describes.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance, response_schema_conformance.

The operations are walked inside one test (``operation.as_strategy``) rather
than with ``schema.parametrize``: the schema comes from an app built on a
per-test data folder (the ``make_settings`` fixture), which does not exist
at collection time.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi as st_asgi

from app.api.app import create_app
from app.runtime import build_runtime
from app.tlog import cosignature as cosig
from tests.conftest import ADMIN_TOKEN
from tests.distributions.builders import build_wheel, encode, twine_fields
from tests.support.oidc_issuer import GITHUB_ISSUER, LocalOIDCIssuer

NOW = 1_790_000_000.0
#: Generated requests per operation and mode (valid, invalid): about 10 s for the whole schema on 2 cores.
MAX_EXAMPLES = 25
PROJECT = "demo-pkg"
WORKFLOW_REF = "octo-org/demo/.github/workflows/release.yml@refs/heads/main"
#: a push-only witness the log trusts: (signer key, verifier key)
WITNESS = cosig.generate_key("witness.example/w", b"\x31" * 32)

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
]


@dataclass
class Pubtrail:
    app: Any
    upload_token: str
    publisher_id: str
    wheel_sha256: str
    wheel_name: str
    cosignature: str  # the newest checkpoint's body with a cosignature by WITNESS


def _seed(client, issuer: LocalOIDCIssuer, tmp_path: Path) -> Pubtrail:
    """Register publishers, mint two upload tokens and upload a wheel with one of them."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    publisher = {"provider": "github", "repository": "octo-org/demo", "repository_owner_id": "65432",
                 "workflow": "release.yml"}
    added = client.post(f"/api/v1/projects/{PROJECT}/publishers", json=publisher, headers=admin)
    assert added.status_code == 201, added.text
    other = client.post("/api/v1/projects/other-pkg/publishers", json={**publisher, "workflow": "o.yml"}, headers=admin)
    assert other.status_code == 201, other.text

    def mint() -> str:
        claims = issuer.github_claims(now=NOW, repository="octo-org/demo", repository_owner_id="65432",
                                      workflow_ref=WORKFLOW_REF)
        answer = client.post("/_/oidc/mint-token", json={"token": issuer.sign(claims)})
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    wheel = build_wheel(tmp_path / "demo_pkg-1.0-py3-none-any.whl")
    body, content_type = encode(twine_fields(wheel.name, wheel.read_bytes()))
    basic = "Basic " + base64.b64encode(f"__token__:{mint()}".encode()).decode()
    uploaded = client.post("/legacy/", data=body, headers={"Content-Type": content_type, "Authorization": basic})
    assert uploaded.status_code == 200, (uploaded.status_code, uploaded.text)
    _seed_attested(client, issuer, admin)
    body = client.get("/api/v1/log").json()["checkpoint"].split("\n\n")[0] + "\n"
    return Pubtrail(
        cosignature=body + "\n" + cosig.CosignatureSigner(WITNESS[0]).cosign(body, int(NOW)),
        app=client.app,
        upload_token=mint(),
        publisher_id=added.json()["publisher"]["id"],
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        wheel_name=wheel.name,
    )


def _seed_attested(client, issuer: LocalOIDCIssuer, admin: dict[str, str]) -> None:
    """Upload the real attested sdist (tests/testdata/pep740) through the publisher that signed it."""
    from tests.e2e.test_attestations import CLAIMS, PROJECT as ATTESTED, PUBLISH, SDIST, VERSION

    publisher = {"provider": "github", "repository": CLAIMS["repository"], "workflow": CLAIMS["workflow"],
                 "repository_owner_id": CLAIMS["repository_owner_id"]}
    assert client.post(f"/api/v1/projects/{ATTESTED}/publishers", json=publisher, headers=admin).status_code == 201
    claims = issuer.github_claims(now=NOW, **CLAIMS)
    token = client.post("/_/oidc/mint-token", json={"token": issuer.sign(claims)}).json()["token"]
    fields = twine_fields(SDIST.name, SDIST.read_bytes(), name=ATTESTED, version=VERSION, filetype="sdist",
                          pyversion="source")
    fields.insert(-1, ("attestations", f"[{PUBLISH.read_text()}]"))
    body, content_type = encode(fields)
    basic = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    uploaded = client.post("/legacy/", data=body, headers={"Content-Type": content_type, "Authorization": basic})
    assert uploaded.status_code == 200, (uploaded.status_code, uploaded.text)


@pytest.fixture
def pubtrail(make_settings, tmp_path) -> Iterator[Pubtrail]:
    """pubtrail on SQLite with a fixed clock, its log seeded by :func:`_seed`."""
    issuer = LocalOIDCIssuer(audience="pubtrail")  # never started: its keys reach pubtrail as a file
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        jwks_urls={GITHUB_ISSUER: jwks.as_uri()},
        witnesses=({"url": None, "key": WITNESS[1]},),  # push-only: nothing is called
    )
    runtime = build_runtime(settings, clock=lambda: NOW)
    try:
        with st_asgi.get_client(create_app(runtime)) as client:  # starts the lifespan, until shutdown_lifespans
            yield _seed(client, issuer, tmp_path)
    finally:
        st_asgi.shutdown_lifespans()
        runtime.close()


def _credentials(operation, pubtrail: Pubtrail) -> dict[str, str]:
    """The Authorization header that satisfies the operation's security requirement (none: {})."""
    schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
    if "adminToken" in schemes:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if "uploadToken" in schemes:
        return {"Authorization": "Basic " + base64.b64encode(f"__token__:{pubtrail.upload_token}".encode()).decode()}
    assert not schemes, f"{operation.label}: no credentials for {schemes}"
    return {}


def _known_good(pubtrail: Pubtrail) -> dict[str, list[dict[str, Any]]]:
    """Requests that find something, per operation: generated ones rarely do.
    (``accept`` is sent as the Accept header: schemathesis sends only declared headers of a case.)"""
    return {
        "GET /api/v1/log/entries/{index}": [{"path_parameters": {"index": i}} for i in range(4)],
        "GET /api/v1/log/checkpoints/{size}": [{"path_parameters": {"size": 4}}],
        "GET /api/v1/log/proof/inclusion": [{"query": {"index": 1, "tree_size": 3}}, {"query": {"index": 3}}],
        "GET /api/v1/log/proof/consistency": [{"query": {"first": 1, "second": 3}}, {"query": {"first": 2}}],
        "GET /tile/{tile_path}": [{"path_parameters": {"tile_path": p}} for p in ("0/000.p/4", "entries/000.p/4")],
        "GET /simple/{project}/": [
            {"path_parameters": {"project": PROJECT}, "accept": accept}
            for accept in ("text/html", "application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html",
                           "image/png")
        ],
        "GET /simple/": [{"accept": "application/vnd.pypi.simple.v1+json"}, {"accept": "text/plain"}],
        "GET /": [{"accept": "application/json"}, {"accept": "text/html"}],
        "GET /files/{sha256}/{filename}": [
            {"path_parameters": {"sha256": pubtrail.wheel_sha256, "filename": pubtrail.wheel_name}}
        ],
        "GET /api/v1/projects/{project}/publishers": [{"path_parameters": {"project": PROJECT}}],
        "POST /api/v1/projects/{project}/publishers": [
            {
                "path_parameters": {"project": "third-pkg"},
                "body": {"provider": "gitlab", "namespace": "group", "project": "repo",
                         "workflow_filepath": ".gitlab-ci.yml"},
                "media_type": "application/json",
            }
        ],
        "GET /api/v1/publishers/{publisher_id}/tokens": [{"path_parameters": {"publisher_id": pubtrail.publisher_id}}],
        "GET /api/v1/provenance/{sha256}": [
            {"path_parameters": {"sha256": sha256}} for sha256 in (pubtrail.wheel_sha256, pubtrail.wheel_sha256.upper())
        ],
        "GET /api/v1/projects/{project}": [{"path_parameters": {"project": PROJECT}}],
        "GET /integrity/{project}/{version}/{filename}/provenance": [
            {"path_parameters": {"project": "pypi-attestations", "version": "0.0.19",
                                 "filename": "pypi_attestations-0.0.19.tar.gz"}, "accept": accept}
            for accept in ("application/vnd.pypi.integrity.v1+json", "application/json", "text/html")
        ] + [{"path_parameters": {"project": PROJECT, "version": "1.0", "filename": pubtrail.wheel_name}}],
        "GET /api/v1/projects/{project}/{version}": [{"path_parameters": {"project": PROJECT, "version": "1.0"}}],
        "POST /api/v1/log/cosignatures": [{"body": pubtrail.cosignature, "media_type": "text/plain"}],
        "POST /api/v1/monitors": [
            {
                "body": {"name": "uploads of the project", "match": {"kind": "upload", "project": PROJECT},
                         "webhook_url": "http://127.0.0.1:9/hook"},
                "media_type": "application/json",
            }
        ],
    }


def _fuzz(operation, mode: GenerationMode, pubtrail: Pubtrail, seen: set[tuple[str, int]]) -> None:
    credentials = _credentials(operation, pubtrail)

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode), authenticated=strategies.booleans())
    def run(case, authenticated: bool) -> None:
        _call(case, credentials if authenticated else None, pubtrail, seen)

    run()


def _call(case, headers: dict[str, str] | None, pubtrail: Pubtrail, seen: set[tuple[str, int]]) -> None:
    response = case.call(app=pubtrail.app, headers=headers)
    seen.add((case.operation.label, response.status_code))
    case.validate_response(response, checks=CHECKS, headers=headers)


def _describe(exc: BaseException) -> str:
    parts = [f"{type(e).__name__}: {e}" for e in getattr(exc, "exceptions", (exc,))]
    return "\n".join(parts + list(getattr(exc, "__notes__", [])))


def test_every_answer_is_the_one_the_schema_describes(pubtrail):
    schema = schemathesis.openapi.from_asgi("/openapi.json", pubtrail.app, config=SchemathesisConfig())
    known_good = _known_good(pubtrail)
    failures: list[str] = []
    seen: set[tuple[str, int]] = set()
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        definition = operation.definition.raw
        modes = [GenerationMode.POSITIVE]
        if definition.get("parameters") or definition.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                _fuzz(operation, mode, pubtrail, seen)
            except hypothesis.errors.Unsatisfiable:
                # invalid input for parameters that are all free strings does not exist
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as exc:  # every operation runs; all failures are reported together
                failures.append(f"{operation.label} ({mode.value}): {_describe(exc)}")
        for request in known_good.get(operation.label, []):
            request = dict(request)
            headers = {**_credentials(operation, pubtrail), "Accept": request.pop("accept", "*/*")}
            try:
                _call(operation.Case(**request), headers, pubtrail, seen)
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} {request}: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)

    assert set(known_good) <= set(labels)
    # the run reached past authentication and found what the log holds
    expected = {
        ("GET /api/v1/log/entries/{index}", 200),
        ("GET /api/v1/log/entries/{index}", 404),
        ("GET /api/v1/log/checkpoints/{size}", 200),
        ("GET /api/v1/log/proof/inclusion", 200),
        ("GET /api/v1/log/proof/consistency", 200),
        ("GET /tile/{tile_path}", 200),
        ("GET /tile/{tile_path}", 404),
        ("GET /simple/{project}/", 200),
        ("GET /simple/{project}/", 406),
        ("GET /files/{sha256}/{filename}", 200),
        ("GET /api/v1/projects/{project}/publishers", 200),
        ("GET /api/v1/projects/{project}/publishers", 401),
        ("POST /api/v1/projects/{project}/publishers", 201),
        ("POST /api/v1/projects/{project}/publishers", 400),
        ("POST /_/oidc/mint-token", 422),
        ("POST /legacy/", 400),
        ("POST /legacy/", 403),
        ("POST /api/v1/log/cosignatures", 200),
        ("POST /api/v1/log/cosignatures", 400),
    }
    assert expected <= seen, sorted(expected - seen)
