"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and the log's size")
def healthz(runtime: RuntimeDep) -> dict:
    return {"status": "ok", "log_size": runtime.log.reader.latest().size}


@router.get("/metrics", summary="Prometheus metrics")
def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
