"""Incidents: declare one (admin), list and read them (public, like the log)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api import openapi
from app.api.admin_routes import AdminDep, _json_body, _json_object_body
from app.api.blast_radius_routes import _limit
from app.api.deps import RuntimeDep
from app.errors import BadRequest
from app.services.incidents import parse_declaration

router = APIRouter(prefix="/api/v1", tags=["incidents"])

_EXAMPLE = {
    "description": "octo-org/app's release workflow was compromised",
    "criteria": {"repository": "octo-org/app", "since": "2026-09-21T00:00:00Z", "until": "2026-09-22T00:00:00Z"},
    "revoke_tokens": True,
    "disable_publishers": False,
}


@router.post(
    "/incidents",
    status_code=201,
    summary="Declare an incident (logged): revoke its live tokens, optionally remove its publishers",
    description="Body `{description, criteria, revoke_tokens: true, disable_publishers: false}`; `criteria` "
    "is an object of blast-radius criteria (`GET /api/v1/blast-radius`, same names and semantics, string "
    "values). Appends one `incident` entry naming the incident, its criteria, the admin and the upload "
    "tokens it revokes: every token minted by a matching exchange that is still valid, revoked in the "
    "entry's own transaction (nothing is logged or revoked if anything fails). With `disable_publishers`, "
    "each trusted publisher that minted a matching token is then removed from its projects, each removal "
    "its own `publisher` entry. Answers with the incident's `id`, `log_index`, `revoked_tokens`, "
    "`removed_publishers`, the entry's `receipt` and the `blast_radius` (first page) at that moment.",
    openapi_extra=_json_object_body(_EXAMPLE, required=True),
    responses={
        **openapi.ADMIN_REFUSALS,
        **openapi.errors(
            {
                400: "the body is not JSON, or not a valid declaration (description, criteria, flags)",
                409: "matching tokens kept changing while the incident was being declared",
            }
        ),
        **openapi.BODY_REFUSALS,
    },
)
async def declare_incident(request: Request, runtime: RuntimeDep, admin: AdminDep) -> dict:
    declaration = parse_declaration(await _json_body(request, required=True))
    return await runtime.incidents.declare(declaration, admin)


@router.get(
    "/incidents",
    summary="List incidents, each with its current blast radius in totals",
    description="Every declared incident, oldest first: `id`, `description`, `log_index`, `declared_at`, "
    "`declared_by`, `criteria`, and `totals` of its blast radius now (the criteria evaluated at the "
    "latest checkpoint; read `/api/v1/incidents/{id}` for the items).",
    responses=openapi.BAD_PARAMETERS,
)
def list_incidents(request: Request, runtime: RuntimeDep) -> dict:
    if request.query_params:
        raise BadRequest("this route takes no parameters")
    return {"incidents": runtime.incidents.list()}


@router.get(
    "/incidents/{incident_id}",
    summary="One incident with its current blast radius",
    description="The incident, the tokens it revoked, and `blast_radius`: its criteria answered now, paged "
    "exactly like `GET /api/v1/blast-radius` (`limit`, `cursor`; every page pinned to the first page's "
    "checkpoint). The uploads in it are the files the incident covers.",
    openapi_extra={"parameters": [
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
    ]},
    responses={
        **openapi.errors({400: "an unknown parameter, a bad limit or cursor", 404: "no such incident"}),
        **openapi.INTEGRITY_FAILURE,
    },
)
def show_incident(incident_id: str, request: Request, runtime: RuntimeDep) -> dict:
    params = dict(request.query_params)
    unknown = set(request.query_params.keys()) - {"limit", "cursor"}
    if unknown or len(request.query_params.multi_items()) != len(params):
        raise BadRequest("only limit and cursor, each at most once, are accepted")
    return runtime.incidents.get(incident_id, limit=_limit(params.get("limit")), cursor=params.get("cursor"))
