"""How pubtrail is served: uvicorn's options, a header timeout, a redacted access log.

:func:`uvicorn_options` turns :class:`~app.config.Settings` into keyword
arguments for ``uvicorn.run`` / ``uvicorn.Config``:

- ``http``: :class:`TimeoutH11Protocol` (PyPI's reason phrases, plus a
  deadline for the request head, ``PUBTRAIL_HEADER_TIMEOUT``), bound with
  ``functools.partial`` so that it pickles into ``--workers`` processes;
- ``limit_concurrency`` (``PUBTRAIL_LIMIT_CONCURRENCY``): connections plus
  running requests per process before uvicorn answers 503;
- ``timeout_keep_alive`` (``PUBTRAIL_KEEP_ALIVE_TIMEOUT``): idle keep-alive
  connections are closed after this many seconds;
- ``log_config``: uvicorn's own, with :class:`RedactQueryFilter` on the access
  log so that query strings (where a careless client might put a secret)
  never reach the log; the path is kept.

The body side (a per-chunk idle timeout, size budgets) is enforced inside the
app by :mod:`app.api.body_limit`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from typing import Any

import h11
from uvicorn.config import LOGGING_CONFIG

from app.api.reason_phrase import ReasonH11Protocol
from app.config import Settings

__all__ = ["RedactQueryFilter", "TimeoutH11Protocol", "redact_query", "uvicorn_options"]

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nthe request head took too long: 408\n"
)


def redact_query(target: str) -> str:
    """``/path?secret`` -> ``/path?[redacted]``; a target without a query is unchanged."""
    path, sep, _query = target.partition("?")
    return f"{path}?[redacted]" if sep else path


class RedactQueryFilter(logging.Filter):
    """On uvicorn's access logger: replaces the query string of the logged
    request target (the third argument of uvicorn's access record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


class TimeoutH11Protocol(ReasonH11Protocol):
    """:class:`ReasonH11Protocol` with a deadline for the request head.

    uvicorn times out only idle keep-alive connections *between* requests; a
    connection that sends nothing, or sends a request head a byte at a time,
    is held forever. Here the head must be complete within
    ``header_timeout`` seconds, counted from the connection's start or from
    the first byte of a keep-alive connection's next request. When it is
    not, a head that had started gets a 408 and the connection is closed.
    """

    def __init__(self, *args: Any, header_timeout: float | None = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
            # waiting for (the rest of) a request head
            self._head_bytes = True
            if self._head_timer is None:
                self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self.header_timeout is not None and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_bytes = False

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return
        if self._head_bytes:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQueryFilter}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query"]
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (add ``host``, ``port``, ``workers``)."""
    return {
        "http": functools.partial(TimeoutH11Protocol, header_timeout=settings.header_timeout or None),
        "limit_concurrency": settings.limit_concurrency or None,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "log_config": _log_config(),
        "log_level": "info",
    }
