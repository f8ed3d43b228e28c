"""PyPI-compatible trusted-publishing endpoints: `/_/oidc/audience` and `/_/oidc/mint-token`.

Response bodies are byte-for-byte PyPI's shapes, because twine, `id` and
pypa/gh-action-pypi-publish parse them and print their errors.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from app.api import openapi
from app.api.deps import RuntimeDep
from app.oidc.errors import OIDCError

router = APIRouter(tags=["trusted publishing"])


@router.get("/_/oidc/audience", summary="The audience OIDC tokens must be minted for")
def audience(runtime: RuntimeDep) -> dict:
    return {"audience": runtime.settings.audience}


@router.post(
    "/_/oidc/mint-token",
    summary="Exchange an OIDC identity token for a short-lived upload token",
    description='Body `{"token": "<OIDC JWT>"}`. Success: `{"success": true, "token": ..., "expires": <unix>, '
    '"receipt": <the exchange entry\'s log receipt>}`. '
    'Failure: 422 `{"message": "Token request failed", "errors": [{"code": ..., "description": ...}]}` '
    "with codes invalid-payload, invalid-token, invalid-reuse-token, invalid-publisher, not-enabled.",
    responses={
        422: openapi.json_body(
            openapi.TokenRequestFailed, "the exchange was refused (a body over 64 KiB is invalid-payload)"
        ),
        **openapi.errors(
            {
                408: "the request body stalled: no data within the server's chunk timeout",
                503: "the server's storage is full, or the log is halted: no token was minted (Retry-After)",
            }
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["token"],
                        "properties": {"token": {"type": "string", "description": "the OIDC identity token (JWT)"}},
                    }
                }
            },
        }
    },
)
async def mint_token(request: Request, runtime: RuntimeDep) -> JSONResponse:
    # The body is at most 64 KiB: app.api.body_limit refuses larger ones
    # (with this route's 422 invalid-payload shape) before they are read.
    body = await request.body()
    try:
        minted = await runtime.exchange.mint(body, request.client.host if request.client else None)
    except OIDCError as exc:
        return JSONResponse(
            {
                "message": "Token request failed",
                "errors": [{"code": exc.code, "description": exc.description}],
            },
            status_code=422,
        )
    # `receipt` rides beside PyPI's fields, which clients read and ignore the rest
    return JSONResponse(
        {"success": True, "token": minted.token, "expires": minted.expires, "receipt": minted.receipt.to_json()}
    )


@router.get("/_/dev/oidc/.well-known/openid-configuration", include_in_schema=False)
def dev_discovery(runtime: RuntimeDep) -> dict:
    return _dev(runtime).discovery_document()


@router.get("/_/dev/oidc/.well-known/jwks.json", include_in_schema=False)
def dev_jwks(runtime: RuntimeDep) -> dict:
    return _dev(runtime).jwks()


def _dev(runtime):
    if runtime.dev_issuer is None:
        raise HTTPException(404, "development mode is off")
    return runtime.dev_issuer
