"""What /openapi.json says about each route: statuses, bodies, media types, security.

Every route declares every status it answers with ``responses=`` built from
this module, so the document describes the server as it is (schemathesis
holds it to that in tests/api/test_schemathesis.py):

- JSON refusals are ``{"detail": "..."}`` (:class:`ErrorBody`, mapped in
  app.api.errors); :func:`errors` turns ``{status: why}`` into such entries,
  and :data:`BAD_PARAMETERS`, :data:`ADMIN_REFUSALS`, :data:`BODY_REFUSALS`
  are the ones many routes share;
- ``/_/oidc/mint-token`` refuses with PyPI's 422 (:class:`TokenRequestFailed`);
- ``/legacy/`` refuses in plain text (:func:`text_errors`), the reason also on
  the status line;
- non-JSON successes name their media type with :func:`content`.

Security schemes are FastAPI security classes that never refuse anything
(``auto_error=False``): they only document. :data:`ADMIN_TOKEN` is part of
``app.api.admin_routes.AdminDep``, so every route that depends on it is
documented as needing the admin bearer token; :data:`UPLOAD_TOKEN` is
declared by ``POST /legacy/``. The routes authenticate by themselves.

:func:`install` replaces FastAPI's default 422 "Validation Error" entries,
which pubtrail never sends (request validation answers 400 here).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from fastapi.security.http import HTTPBase
from pydantic import BaseModel, Field

__all__ = [
    "ADMIN_REFUSALS",
    "ADMIN_TOKEN",
    "BAD_PARAMETERS",
    "BODY_REFUSALS",
    "ErrorBody",
    "COMPONENTS",
    "INTEGRITY_FAILURE",
    "JSON",
    "OCTET_STREAM",
    "TEXT",
    "TokenRequestFailed",
    "UPLOAD_TOKEN",
    "content",
    "errors",
    "install",
    "json_body",
    "text_errors",
]

TEXT = "text/plain"
HTML = "text/html"
OCTET_STREAM = "application/octet-stream"
JSON = "application/json"

_STRING = {"type": "string"}
_HEADER = {"schema": _STRING, "required": True}


class ErrorBody(BaseModel):
    """The body of every JSON refusal."""

    detail: str = Field(description="why the request was refused, for the person reading it")


class TokenRequestError(BaseModel):
    code: Literal["invalid-payload", "invalid-token", "invalid-reuse-token", "invalid-publisher", "not-enabled"]
    description: str


class TokenRequestFailed(BaseModel):
    """PyPI's answer to a refused token exchange, which twine and the publish action print."""

    message: Literal["Token request failed"]
    errors: list[TokenRequestError]


#: The body models that :func:`errors` and :func:`json_body` refer to; :func:`install` adds them to the document.
COMPONENTS: tuple[type[BaseModel], ...] = (ErrorBody, TokenRequestFailed)

ADMIN_TOKEN = HTTPBearer(
    scheme_name="adminToken",
    description="`Authorization: Bearer <admin token>`: one of the tokens in PUBTRAIL_ADMIN_TOKEN.",
    auto_error=False,
)
UPLOAD_TOKEN = HTTPBase(
    scheme="basic",
    scheme_name="uploadToken",
    description="HTTP Basic with the username `__token__` and an upload token from /_/oidc/mint-token "
    "as the password, as twine sends it.",
    auto_error=False,
)


def errors(reasons: dict[int, str], *, headers: dict[str, dict] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for JSON refusals: each status answers ``{"detail": ...}``;
    ``reasons`` says when. ``headers`` are documented on every one of them."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status, why in reasons.items():
        # an explicit media type, not `model`: FastAPI would file a model under the route's
        # response class (text/plain on a text route), while refusals are always JSON
        entries[status] = content(JSON, why, schema=_ref(ErrorBody), headers=headers)
    return entries


def json_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """One ``responses=`` entry answering JSON shaped as ``model`` (one of :data:`COMPONENTS`)."""
    return content(JSON, description, schema=_ref(model))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def text_errors(reasons: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for refusals whose body is one line of plain text."""
    return {status: content(TEXT, why) for status, why in reasons.items()}


def content(media_type: str, description: str, *, schema: dict | None = None, headers: dict | None = None,
            also: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``responses=`` entry answering ``media_type`` (and the media types in ``also``).
    The body is ``schema`` if given, else a JSON object for JSON media types and text for the others."""
    entry: dict[str, Any] = {
        "description": description,
        "content": {m: {"schema": schema or _default_schema(m)} for m in (media_type, *also)},
    }
    if headers:
        entry["headers"] = headers
    return entry


def _default_schema(media_type: str) -> dict[str, Any]:
    return {"type": "object"} if media_type.endswith(("/json", "+json")) else _STRING


def header(description: str) -> dict[str, Any]:
    """A response header the server always sends."""
    return {**_HEADER, "description": description}


#: Path or query parameters that are missing, malformed or out of range.
BAD_PARAMETERS = errors({400: "a parameter is missing, malformed or out of range"})
#: Routes that need the admin token (the 401 also names the scheme in WWW-Authenticate).
ADMIN_REFUSALS = errors(
    {401: "no admin token, or not one of the admin tokens"},
    headers={"WWW-Authenticate": header("`Bearer`")},
)
#: Routes that read a body (app.api.body_limit).
BODY_REFUSALS = errors(
    {
        408: "the request body stalled: no data within the server's chunk timeout",
        413: "the request body is larger than the route accepts (64 KiB for the admin API)",
    }
)
#: Reads that check stored entries against their leaf hashes.
INTEGRITY_FAILURE = errors({500: "a stored entry no longer matches its leaf hash; it is never served"})


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` the document described above (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _drop_default_validation_errors(document)
            _add_components(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_default_validation_errors(document: dict[str, Any]) -> None:
    """Remove the 422 FastAPI adds to every route with parameters (and its schemas), unless a route
    declares its own 422 (mint-token)."""
    default_ref = "#/components/schemas/HTTPValidationError"
    used = False
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer is None:
                continue
            if answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == default_ref:
                del operation["responses"]["422"]
            else:
                used = used or "HTTPValidationError" in str(answer)
    schemas = document.get("components", {}).get("schemas", {})
    if not used:
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _add_components(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in COMPONENTS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
