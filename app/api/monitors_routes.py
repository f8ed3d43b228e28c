"""Server-side monitors (admin): watch rules whose matching entries are POSTed,
signed with Standard Webhooks, to a webhook URL. Not log entries."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.api import openapi
from app.api.admin_routes import AdminDep, _json_body, _json_object_body
from app.api.deps import RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["monitors"], responses=openapi.ADMIN_REFUSALS)

_EXAMPLE = {
    "name": "demo-project published by anyone but its release workflow",
    "match": {
        "project": "demo-project",
        "unexpected_publisher": [{"repository": "me/demo", "workflow": "release.yml"}],
    },
    "webhook_url": "https://hooks.example.com/pubtrail",
}
_NOT_FOUND = openapi.errors({404: "no such monitor"})


@router.post(
    "/monitors",
    status_code=201,
    summary="Create a monitor: entries matching its rule are POSTed to its webhook",
    description="Body `{name, match, webhook_url}`. `match` takes the criteria of a watch rule "
    "(`kind`, `project`, `issuer`, `repository`, `repository_owner_id`, `workflow`, `environment`, `kid`, "
    "each a string or a list of strings, and `unexpected_publisher`: a list of allowed publishers). "
    "The monitor sees entries logged after it is created. Each matching entry is delivered at least "
    "once as a Standard Webhooks POST (`webhook-id` is the event id, the same on every retry) whose "
    "body is `{type: \"entry.matched\", timestamp, data: {rule, entry, checkpoint}}`. `webhook_url` must "
    "be http(s) and, when `PUBTRAIL_WEBHOOK_ALLOWED_HOSTS` is set, name one of those hosts. The answer "
    "carries the signing `secret` (`whsec_...`): this is the only time it is shown.",
    openapi_extra=_json_object_body(_EXAMPLE, required=True),
    responses={
        **openapi.errors({400: "the body is not JSON, or not a valid name, match or webhook URL"}),
        **openapi.BODY_REFUSALS,
    },
)
async def create_monitor(request: Request, runtime: RuntimeDep, admin: AdminDep) -> dict:
    body = await _json_body(request, required=True)
    return await run_in_threadpool(runtime.monitors.create, body, admin)


@router.get(
    "/monitors",
    summary="List monitors (without their secrets)",
)
def list_monitors(runtime: RuntimeDep, _admin: AdminDep) -> dict:
    return {"monitors": runtime.monitors.list()}


@router.get(
    "/monitors/{monitor_id}",
    summary="One monitor (without its secret) and its deliveries by status",
    responses=_NOT_FOUND,
)
def show_monitor(monitor_id: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    return runtime.monitors.get(monitor_id)


@router.delete(
    "/monitors/{monitor_id}",
    summary="Delete a monitor and its deliveries (pending ones are not sent)",
    responses=_NOT_FOUND,
)
def delete_monitor(monitor_id: str, runtime: RuntimeDep, _admin: AdminDep) -> dict:
    runtime.monitors.delete(monitor_id)
    return {"deleted": monitor_id}
