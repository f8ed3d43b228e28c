"""PyPI-compatible trusted-publishing endpoints: `/_/oidc/audience` and `/_/oidc/mint-token`.

Response bodies are byte-for-byte PyPI's shapes, because twine, `id` and
pypa/gh-action-pypi-publish parse them and print their errors.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from app.api.deps import RuntimeDep
from app.oidc.errors import InvalidPayload, OIDCError

router = APIRouter(tags=["trusted publishing"])

MAX_BODY = 64 * 1024


@router.get("/_/oidc/audience", summary="The audience OIDC tokens must be minted for")
def audience(runtime: RuntimeDep) -> dict:
    return {"audience": runtime.settings.audience}


@router.post(
    "/_/oidc/mint-token",
    summary="Exchange an OIDC identity token for a short-lived upload token",
    description='Body `{"token": "<OIDC JWT>"}`. Success: `{"success": true, "token": ..., "expires": <unix>}`. '
    'Failure: 422 `{"message": "Token request failed", "errors": [{"code": ..., "description": ...}]}` '
    "with codes invalid-payload, invalid-token, invalid-reuse-token, invalid-publisher, not-enabled.",
)
async def mint_token(request: Request, runtime: RuntimeDep) -> JSONResponse:
    body = await request.body()
    try:
        if len(body) > MAX_BODY:
            raise InvalidPayload("the request body is too large")
        minted = await runtime.exchange.mint(body)
    except OIDCError as exc:
        return JSONResponse(
            {
                "message": "Token request failed",
                "errors": [{"code": exc.code, "description": exc.description}],
            },
            status_code=422,
        )
    return JSONResponse({"success": True, "token": minted.token, "expires": minted.expires})


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
