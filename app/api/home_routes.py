"""The front page (``GET /``) and the API documentation pages, served without any CDN.

``/`` names the log (origin, size, verifier key) and the main endpoints: the
explorer's log status page (``app.web``), or JSON when the client's
``Accept`` prefers ``application/json``. ``/docs`` (Swagger UI) and ``/redoc`` load their
scripts and styles from ``/_/static/docs/`` (the files of the
``fastapi-offline`` package), so they work on an air-gapped site.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api import openapi
from app.api.deps import ReaderDep
from app.web.routes import status_page

router = APIRouter()

STATIC_URL = "/_/static/docs"

#: (path, what it is), in the order the front page lists them
ENDPOINTS = (
    ("/checkpoint", "latest signed checkpoint (C2SP signed note)"),
    ("/tile/{L}/{N}[.p/{W}]", "tlog-tiles hash tiles; /tile/entries/{N}[.p/{W}] entry bundles"),
    ("/api/v1/log", "origin, size, root hash, checkpoint and verifier key (JSON)"),
    ("/api/v1/log/entries/{index}", "one entry with its inclusion proof"),
    ("/api/v1/log/proof/inclusion", "inclusion proof by index or leaf hash"),
    ("/api/v1/log/proof/consistency", "consistency proof between two sizes"),
    ("/simple/", "PyPI simple index (PEP 503 / PEP 691)"),
    ("/legacy/", "uploads (twine)"),
    ("/_/oidc/mint-token", "trusted publishing: OIDC token for an upload token"),
    ("/docs", "OpenAPI documentation"),
)


def prefers_json(accept: str | None) -> bool:
    """True when ``Accept`` ranks application/json above text/html."""
    best: dict[str, float] = {"json": -1.0, "html": -1.0}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        for kind, names in (("json", ("application/json", "application/*")), ("html", ("text/html", "text/*"))):
            if media in names or media == "*/*":
                best[kind] = max(best[kind], q - (0.001 if media.endswith("*") else 0))
    return best["json"] > best["html"] and best["json"] > 0


@router.get(
    "/",
    summary="The log's name, size and verifier key, and the main endpoints",
    response_class=HTMLResponse,
    responses={
        200: openapi.content(
            "text/html",
            "an HTML page, or JSON when Accept prefers application/json",
            also=("application/json",),
            headers={"Vary": openapi.header("`Accept`")},
        )
    },
)
def home(request: Request, reader: ReaderDep) -> Response:
    latest = reader.latest()
    info = {
        "name": "pubtrail",
        "origin": reader.origin,
        "size": latest.size,
        "verifier_key": reader.verifier_key,
        "endpoints": {path: what for path, what in ENDPOINTS},
    }
    headers = {"Vary": "Accept", "Cache-Control": "no-cache"}
    if prefers_json(request.headers.get("accept")):
        return JSONResponse(info, headers=headers)
    return status_page(request, ENDPOINTS)


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local assets (create the app with docs_url=None, redoc_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            # no request to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
