"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.api import openapi
from app.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and the log's size")
def healthz(runtime: RuntimeDep) -> dict:
    return {"status": "ok", "log_size": runtime.log.reader.latest().size}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: openapi.content(openapi.TEXT, "Prometheus text exposition format")},
)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
