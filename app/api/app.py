"""The FastAPI application, assembled from a Runtime."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import (
    admin_routes,
    blast_radius_routes,
    cosignature_routes,
    incidents_routes,
    integrity_routes,
    monitors_routes,
    home_routes,
    legacy_routes,
    log_routes,
    oidc_routes,
    openapi,
    ops_routes,
    provenance_routes,
    simple_routes,
)
from app.api.body_limit import BodyLimitMiddleware
from app.api.errors import install_error_handlers
from app.api.methods import MethodsMiddleware
from app.runtime import Runtime
from app.web import routes as web_routes


def create_app(runtime: Runtime, *, jobs: bool = False) -> FastAPI:
    """An app serving `runtime`; its lifespan starts and stops the sequencer
    and, with `jobs`, the periodic jobs of app.jobs.

    Every request first passes the body limits and chunk timeout of
    app.api.body_limit, and HEAD/Allow handling of app.api.methods."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await runtime.start()
        scheduler = None
        if jobs:
            from app.jobs import start_scheduler

            scheduler = start_scheduler(runtime)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await runtime.stop()

    app = FastAPI(
        title="pubtrail",
        version=__version__,
        description="Trusted-publishing front and RFC 9162 transparency log for Python package indexes.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    refusals = runtime.metrics.http_refusals
    app.add_middleware(
        BodyLimitMiddleware,
        chunk_timeout=runtime.settings.body_chunk_timeout or None,
        on_refuse=lambda reason: refusals.labels(reason).inc(),
    )
    app.add_middleware(MethodsMiddleware, routes=lambda: app.routes)
    home_routes.install_docs(app)
    app.include_router(home_routes.router)
    web_routes.install(app)  # the explorer's HTML pages and their static files (app/web)
    app.include_router(log_routes.router)
    if prefix := log_routes.origin_path(runtime.settings.origin):
        # tlog-tiles clients find the log at https://<origin>/: its read paths live there too
        app.include_router(log_routes.read_router, prefix=prefix, include_in_schema=False)
    app.include_router(oidc_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(provenance_routes.router)  # after admin: /projects/{p}/publishers is the admin's
    app.include_router(ops_routes.router)
    app.include_router(legacy_routes.router)
    app.include_router(simple_routes.router)
    app.include_router(integrity_routes.router)
    app.include_router(blast_radius_routes.router)
    app.include_router(incidents_routes.router)
    app.include_router(monitors_routes.router)
    app.include_router(cosignature_routes.router)
    openapi.install(app)
    return app


def app_from_env() -> FastAPI:
    """App factory for `pubtrail serve --workers N`: each worker process builds
    its own runtime from the environment (uvicorn imports this by name)."""
    from app.config import Settings
    from app.runtime import build_runtime

    settings = Settings.from_env()
    settings.check_secrets()
    return create_app(build_runtime(settings), jobs=True)
