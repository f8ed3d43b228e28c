"""What /openapi.json says: security schemes, refusal bodies, media types, and what it leaves out.

tests/api/test_schemathesis.py checks the answers against the document; these
tests pin the parts of the document that generated requests cannot tell apart
(which routes need which credentials, that FastAPI's 422 is gone) and that the
documentation-only security classes change no answer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from app.api.app import create_app
from app.runtime import build_runtime

ERROR = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def document(make_settings, tmp_path) -> Iterator[dict]:
    runtime = build_runtime(make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", dev=True))
    try:
        yield create_app(runtime).openapi()
    finally:
        runtime.close()


def _operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_admin_routes_need_the_admin_token_and_uploads_the_upload_token(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["adminToken"]["type"] == "http" and schemes["adminToken"]["scheme"] == "bearer"
    assert schemes["uploadToken"]["type"] == "http" and schemes["uploadToken"]["scheme"] == "basic"
    secured = {(method, path): operation.get("security") for method, path, operation in _operations(document)}
    admin = {key for key, security in secured.items() if security == [{"adminToken": []}]}
    assert admin >= {
        ("GET", "/api/v1/projects/{project}/publishers"),
        ("POST", "/api/v1/projects/{project}/publishers"),
        ("DELETE", "/api/v1/projects/{project}/publishers/{publisher_id}"),
        ("GET", "/api/v1/publishers/{publisher_id}/tokens"),
        ("POST", "/api/v1/tokens/{token_id}/revoke"),
    }
    assert secured[("POST", "/legacy/")] == [{"uploadToken": []}]
    for key in _PUBLIC_API | {("GET", "/checkpoint"), ("POST", "/_/oidc/mint-token"), ("GET", "/simple/")}:
        assert secured[key] is None, key
    for method, path in admin:
        answer = document["paths"][path][method.lower()]["responses"]["401"]
        assert answer["content"]["application/json"]["schema"] == ERROR
        assert answer["headers"]["WWW-Authenticate"]["required"] is True


_PUBLIC_API = {
    ("GET", "/api/v1/log"),
    ("GET", "/api/v1/log/entries/{index}"),
    ("GET", "/api/v1/log/proof/inclusion"),
    ("GET", "/api/v1/log/proof/consistency"),
    ("GET", "/api/v1/log/checkpoints/{size}"),
    ("POST", "/api/v1/log/cosignatures"),  # witnesses authenticate by their cosignature keys
}


def test_refusals_have_their_real_bodies_and_fastapis_422_is_gone(document):
    for method, path, operation in _operations(document):
        for status, answer in operation["responses"].items():
            if path == "/_/oidc/mint-token" and status == "422":
                assert answer["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/TokenRequestFailed"}}
                }
            elif path == "/legacy/" and status in ("400", "403", "410", "503"):
                assert list(answer["content"]) == ["text/plain"], status
            elif path.startswith("/integrity/") and status == "404":
                # PyPI's Integrity API answers {"message": ...}; clients written for PyPI read that shape
                assert answer["content"]["application/json"]["schema"]["required"] == ["message"]
            elif status.startswith(("4", "5")) and status != "406":
                assert answer["content"] == {"application/json": {"schema": ERROR}}, (method, path, status)
            assert "HTTPValidationError" not in str(answer), (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    failed = document["components"]["schemas"]["TokenRequestFailed"]
    assert failed["properties"]["message"]["const"] == "Token request failed"
    code = document["components"]["schemas"]["TokenRequestError"]["properties"]["code"]
    assert set(code["enum"]) == {"invalid-payload", "invalid-token", "invalid-reuse-token", "invalid-publisher",
                                 "not-enabled"}


def test_media_types_are_the_served_ones(document):
    def media(path: str, status: str = "200") -> list[str]:
        return list(document["paths"][path]["get"]["responses"][status]["content"])

    assert media("/checkpoint") == ["text/plain"]
    assert media("/api/v1/log/checkpoints/{size}") == ["text/plain"]
    assert media("/metrics") == ["text/plain"]
    assert media("/tile/{tile_path}") == ["application/octet-stream"]
    assert media("/files/{sha256}/{filename}") == ["application/octet-stream"]
    simple = ["text/html", "application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+json"]
    assert media("/simple/") == simple
    assert media("/simple/{project}/") == simple
    assert media("/simple/{project}/", "406") == ["text/plain"]
    assert media("/") == ["text/html", "application/json"]
    assert media("/help/uploads") == ["text/html"]
    assert list(document["paths"]["/legacy/"]["post"]["requestBody"]["content"]) == ["multipart/form-data"]


def test_dev_and_redirect_routes_stay_out_of_the_document(document):
    # the document is built in development mode, where the dev issuer's routes exist
    paths = set(document["paths"])
    assert not {p for p in paths if p.startswith("/_/dev/")}
    assert not paths & {"/docs", "/redoc", "/simple", "/simple/{project}", "/legacy"}


def test_documentation_only_security_changes_no_answer(edge):
    """The admin and upload security classes never answer for the routes: the routes' own refusals stand."""
    for authorization in (None, "Basic abc", "Bearer", "Bearer wrong-token"):
        headers = {"Authorization": authorization} if authorization else {}
        response = edge.client.get("/api/v1/projects/demo/publishers", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] in (
            "admin routes need Authorization: Bearer <admin token>",
            "the admin token is not valid",
        )
    for authorization in ("Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x"):
        response = edge.client.post("/legacy/", headers={"Authorization": authorization}, content=b"")
        assert response.status_code == 403, (authorization, response.status_code)
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith("Invalid or non-existent authentication information")
