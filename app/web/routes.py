"""The explorer's pages: log status, search, project, file, entry and blast radius.

Server-rendered HTML (Jinja2, `app/web/templates`) with plain JavaScript and
CSS from `/_/static/web/` (`app/web/static`); nothing is loaded from another
host. The pages show what the services answer, and the page's script
re-fetches the same answers from the JSON API and checks every log item it
shows against the signed checkpoint with the pinned verifier key (Web
Crypto: Ed25519, SHA-256), trusting the server for bytes only (`verify.js`).

Pages are HTML only and stay out of `/openapi.json` (the JSON API they use is
documented there). Bad input is an HTML page with the 4xx status, never a
500. Answers are gzip-encoded when the client accepts it, carry a strict
Content-Security-Policy (scripts and styles from this server only, fetches
to it only), and are revalidated on every use.
"""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.errors import BadRequest, NotFound, PubtrailError
from app.runtime import Runtime
from app.services import criteria as criteria_module
from app.services.blast_radius import BlastRadius
from app.web import data, views

router = APIRouter(include_in_schema=False)

STATIC_URL = "/_/static/web"
GZIP_MIN = 1024
PAGE_SIZE = 100  # blast-radius items per page
ACTIVITY_TTL = 60.0  # seconds the status page's chart counts are reused
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(files("app.web") / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals.update(
    forge_url=views.forge_url,
    commit_url=views.commit_url,
    static=STATIC_URL,
    version=__version__,
    criteria_names=criteria_module.NAMES,
)
_templates.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def install(app: FastAPI) -> None:
    """Serve the explorer's pages and its static files on `app`."""
    app.mount(STATIC_URL, StaticFiles(directory=str(files("app.web") / "static")), name="web-static")
    app.include_router(router)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """The page `template` rendered with the log's origin and key (gzip when accepted)."""
    runtime: Runtime = request.app.state.runtime
    reader = runtime.log.reader
    body = _templates.get_template(template).render(
        origin=reader.origin, verifier_key=reader.verifier_key, **context
    ).encode("utf-8")
    headers = {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-cache",
        "Vary": "Accept, Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if len(body) >= GZIP_MIN and "gzip" in (request.headers.get("accept-encoding") or "").lower():
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status_code, media_type="text/html; charset=utf-8", headers=headers)


def error_page(request: Request, exc: PubtrailError) -> Response:
    return render(request, "error.html", status_code=exc.status_code, title=f"{exc.status_code}", detail=str(exc))


# --- status ------------------------------------------------------------------------


def status_page(request: Request, endpoints: tuple[tuple[str, str], ...]) -> Response:
    """`GET /` for browsers: the log's status (see the status template)."""
    runtime: Runtime = request.app.state.runtime
    reader = runtime.log.reader
    latest = reader.latest()
    now = runtime.clock()
    start, width, counts = _activity(request, runtime, now, latest.size)
    witnessing = runtime.witnessing
    witnesses = [] if witnessing is None else [
        {"url": peer.spec.url, "key": peer.spec.key} for peer in getattr(witnessing, "peers", ())
        if hasattr(peer, "spec")
    ]
    return render(
        request,
        "status.html",
        title="Log status",
        latest=latest,
        age=views.human_age(now - latest.signed_at),
        signed_at=views.utc(latest.signed_at),
        witnesses=witnesses,
        witnesses_required=witnessing.required if witnessing is not None else 0,
        chart=views.bucket_chart(start, width, 30, counts),
        recent=data.recent_entries(runtime.engine, latest.size),
        endpoints=endpoints,
    )


def _activity(request: Request, runtime: Runtime, now: float, size: int) -> tuple[int, int, dict]:
    """The chart's counts, computed at most once a minute per app: counting every exchange
    and upload costs about 0.2 s of CPU at 200,000 entries, too much for each view of `/`."""
    cached = getattr(request.app.state, "web_activity", None)
    if cached is None or not cached[0] <= now < cached[0] + ACTIVITY_TTL:
        cached = (now, data.activity(runtime.engine, size))
        request.app.state.web_activity = cached
    return cached[1]


# --- search ------------------------------------------------------------------------


@router.get("/search")
def search(request: Request, q: str = "") -> Response:
    """Send the query to its page: file, entry, project or a repository's blast radius."""
    target = views.classify(q)
    if target.kind == "invalid":
        return error_page(request, BadRequest(target.value))
    location = views.search_location(target)
    if target.kind == "filename":
        runtime: Runtime = request.app.state.runtime
        sha256 = data.sha256_of_filename(runtime.engine, target.value)
        if sha256 is None:
            return error_page(request, NotFound(f"no uploaded file is named {target.value}"))
        location = f"/file/{sha256}"
    return RedirectResponse(location, status_code=303)


# --- project -----------------------------------------------------------------------


@router.get("/project/{project}")
def project_page(request: Request, project: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        answer = runtime.provenance.project(project)
    except (BadRequest, NotFound) as exc:
        return error_page(request, exc)
    legend, rows = views.project_table(answer["releases"])
    return render(
        request,
        "project.html",
        title=answer["project"],
        answer=answer,
        legend=legend,
        rows=rows,
        rows_html=Markup(views.file_rows_html(rows)),
        incidents=views.incidents_of(f for release in answer["releases"] for f in release["files"]),
        release_count=len(answer["releases"]),
    )


# --- file --------------------------------------------------------------------------


@router.get("/file/{sha256}")
def file_page(request: Request, sha256: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        answer = runtime.provenance.of_file(sha256)
    except (BadRequest, NotFound) as exc:
        return error_page(request, exc)
    upload = answer["upload"]["entry"]
    return render(
        request,
        "file.html",
        title=answer["filename"],
        answer=answer,
        upload=upload,
        auth=upload.get("auth") or "trusted_publishing",
        attestations=upload.get("attestations"),
    )


# --- entry -------------------------------------------------------------------------


@router.get("/entry/{index}")
def entry_page(request: Request, index: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    if not (index.isascii() and index.isdigit() and len(index) <= 18):
        return error_page(request, BadRequest("a log index is a non-negative decimal integer"))
    try:
        proven, latest = runtime.log.reader.entry(int(index))
    except (BadRequest, NotFound) as exc:
        return error_page(request, exc)
    item = proven.to_json()
    return render(
        request,
        "entry.html",
        title=f"Entry {item['index']}",
        item=item,
        latest=latest,
        summary=data.summary(item["kind"], item["entry"] or {}),
    )


# --- blast radius ------------------------------------------------------------------


@router.get("/blast-radius")
def blast_radius_page(request: Request) -> Response:
    """The form; with criteria, one page of the answer grouped by project and version."""
    runtime: Runtime = request.app.state.runtime
    given = [(name, value) for name, value in request.query_params.multi_items() if value.strip()]
    form = {name: value for name, value in given if name in criteria_module.NAMES}
    cursor = next((value for name, value in given if name == "cursor"), None)
    if not given:
        return render(request, "blast_radius.html", title="Blast radius", form={}, answer=None)
    try:
        criteria = criteria_module.from_query([(n, v.strip()) for n, v in given], ignore=("cursor",))
        answer = BlastRadius(runtime.engine, runtime.log.reader, runtime.clock).answer(
            criteria, limit=PAGE_SIZE, cursor=cursor
        )
    except BadRequest as exc:
        return render(request, "blast_radius.html", status_code=400, title="Blast radius", form=form,
                      answer=None, problem=str(exc))
    uploads = answer["uploads"]
    projects = sorted({item["project"] for item in uploads})
    dots, first, last = views.timeline(uploads, projects)
    query = views.blast_query(answer["criteria"])
    return render(
        request,
        "blast_radius.html",
        title="Blast radius",
        form=form,
        answer=answer,
        projects=projects,
        dots=dots,
        timeline_first=first,
        timeline_last=last,
        timeline_height=30 + 20 * max(len(projects), 1),
        csv_query=query,
        api_query=views.blast_query(answer["criteria"], limit=str(PAGE_SIZE), cursor=cursor),
        next_query=views.blast_query(answer["criteria"], cursor=answer["next_cursor"]) if answer["next_cursor"] else None,
        criteria_json=json.dumps(answer["criteria"], sort_keys=True).replace("<", "\\u003c"),
    )
