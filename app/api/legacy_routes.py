"""PyPI's legacy upload API: ``POST /legacy/``, as ``twine upload`` speaks it.

Errors go on the HTTP status line (:class:`ReasonResponse`; serve with
``ReasonH11Protocol``), because that is where twine reads them. Success is
200 with JSON: the ``upload`` entry and its log receipt (twine ignores the
body); re-sending the same file is 200 ``{"duplicate": true, ...}``.

The token is checked from the headers before any of the body is read. When
it is refused, the body is read and discarded (never spooled) up to the
upload size limit, so a client that sends its whole body before reading the
answer (requests, hence twine) still sees the 403 instead of a reset
connection; a larger body is cut off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect

from app.api.deps import RuntimeDep
from app.api.reason_phrase import ReasonResponse
from app.distributions.errors import UploadError

router = APIRouter(tags=["pypi"])

#: Slack for the form fields on top of the file when draining a refused body.
_DRAIN_SLACK = 1024 * 1024


@router.post(
    "/legacy/",
    summary="Upload a distribution file (PyPI legacy API; twine)",
    description="multipart/form-data as twine sends it (`:action=file_upload`, `protocol_version=1`, metadata "
    "fields, digests, the file as `content`), authenticated with HTTP Basic `__token__` / upload token. "
    "Errors are reported in the HTTP reason phrase, as on PyPI.",
    response_class=JSONResponse,
)
async def upload(request: Request, runtime: RuntimeDep) -> Response:
    uploads = runtime.uploads
    try:
        grant = await uploads.authenticate(request.headers.get("authorization"))
    except UploadError as exc:
        await _drain(request, runtime.settings.max_upload_size + _DRAIN_SLACK)
        return ReasonResponse(exc.status, exc.reason)
    try:
        result = await uploads.upload(grant, request.stream(), request.headers.get("content-type"))
    except UploadError as exc:
        return ReasonResponse(exc.status, exc.reason)
    return JSONResponse(result.to_json())


@router.api_route(
    "/legacy",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def legacy_without_slash(request: Request) -> Response:
    """308 keeps the method and body, so a client that follows it re-sends the upload."""
    return RedirectResponse(request.url.replace(path="/legacy/"), status_code=308)


async def _drain(request: Request, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of the body."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                return
    except ClientDisconnect:
        return
