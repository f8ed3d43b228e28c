"""PyPI's legacy upload API: ``POST /legacy/``, as ``twine upload`` speaks it.

Errors go on the HTTP status line (:class:`ReasonResponse`; serve with
``ReasonH11Protocol``), because that is where twine reads them. Success is
200 with JSON: the ``upload`` entry and its log receipt (twine ignores the
body); re-sending the same file is 200 ``{"duplicate": true, ...}``.

The token is checked from the headers before any of the body is read.

A response sent before the body was read to its end (the token refused,
the file too large, a malformed form, a body that goes on after the form's
closing boundary) carries ``Connection: close``: the server then closes the
connection after the answer instead of reading and discarding whatever the
client still sends. Up to :data:`_REFUSED_DRAIN` bytes are read and dropped
first, so a client that sends a small body before reading the answer
(requests, hence twine) still sees it; a client still sending a large body
sees the connection reset.

A client that disconnects mid-upload is counted
(``pubtrail_uploads_total{result="disconnected"}``), not logged as an
error; its spooled part is deleted and nothing is stored.

A full disk (spool, blob store or database) is a 503 whose status line says
so, with ``Retry-After``; so is a halted log. Nothing was acknowledged, and
the same upload succeeds once the server can write again.

Refusal texts link to :data:`~app.distributions.errors.HELP_PATH`, served
here as a short page saying what is checked and why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response, Security
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect

from app.api import openapi
from app.api.deps import RuntimeDep
from app.api.errors import as_storage_full, retry_after
from app.api.reason_phrase import ReasonResponse
from app.distributions.errors import HELP_PATH, UploadError
from app.distributions.help import UPLOAD_HELP_HTML
from app.errors import PubtrailError

router = APIRouter(tags=["pypi"])

#: Bytes of a refused body read and dropped before the connection is closed.
_REFUSED_DRAIN = 1024 * 1024
_CLOSE = {"Connection": "close"}

_UPLOAD_FORM = {
    "type": "object",
    "required": [":action", "protocol_version", "name", "version", "content"],
    "properties": {
        ":action": {"type": "string", "enum": ["file_upload"]},
        "protocol_version": {"type": "string", "enum": ["1"]},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "filetype": {"type": "string", "enum": ["sdist", "bdist_wheel"]},
        "pyversion": {"type": "string"},
        "metadata_version": {"type": "string"},
        "summary": {"type": "string"},
        "requires_python": {"type": "string"},
        "sha256_digest": {"type": "string"},
        "blake2_256_digest": {"type": "string"},
        "md5_digest": {"type": "string"},
        "attestations": {"type": "string", "description": "PEP 740: a JSON list of attestation objects (twine "
                         "upload --attestations), at most one per predicate type; trusted publishing only"},
        "content": {"type": "string", "format": "binary", "description": "the distribution file"},
    },
}


class _Body:
    """The request body as an async iterable of chunks that remembers whether
    it was read to its end (``ended``)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._request.stream():
            if chunk:
                yield chunk
        self.ended = True

    async def drain(self, limit: int) -> None:
        """Read and drop up to ``limit`` more bytes (a disconnect ends it quietly)."""
        received = 0
        try:
            async for chunk in self:
                received += len(chunk)
                if received > limit:
                    return
        except ClientDisconnect:
            return


@router.post(
    "/legacy/",
    summary="Upload a distribution file (PyPI legacy API; twine)",
    description="multipart/form-data as twine sends it (`:action=file_upload`, `protocol_version=1`, metadata "
    "fields, digests, the file as `content`), authenticated with HTTP Basic `__token__` / upload token. "
    "Errors are reported in the HTTP reason phrase, as on PyPI.",
    response_class=JSONResponse,
    dependencies=[Security(openapi.UPLOAD_TOKEN)],
    responses={
        **openapi.text_errors(
            {
                400: "the form or the file is refused (the reason is also the status line's)",
                403: "no upload token, or one that is invalid, expired, revoked or not for this project",
                410: "an :action other than file_upload (PyPI retired them)",
                503: "the server's storage is full, or the log is halted: nothing was stored (Retry-After)",
            }
        ),
        **openapi.errors({408: "the request body stalled: no data within the server's chunk timeout"}),
    },
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _UPLOAD_FORM}}}},
)
async def upload(request: Request, runtime: RuntimeDep) -> Response:
    uploads = runtime.uploads
    body = _Body(request)
    try:
        grant = await uploads.authenticate(request.headers.get("authorization"))
    except UploadError as exc:
        await body.drain(_REFUSED_DRAIN)
        return ReasonResponse(exc.status, exc.reason, headers=None if body.ended else _CLOSE)
    try:
        result = await uploads.upload(grant, body, request.headers.get("content-type"))
    except UploadError as exc:
        return ReasonResponse(exc.status, exc.reason, headers=None if body.ended else _CLOSE)
    except ClientDisconnect:
        runtime.metrics.uploads.labels("disconnected").inc()
        return Response(status_code=400, headers=_CLOSE)  # nobody reads it: the client is gone
    except Exception as exc:
        refusal = exc if isinstance(exc, PubtrailError) and exc.status_code == 503 else as_storage_full(exc)
        if refusal is None:
            raise
        # twine reads the reason from the status line, as for every other refusal
        headers = {**retry_after(refusal), **({} if body.ended else _CLOSE)}
        return ReasonResponse(503, f"Service Unavailable: {refusal.message}", headers=headers or None)
    return JSONResponse(result.to_json(), headers=None if body.ended else _CLOSE)


@router.api_route(
    "/legacy",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def legacy_without_slash(request: Request) -> Response:
    """308 keeps the method and body, so a client that follows it re-sends the upload.
    The Location is relative: the Host header must not choose where an upload goes."""
    location = request.scope.get("root_path", "") + "/legacy/"
    if request.url.query:
        location += "?" + request.url.query
    return RedirectResponse(location, status_code=308)


@router.get(HELP_PATH, summary="What an upload must satisfy, and why (linked from every refusal)",
            response_class=HTMLResponse)
async def upload_help() -> Response:
    return HTMLResponse(UPLOAD_HELP_HTML)
