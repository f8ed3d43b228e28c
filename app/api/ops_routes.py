"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.api import openapi
from app.api.deps import RuntimeDep
from app.sequencer import LogHalted

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness and the log's size",
    responses=openapi.errors({503: "the self-audit found the stored log inconsistent: nothing is signed"}),
)
def healthz(runtime: RuntimeDep) -> dict:
    """503 with the reason while the log is halted (until `pubtrail audit` passes)."""
    reason = runtime.log.sequencer.halted()
    if reason is not None:
        raise LogHalted(f"the log is halted and signs nothing: {reason}")
    return {"status": "ok", "log_size": runtime.log.reader.latest().size}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: openapi.content(openapi.TEXT, "Prometheus text exposition format")},
)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
