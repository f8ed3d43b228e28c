"""The simple repository API (PEP 503 HTML, PEP 691 JSON) and the files it links to.

``/simple/`` and ``/simple/{project}/`` answer in the format the Accept
header asks for (``choose_simple_format``; 406 if none fits), with
``Vary: Accept``. A project name that is not normalized, or a URL without
its trailing slash, is redirected (301) to the normalized URL, as PyPI does;
a name that cannot be a project name (PEP 508) is 404 without a redirect,
so a Location never carries characters a client would re-encode into a loop.
Files live at ``/files/{sha256}/{filename}``: content-addressed, so cached
forever.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from app.api import openapi
from app.api.deps import RuntimeDep
from app.api.methods import HeadAwareFileResponse
from app.distributions.simple import (
    HTML_V1,
    JSON_V1,
    TEXT_HTML,
    NotAcceptable,
    choose_simple_format,
    render_index,
    render_project,
)
from app.distributions.errors import UploadError
from app.distributions.validate import normalize_project_name, validate_project_name
from app.errors import NotFound

router = APIRouter(tags=["pypi"])

IMMUTABLE = "public, max-age=31536000, immutable"

_VARY = {"Vary": openapi.header("`Accept`: the format follows the Accept header")}
_NEGOTIATED = {
    200: openapi.content(TEXT_HTML, "PEP 503 HTML, or PEP 691 JSON, as Accept asks", also=(HTML_V1, JSON_V1),
                         headers=_VARY),
    406: openapi.content(openapi.TEXT, "Accept names neither PEP 503 HTML nor PEP 691 JSON"),
}


def _negotiated(request: Request, render) -> Response:
    try:
        fmt = choose_simple_format(request.headers.get("accept"))
    except NotAcceptable:
        return PlainTextResponse("Not Acceptable: the simple API serves PEP 503 HTML and PEP 691 JSON.\n", 406)
    return Response(render(fmt), media_type=fmt, headers={"Vary": "Accept"})


def _check_name(project: str) -> None:
    try:
        validate_project_name(project)
    except UploadError:
        raise NotFound(f"no project named {project[:100]!r}: not a valid project name") from None


@router.get("/simple", include_in_schema=False)
def simple_index_without_slash() -> Response:
    return RedirectResponse("/simple/", status_code=301)


@router.get("/simple/", summary="Every project (PEP 503 / PEP 691)", response_class=Response, responses=_NEGOTIATED)
def simple_index(request: Request, runtime: RuntimeDep) -> Response:
    names = runtime.uploads.project_names()
    return _negotiated(request, lambda fmt: render_index(names, fmt))


@router.get("/simple/{project}", include_in_schema=False)
def simple_project_without_slash(project: str) -> Response:
    _check_name(project)
    return RedirectResponse(f"/simple/{normalize_project_name(project)}/", status_code=301)


@router.get(
    "/simple/{project}/",
    summary="A project's files (PEP 503 / PEP 691)",
    response_class=Response,
    responses={
        **_NEGOTIATED,
        301: {
            "description": "the name is not normalized: the normalized URL",
            "headers": {"Location": openapi.header("`/simple/<normalized name>/`")},
        },
        **openapi.errors({404: "no such project, or not a valid project name"}),
    },
)
def simple_project(project: str, request: Request, runtime: RuntimeDep) -> Response:
    _check_name(project)
    normalized = normalize_project_name(project)
    if project != normalized:
        return RedirectResponse(f"/simple/{normalized}/", status_code=301)
    files = runtime.uploads.project_files(normalized)
    if files is None:
        raise NotFound(f"no project named {normalized!r}")
    return _negotiated(request, lambda fmt: render_project(normalized, files, fmt))


@router.get(
    "/files/{sha256}/{filename}",
    summary="A distribution file, by its SHA-256 and filename",
    response_class=Response,
    responses={
        200: openapi.content(openapi.OCTET_STREAM, "the file", schema={"type": "string", "format": "binary"},
                             headers={"Cache-Control": openapi.header("cached forever: content-addressed")}),
        **openapi.errors({404: "no file of that name with that SHA-256"}),
    },
)
def download(sha256: str, filename: str, runtime: RuntimeDep) -> Response:
    path = runtime.uploads.stored_file(sha256, filename)
    if path is None:
        raise NotFound(f"no file {filename!r} with sha256 {sha256}")
    return HeadAwareFileResponse(path, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
