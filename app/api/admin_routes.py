"""Admin API: trusted publishers, upload tokens, project API tokens and settings. Bearer-authenticated.

Every route authenticates from the headers before it reads a byte of the
body, so a caller without the admin token can make pubtrail neither buffer
nor parse anything. Each admin token has a name (`Settings.admin_credentials`);
that name is the `actor` of the log entries its changes make.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials

from app.api import openapi
from app.api.deps import RuntimeDep
from app.errors import BadRequest, Unauthorized
from app.services.publishers import parse_publisher


def require_admin(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(openapi.ADMIN_TOKEN)] = None,
) -> str:
    """The admin's name for log entries; 401 unless the bearer token is one of the admins'.

    (`_documented` only puts the admin token's security scheme on every route
    that depends on this; it never refuses anything.)"""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("admin routes need Authorization: Bearer <admin token>")
    candidate = presented.strip().encode()
    matched = None
    # every token is compared, so the time taken does not say which admin's token came closest
    for name, token in runtime.settings.admin_credentials().items():
        if hmac.compare_digest(candidate, token.encode()) and matched is None:
            matched = name
    if matched is None:
        raise Unauthorized("the admin token is not valid")
    return matched


AdminDep = Annotated[str, Depends(require_admin)]
router = APIRouter(prefix="/api/v1", tags=["admin"], responses=openapi.ADMIN_REFUSALS)
_BAD_PROJECT = "not a valid project name"


async def _json_body(request: Request, *, required: bool) -> Any:
    """The request's JSON body, read only now (after authentication); None when empty and optional."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("the request body must be a JSON object")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest("the request body is not valid JSON") from exc


def _json_object_body(example: dict, *, required: bool) -> dict:
    """OpenAPI text for a JSON object body that the handler reads itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }


@router.get(
    "/projects/{project}/publishers",
    summary="List a project's trusted publishers",
    responses=openapi.errors({400: _BAD_PROJECT, 404: "the project has no files and never had a publisher"}),
)
def list_publishers(project: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    """404 when the project has no files and never had a publisher."""
    return {"publishers": [p.to_json() for p in runtime.publishers.list(project)]}


@router.post(
    "/projects/{project}/publishers",
    status_code=201,
    summary="Register a trusted publisher (logged)",
    description="The body is the provider and its fields, e.g. "
    '`{"provider": "github", "repository": "owner/repo", "repository_owner_id": "12345", '
    '"workflow": "release.yml", "environment": "pypi"}` or '
    '`{"provider": "gitlab", "namespace": "group", "project": "repo", "workflow_filepath": ".gitlab-ci.yml"}` '
    "(there `project` is the GitLab project; the index project is the one in the path). "
    "Answers with the publisher (its provider fields under `config`) and the log receipt.",
    openapi_extra=_json_object_body(
        {"provider": "github", "repository": "owner/repo", "repository_owner_id": "12345", "workflow": "release.yml"},
        required=True,
    ),
    responses={
        **openapi.errors(
            {
                400: "not a valid project name, or the body is not a valid publisher of a known provider",
                409: "the same publisher is already registered for the project",
            }
        ),
        **openapi.BODY_REFUSALS,
    },
)
async def add_publisher(project: str, request: Request, runtime: RuntimeDep, admin: AdminDep) -> dict:
    publisher = parse_publisher(await _json_body(request, required=True))
    registered, receipt = await runtime.publishers.add(project, publisher, admin)
    return {"publisher": registered.to_json(), "receipt": receipt.to_json()}


@router.delete(
    "/projects/{project}/publishers/{publisher_id}",
    summary="Remove a trusted publisher (logged)",
    responses=openapi.errors({400: _BAD_PROJECT, 404: "no such publisher for the project"}),
)
async def remove_publisher(project: str, publisher_id: str, runtime: RuntimeDep, admin: AdminDep) -> dict:
    removed, receipt = await runtime.publishers.remove(project, publisher_id, admin)
    return {"publisher": removed.to_json(), "receipt": receipt.to_json()}


@router.get(
    "/publishers/{publisher_id}/tokens",
    summary="List the live upload tokens minted through a trusted publisher",
    description="Tokens neither revoked nor expired, oldest first, each with the log index of its exchange.",
)
def live_tokens(publisher_id: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    return {"tokens": [t.to_json() for t in runtime.token_admin.live_tokens(publisher_id)]}


@router.post(
    "/tokens/{token_id}/revoke",
    summary="Revoke an upload token (logged)",
    description='Optional body `{"reason": "..."}` (at most 1000 characters), recorded in the `revocation` '
    "entry. Answers with the log receipt; 404 for a token that is unknown, already revoked or expired.",
    openapi_extra=_json_object_body({"reason": "the workflow's repository was compromised"}, required=False),
    responses={
        **openapi.errors(
            {
                400: 'the body is not JSON, or not an object with at most a "reason" string',
                404: "no live upload token with that id",
            }
        ),
        **openapi.BODY_REFUSALS,
    },
)
async def revoke_token(token_id: str, request: Request, runtime: RuntimeDep, admin: AdminDep) -> dict:
    body = await _json_body(request, required=False)
    if body is not None and (not isinstance(body, dict) or set(body) - {"reason"}):
        raise BadRequest('the request body must be a JSON object with at most a "reason" field')
    receipt = await runtime.token_admin.revoke(token_id, admin, (body or {}).get("reason"))
    return {"revoked": token_id, "receipt": receipt.to_json()}


# --- long-lived API tokens and project settings -------------------------------------

_TOKEN_BODY = 'the body is not a JSON object with exactly a "description" string (at most 200 printable characters)'


@router.post(
    "/projects/{project}/tokens",
    status_code=201,
    summary="Create a long-lived API token for a project (logged)",
    description="Body `{\"description\": \"ci-legacy\"}`. Answers `{id, token, description, created_at, project}` "
    "and the receipt of the `api_token` entry. The secret (`token`) is shown only here; twine uses it as the "
    "password with the user `__token__`. Only its hash is kept. The answer carries "
    "`Cache-Control: no-store`, so no cache keeps the secret.",
    openapi_extra=_json_object_body({"description": "ci-legacy"}, required=True),
    responses={
        **openapi.errors({400: f"{_BAD_PROJECT}, or {_TOKEN_BODY}", 404: "the project has no files and never had a publisher"}),
        **openapi.BODY_REFUSALS,
    },
)
async def create_api_token(
    project: str, request: Request, response: Response, runtime: RuntimeDep, admin: AdminDep
) -> dict:
    body = await _json_body(request, required=True)
    if not isinstance(body, dict) or set(body) != {"description"}:
        raise BadRequest('the request body must be a JSON object with exactly a "description" field')
    created, receipt = await runtime.api_tokens.create(project, body["description"], admin)
    response.headers["Cache-Control"] = "no-store"
    return {**created, "receipt": receipt.to_json()}


@router.get(
    "/projects/{project}/tokens",
    summary="List a project's API tokens (no secrets)",
    description="Every API token of the project, revoked ones too, oldest first.",
    responses=openapi.errors({400: _BAD_PROJECT, 404: "the project has no files and never had a publisher"}),
)
def list_api_tokens(project: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    return {"tokens": [t.to_json() for t in runtime.api_tokens.list(project)]}


@router.delete(
    "/projects/{project}/tokens/{token_id}",
    summary="Revoke a project's API token (logged)",
    responses=openapi.errors({400: _BAD_PROJECT, 404: "no live API token with that id for the project"}),
)
async def revoke_api_token(project: str, token_id: str, runtime: RuntimeDep, admin: AdminDep) -> dict:
    revoked, receipt = await runtime.api_tokens.revoke(project, token_id, admin)
    return {"token": revoked.to_json(), "receipt": receipt.to_json()}


@router.patch(
    "/projects/{project}",
    summary="Change a project's settings (logged)",
    description='Body `{"trusted_publishing_only": true}`: API-token uploads to the project are then refused '
    "(403). Answers with the settings and the receipt of the `project_settings` entry.",
    openapi_extra=_json_object_body({"trusted_publishing_only": True}, required=True),
    responses={
        **openapi.errors(
            {
                400: f'{_BAD_PROJECT}, or the body is not {{"trusted_publishing_only": true|false}}',
                404: "the project has no files and never had a publisher",
            }
        ),
        **openapi.BODY_REFUSALS,
    },
)
async def patch_project(project: str, request: Request, runtime: RuntimeDep, admin: AdminDep) -> dict:
    body = await _json_body(request, required=True)
    if not isinstance(body, dict) or set(body) != {"trusted_publishing_only"}:
        raise BadRequest('the request body must be a JSON object with exactly a "trusted_publishing_only" field')
    settings, receipt = await runtime.api_tokens.set_trusted_publishing_only(
        project, body["trusted_publishing_only"], admin
    )
    return {**settings, "receipt": receipt.to_json()}
