"""PyPI's Integrity API (PEP 740): ``GET /integrity/{project}/{version}/{filename}/provenance``.

As PyPI answers it (warehouse ``api/integrity.py``): the provenance object
``{"attestation_bundles": [{"attestations": [...], "publisher": {"kind", ...}}],
"version": 1}`` as ``application/vnd.pypi.integrity.v1+json`` (or
``application/json`` when Accept prefers it; that type when no Accept header),
``Vary: Accept``; 404 ``{"message": "No provenance available for FILE"}`` for a
file without attestations; 406 ``{"message": "Request not acceptable"}`` when
Accept names neither type. The body is canonical JSON built from the stored
attestations (`app.services.integrity`), each byte for byte as uploaded in its
canonical form. A file's attestations never change, so the answer is cacheable.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api import openapi
from app.api.deps import RuntimeDep
from app.distributions.simple import NotAcceptable, negotiate
from app.services.integrity import NoProvenance, provenance_document

router = APIRouter(tags=["pypi"])

INTEGRITY_V1 = "application/vnd.pypi.integrity.v1+json"
_OFFERS = (INTEGRITY_V1, openapi.JSON)  # PyPI's preference
_CACHE = "public, max-age=600"  # PyPI's 10 minutes (a file's attestations never change once stored)
_MESSAGE = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}


def choose_integrity_format(accept: str | None) -> str:
    """The media type to answer for an Accept header: PyPI's integrity type unless
    Accept prefers ``application/json``; :class:`NotAcceptable` when it allows neither."""
    if accept is None or not accept.strip():
        return INTEGRITY_V1
    return negotiate(accept, _OFFERS)


@router.get(
    "/integrity/{project}/{version}/{filename}/provenance",
    summary="A file's PEP 740 provenance object (PyPI's Integrity API)",
    description="The attestations uploaded with the file and verified at upload, in one bundle with the "
    "trusted publisher identity they were verified against (`kind`: GitHub, GitLab or Google). Each attestation "
    "hashes (SHA-256 of its RFC 8785 JSON) to a digest in the file's `upload` log entry.",
    response_class=Response,
    responses={
        200: openapi.content(INTEGRITY_V1, "the provenance object", also=(openapi.JSON,),
                             headers={"Vary": openapi.header("`Accept`")}),
        404: openapi.content(openapi.JSON, "no such file in that release, or the file has no attestations",
                             schema=_MESSAGE),
        406: openapi.content(openapi.JSON, "Accept names neither the integrity type nor application/json",
                             schema=_MESSAGE),
        **openapi.INTEGRITY_FAILURE,
    },
)
def provenance(project: str, version: str, filename: str, request: Request, runtime: RuntimeDep) -> Response:
    try:
        media_type = choose_integrity_format(request.headers.get("accept"))
    except NotAcceptable:
        return JSONResponse({"message": "Request not acceptable"}, status_code=406, headers={"Vary": "Accept"})
    try:
        body = provenance_document(runtime.engine, project, version, filename)
    except NoProvenance as exc:
        return JSONResponse({"message": exc.message}, status_code=404, headers={"Vary": "Accept"})
    return Response(body, media_type=media_type, headers={"Vary": "Accept", "Cache-Control": _CACHE})
