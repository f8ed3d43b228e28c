"""Custom HTTP reason phrases under uvicorn (PyPI's legacy upload contract).

PyPI reports upload errors in the status line (``HTTP/1.1 400 File already
exists (...)``); twine prints ``response.reason`` and ``--skip-existing``
searches it for "already exist". ASGI has no field for the phrase and
uvicorn always writes the standard one, so:

- the app puts the phrase into the ``http.response.start`` message under the
  extension key :data:`REASON_KEY` (``"reason"``); :class:`ReasonResponse`
  does this for any Starlette/FastAPI response;
- :class:`ReasonH11Protocol` (``uvicorn.Config(http=ReasonH11Protocol)``)
  writes that phrase, sanitised to latin-1 without control characters, and
  the standard phrase when the key is absent or empty. It advertises
  support in ``scope["extensions"]["pubtrail.reason_phrase"]``.

How: uvicorn builds the ``h11.Response`` inside ``RequestResponseCycle.send``
from a module table; the narrowest hook is the per-connection
``h11.Connection``. The protocol wraps its connection in a proxy whose
``send`` swaps the reason of the next ``h11.Response``, and wraps its app so
the ``http.response.start`` message arms that proxy. HTTP/1.1 responses on
one connection are strictly sequential, so a per-connection slot is safe.
Other servers simply ignore the extra key (standard phrase, same status and
body).

Body choice: ``text/plain; charset=utf-8`` holding the same text (full
UTF-8, unsanitised apart from line breaks) plus a newline. PyPI sends an
HTML page; twine only shows the body in ``--verbose`` and also searches it
for "already exist", which plain text satisfies.
"""

from __future__ import annotations

from typing import Any

import h11
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.distributions.errors import sanitize_reason

__all__ = ["REASON_KEY", "EXTENSION", "ReasonH11Protocol", "ReasonResponse", "encode_reason"]

#: Key of the phrase in the ``http.response.start`` message.
REASON_KEY = "reason"
#: Scope extension announcing that the server honours :data:`REASON_KEY`.
EXTENSION = "pubtrail.reason_phrase"


def encode_reason(reason: str) -> bytes:
    """The phrase as status-line bytes: latin-1, no CR/LF/control
    characters (RFC 9112 ``reason-phrase``), non-latin-1 as ``?``."""
    return sanitize_reason(reason).encode("latin-1")


class ReasonResponse(Response):
    """A response whose status line carries ``reason``.

    ``content`` defaults to the reason itself as UTF-8 text; pass
    ``content``/``media_type`` to send something else (e.g. JSON).
    """

    def __init__(
        self,
        status_code: int,
        reason: str,
        content: Any = None,
        *,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.reason = reason
        if content is None:
            content = " ".join(reason.splitlines()) + "\n"
            media_type = media_type or "text/plain"
        super().__init__(content=content, status_code=status_code, headers=headers, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_reason(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, REASON_KEY: self.reason}
            await send(message)

        await super().__call__(scope, receive, send_with_reason)


class _ReasonConnection:
    """Proxy for uvicorn's ``h11.Connection`` that can override the reason of
    the next ``h11.Response`` it sends."""

    def __init__(self, conn: h11.Connection) -> None:
        self._conn = conn
        self.pending_reason: bytes | None = None

    def send(self, event: Any) -> bytes | None:
        reason, self.pending_reason = self.pending_reason, None
        if reason and type(event) is h11.Response:
            event = h11.Response(
                status_code=event.status_code,
                headers=event.headers.raw_items(),
                reason=reason,
                http_version=event.http_version,
            )
        return self._conn.send(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class ReasonH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, honouring ``message["reason"]``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conn = _ReasonConnection(self.conn)
        self.conn = conn  # type: ignore[assignment]
        inner_app = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner_app(scope, receive, send)
                return
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), EXTENSION: {}}}

            async def send_reason(message: Message) -> None:
                if message["type"] == "http.response.start":
                    raw = message.get(REASON_KEY)
                    conn.pending_reason = encode_reason(raw) if isinstance(raw, str) and raw.strip() else None
                    try:
                        await send(message)
                    finally:
                        conn.pending_reason = None
                else:
                    await send(message)

            await inner_app(scope, receive, send_reason)

        self.app = app
