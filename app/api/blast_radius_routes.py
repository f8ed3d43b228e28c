"""GET /api/v1/blast-radius: what an identity, signing key or token published, each item proven."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.api import openapi
from app.api.deps import RuntimeDep
from app.errors import BadRequest
from app.services import criteria as criteria_module
from app.services.blast_radius import DEFAULT_LIMIT, MAX_LIMIT, BlastRadius

router = APIRouter(prefix="/api/v1", tags=["queries"])

PAGING = ("limit", "cursor", "format")
CSV_TYPE = "text/csv; charset=utf-8"

DESCRIPTION = f"""
Criteria (query parameters, combined with AND; at least one besides the window):
`issuer`, `provider`, `repository`, `repository_owner_id`, `workflow` (a workflow file name such as
`release.yml`, or a full `workflow_ref` when it contains `@`), `job_workflow_ref` (a reusable workflow
shared by many repositories), `ref`, `sha`, `environment`, `actor`, `publisher_id`, `kid` (an OIDC
issuer's signing key), `token_id` (an upload token's or a long-lived API token's id), `project`, `auth`
(`trusted_publishing` or `api_token`: how the uploads were authorised), and the window `since` (inclusive) / `until` (exclusive),
RFC 3339 with an offset (fractions of a second round up). Repository names and workflow refs match
case-insensitively.

**Semantics.** With any exchange criterion (everything but `token_id`, `project`, `auth` and the window), the
window selects token exchanges by their time, and an upload belongs to the answer when the token that
authorised it was minted by a matching exchange, even if the upload came after `until` (the token was
already in the attacker's hands). `token_id`, `project` and `auth` select uploads directly (and narrow the
exchanges: the one that minted `token_id`, those whose token covered `project`; none for `auth=api_token`,
since an exchange is trusted publishing). With only such upload
criteria, the window applies to the uploads' time, and the exchanges are the one that minted `token_id`
(used or not) or those behind the selected uploads.

**Answer.** `criteria` (canonical), `checkpoint` (the signed note every item is proven against) and its
`tree_size`; `as_of`, the time token states are taken at; `exchanges` (with the token's state: `valid`,
`expired` or `revoked`) and `uploads`, each item with `index`, `leaf_hash`, `entry_bytes` (base64 of the
logged entry) and `proof` (inclusion proof at `tree_size`), so a client can re-hash and prove each one
with the log's verifier key alone; `projects` (project -> version -> files of this page's uploads);
`totals` (exchanges, uploads, projects, releases, tokens_valid: the matching exchanges' upload tokens still valid plus the live API tokens that made a matching upload) counting every match, not just this
page; `next_cursor`, null on the last page.

**Paging.** `limit` items per list (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}); pass `next_cursor` as
`cursor` with the same criteria for the next page. Every page is pinned to the first page's checkpoint,
so pages neither miss nor repeat items while the log grows.

**CSV.** `format=csv` answers every matching upload at the latest checkpoint as `text/csv`, one row per
file with its publisher identity and `auth` (no paging: `limit` and `cursor` are refused with it).

Unknown parameters, repeated parameters, a malformed time or `since` not before `until`: 400.
"""

_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"} if name in criteria_module.WINDOW
        else {"type": "string", "enum": list(criteria_module.AUTHS)} if name == "auth" else {"type": "string"},
    }
    for name in criteria_module.NAMES
] + [
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "csv"]}},
]


def service(runtime) -> BlastRadius:
    return BlastRadius(runtime.engine, runtime.log.reader, runtime.clock)


@router.get(
    "/blast-radius",
    summary="Blast radius: what an identity, signing key or token published, and which tokens are alive",
    description=DESCRIPTION,
    openapi_extra={"parameters": _PARAMETERS},
    responses={
        200: openapi.content(openapi.JSON, "one page of the blast radius; `format=csv`: every matching upload",
                             schema={"type": "object"}, also=("text/csv",)),
        **openapi.errors({400: "no criterion, an unknown or repeated parameter, a malformed time or cursor"}),
        **openapi.INTEGRITY_FAILURE,
    },
)
def blast_radius(request: Request, runtime: RuntimeDep):
    items = request.query_params.multi_items()
    paging: dict[str, str] = {}
    for name, value in items:
        if name in PAGING:
            if name in paging:
                raise BadRequest(f"{name} is given more than once")
            paging[name] = value
    criteria = criteria_module.from_query(items, ignore=PAGING)
    answer_format = paging.get("format", "json")
    if answer_format not in ("json", "csv"):
        raise BadRequest("format must be json or csv")
    if answer_format == "csv":
        if "limit" in paging or "cursor" in paging:
            raise BadRequest("format=csv answers every matching upload: limit and cursor do not apply")
        size, chunks = service(runtime).csv(criteria)
        return StreamingResponse(chunks, media_type=CSV_TYPE, headers={"X-Pubtrail-Tree-Size": str(size)})
    limit = _limit(paging.get("limit"))
    return service(runtime).answer(criteria, limit=limit, cursor=paging.get("cursor"))


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return int(text)
