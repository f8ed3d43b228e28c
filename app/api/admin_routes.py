"""Admin API: trusted publishers and upload tokens. Bearer-authenticated."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header

from app.api.deps import RuntimeDep
from app.errors import NotFound, Unauthorized
from app.services.publishers import parse_publisher


def require_admin(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The admin's name for log entries; 401 unless the bearer token matches."""
    expected = runtime.settings.admin_token
    scheme, _, presented = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        raise Unauthorized("admin routes need Authorization: Bearer <admin token>")
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise Unauthorized("the admin token is not valid")
    return "admin"


AdminDep = Annotated[str, Depends(require_admin)]
router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/projects/{project}/publishers", summary="List a project's trusted publishers")
def list_publishers(project: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    return {"publishers": [p.to_json() for p in runtime.publishers.list(project)]}


@router.post(
    "/projects/{project}/publishers",
    status_code=201,
    summary="Register a trusted publisher (logged)",
    description='e.g. `{"provider": "github", "repository": "owner/repo", "repository_owner_id": "12345", '
    '"workflow": "release.yml", "environment": "pypi"}`. Answers with the publisher and the log receipt.',
)
async def add_publisher(
    project: str, runtime: RuntimeDep, admin: AdminDep, body: Annotated[Any, Body()] = None
) -> dict:
    publisher = parse_publisher(body)
    registered, receipt = await runtime.publishers.add(project, publisher, admin)
    return {"publisher": registered.to_json(), "receipt": receipt.to_json()}


@router.delete("/projects/{project}/publishers/{publisher_id}", summary="Remove a trusted publisher (logged)")
async def remove_publisher(project: str, publisher_id: str, runtime: RuntimeDep, admin: AdminDep) -> dict:
    removed, receipt = await runtime.publishers.remove(project, publisher_id, admin)
    return {"publisher": removed.to_json(), "receipt": receipt.to_json()}


@router.post("/tokens/{token_id}/revoke", summary="Revoke an upload token")
def revoke_token(token_id: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    if not runtime.tokens.revoke(token_id, runtime.clock()):
        raise NotFound(f"no live upload token {token_id}")
    return {"revoked": token_id}
