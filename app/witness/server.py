"""The witness's HTTP face: ``POST /add-checkpoint`` (C2SP tlog-witness), nothing else.

Bodies are read up to :data:`~app.witness.protocol.MAX_BODY` bytes; the check
and the state update run in a worker thread (SQLite blocks).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .protocol import MAX_BODY, Witness


def make_app(witness: Witness) -> Starlette:
    """An ASGI app answering add-checkpoint requests for ``witness``."""

    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return Response(f"body larger than {MAX_BODY} bytes\n", 400, media_type="text/plain")
        answer = await run_in_threadpool(witness.add_checkpoint, bytes(body))
        return Response(answer.body, answer.status, headers={"Content-Type": answer.content_type})

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])
