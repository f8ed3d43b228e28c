"""Witnesses push their cosignatures of the log's checkpoints: `POST /api/v1/log/cosignatures`.

For push-only witnesses (a `pubtrail monitor --cosign`, or any witness that
cannot be called) as well as the ones the log calls itself. The rules are
in `app.services.witnessing.accept_cosignatures`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from app.api import openapi
from app.api.deps import RuntimeDep
from app.services.witnessing import accept_cosignatures

router = APIRouter(prefix="/api/v1/log", tags=["log"])

_EXAMPLE = (
    "pubtrail.example/log\n4\nHU2b3NUN4gI7X1GMWv4gCvoFZ2jS5T7gYnVj1Q3N1yI=\n\n"
    "\u2014 monitor.example/w1 AbCdEf...\n"
)


@router.post(
    "/cosignatures",
    summary="Submit a witness's cosignature of a checkpoint the log signed",
    description="The body (`text/plain`) is a C2SP signed note: a checkpoint body exactly as the log signed it "
    "(`/api/v1/log/checkpoints/{size}`), a blank line, and one or more C2SP cosignature/v1 lines by witnesses "
    "in `PUBTRAIL_WITNESSES` (an entry with a `key` and no `url` is a push-only witness); the log's own "
    "signature line may be there too. Each cosignature is verified and stored with those the log gathers "
    "from witnesses itself, so it counts toward `PUBTRAIL_WITNESSES_REQUIRED` and `/checkpoint` serves it. "
    "Checked in this order, a refusal storing nothing: 400 malformed, 403 untrusted key or bad signature, "
    "409 a checkpoint the log never signed. Submitting the same cosignature again answers the same. "
    "Answers `tree_size`, `accepted` (the body's witnesses, as `name+keyid`) and `cosigned_by` (every "
    "configured witness whose cosignature of that checkpoint the log now holds).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
    responses={
        **openapi.errors(
            {
                400: "not UTF-8, not a checkpoint note with signature lines, or no cosignature by a configured witness",
                403: "a signature line by a key this log does not trust as a witness, or one that does not verify",
                409: "the log never signed this checkpoint body (another origin, no checkpoint at that size, "
                "or another root there)",
            }
        ),
        **openapi.BODY_REFUSALS,
    },
)
async def submit_cosignatures(request: Request, runtime: RuntimeDep) -> dict:
    body = await request.body()
    return await asyncio.to_thread(accept_cosignatures, runtime.witnessing, body)
