"""HEAD on every GET route, and an ``Allow`` header that lists every method of a path.

FastAPI routes declared with ``@router.get`` answer HEAD with 405, and when
several routes share a path (``GET`` and ``POST`` of
``/api/v1/projects/{project}/publishers``) Starlette's 405 names only the
methods of the first route it tried. :class:`MethodsMiddleware` fixes both at
the edge:

- HEAD is run as GET and the body is dropped; the status and headers
  (``Content-Length`` included) are GET's. Routes that can skip producing the
  body look for :data:`HEAD_KEY` in the scope (see :class:`HeadAwareFileResponse`).
- a 405 gets ``Allow`` set to the union of the methods of every route whose
  path matches, with HEAD wherever GET is allowed.
"""

from __future__ import annotations

from typing import Callable, Iterable

from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEAD_KEY", "HeadAwareFileResponse", "MethodsMiddleware", "allowed_methods"]

#: Scope key set (True) when a GET is really a HEAD.
HEAD_KEY = "pubtrail.head"


#: The methods probed for ``Allow`` (HEAD follows GET).
PROBED_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route fully matches for the scope's path, sorted; HEAD wherever GET is.

    Asks each route itself (``route.matches``), so routers included with a
    prefix count too. A mount (static files) counts as GET only."""
    routes = list(routes)
    methods: set[str] = set()
    for method in PROBED_METHODS:
        probe = {**scope, "method": method}
        for route in routes:
            if isinstance(route, Mount):
                if method == "GET" and route.matches(probe)[0] is Match.FULL:
                    methods.add(method)
            elif route.matches(probe)[0] is Match.FULL:
                methods.add(method)
                break
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class MethodsMiddleware:
    """Pure ASGI: answers HEAD like GET without a body; completes ``Allow`` on 405s."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        inner_scope = {**scope, "method": "GET", HEAD_KEY: True} if head else scope

        async def fixed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(allowed_methods(self.routes(), scope)).encode()
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow)]}
            elif head and message["type"] == "http.response.body":
                if message.get("body"):
                    message = {**message, "body": b""}
            await send(message)

        await self.app(inner_scope, receive, fixed_send)


class HeadAwareFileResponse(FileResponse):
    """A FileResponse that sends only the headers when the request was a HEAD
    (so a HEAD on a large file does not read it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(HEAD_KEY):
            scope = {**scope, "method": "HEAD"}
        await super().__call__(scope, receive, send)
