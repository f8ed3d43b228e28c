"""One request-body limit for the whole app: a pure ASGI middleware.

Every request gets a byte budget from its method and path (:class:`BodyBudgets`):

- ``POST /_/oidc/mint-token``: 64 KiB; over it the answer is PyPI's 422
  ``invalid-payload`` shape, which twine and the publish action print;
- the admin API (``/api/v1/...`` with a body-carrying method): 64 KiB,
  answered ``413 {"detail": ...}``;
- ``/legacy/`` (uploads): no budget here, the upload path enforces its own
  streaming limit (``PUBTRAIL_MAX_UPLOAD_SIZE``);
- everything else: a small budget (no other route reads a body).

A ``Content-Length`` over the budget is refused before any of the body is
read. A chunked body is counted as it arrives and refused as soon as it
passes the budget. A body chunk that does not arrive within the chunk
timeout ends the request with 408 (uploads included: the timeout is per
chunk, not for the whole body). Refusals carry ``Connection: close``, so the
server stops reading the rest of the body.

How a refusal reaches the route: the middleware sends the answer itself,
then hands the route ``http.disconnect`` (Starlette raises
``ClientDisconnect``) and drops whatever the route still sends; an exception
the route raises because of that is swallowed. The route therefore never
sees more than its budget, whatever it does with the body.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyBudgets", "BodyLimitMiddleware", "MINT_TOKEN_BUDGET", "ADMIN_BUDGET", "DEFAULT_BUDGET"]

MINT_TOKEN_PATH = "/_/oidc/mint-token"
MINT_TOKEN_BUDGET = 64 * 1024
ADMIN_BUDGET = 64 * 1024
DEFAULT_BUDGET = 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Budget:
    """How many body bytes a request may send, and how an overrun is answered:
    ``style`` is ``"json"`` (413 ``{"detail": ...}``) or ``"pypi"`` (PyPI's
    422 token-request failure). ``limit`` None means unlimited here."""

    limit: int | None
    style: str = "json"


@dataclass(frozen=True)
class BodyBudgets:
    """The per-route budgets; :meth:`for_request` picks one."""

    mint_token: int = MINT_TOKEN_BUDGET
    admin: int = ADMIN_BUDGET
    default: int = DEFAULT_BUDGET

    def for_request(self, method: str, path: str) -> Budget:
        if path == "/legacy/" or path == "/legacy":
            return Budget(None)
        if path == MINT_TOKEN_PATH:
            return Budget(self.mint_token, "pypi")
        if path.startswith("/api/v1/") and method in _BODY_METHODS:
            return Budget(self.admin)
        return Budget(self.default)


class BodyLimitMiddleware:
    """Enforces :class:`BodyBudgets` and a per-chunk idle timeout.

    ``chunk_timeout`` is in seconds (None: no timeout); ``on_refuse(reason)``
    is called once per refused request with ``"too_large"`` or ``"timeout"``
    (for metrics).
    """

    def __init__(
        self,
        app: ASGIApp,
        budgets: BodyBudgets = BodyBudgets(),
        chunk_timeout: float | None = 30.0,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.budgets = budgets
        self.chunk_timeout = chunk_timeout
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = self.budgets.for_request(scope["method"], scope["path"])
        declared = _content_length(scope)
        if budget.limit is not None and declared is not None and declared > budget.limit:
            await self._refuse(send, budget, 413, "too_large")
            return

        state = _State()
        limit = budget.limit
        timeout = self.chunk_timeout

        async def limited_receive() -> Message:
            if state.refused:
                return {"type": "http.disconnect"}
            if state.body_done:
                return await receive()
            try:
                if timeout is None:
                    message = await receive()
                else:
                    async with asyncio.timeout(timeout):  # no task per chunk, unlike wait_for
                        message = await receive()
            except asyncio.TimeoutError:
                await self._refuse_inside(state, send, budget, 408, "timeout")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if limit is not None and state.received > limit:
                    await self._refuse_inside(state, send, budget, 413, "too_large")
                    return {"type": "http.disconnect"}
                if not message.get("more_body", False):
                    state.body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            if state.refused:
                return
            if message["type"] == "http.response.start":
                state.response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state.refused:
                raise

    async def _refuse_inside(self, state: "_State", send: Send, budget: Budget, status: int, reason: str) -> None:
        state.refused = True
        if not state.response_started:
            await self._refuse(send, budget, status, reason)
        elif self.on_refuse is not None:
            self.on_refuse(reason)

    async def _refuse(self, send: Send, budget: Budget, status: int, reason: str) -> None:
        if self.on_refuse is not None:
            self.on_refuse(reason)
        if reason == "timeout":
            body = {"detail": "the request body stalled: no data within the server's chunk timeout"}
        elif budget.style == "pypi":
            status = 422
            body = {
                "message": "Token request failed",
                "errors": [{"code": "invalid-payload", "description": "the request body is too large"}],
            }
        else:
            body = {"detail": f"the request body is larger than this route accepts ({budget.limit} bytes)"}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class _State:
    __slots__ = ("received", "body_done", "refused", "response_started")

    def __init__(self) -> None:
        self.received = 0
        self.body_done = False
        self.refused = False
        self.response_started = False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
