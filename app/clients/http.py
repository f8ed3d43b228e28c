"""`Server`: GET requests to one pubtrail's public API, with clear errors.

A server is trusted for nothing but bytes: this module only turns transport
failures and unusable answers into :mod:`app.clients.errors`; what an answer
says is checked by the verifying modules.
"""

from __future__ import annotations

from typing import Any

import httpx

from .errors import MalformedAnswer, NotFoundAnswer, RefusedAnswer, Unreachable

DEFAULT_TIMEOUT = 30.0


class Server:
    """A pubtrail at ``url`` (``http(s)://host[:port][/prefix]``).

    ``timeout`` bounds connecting and each read, in seconds. ``transport``
    replaces the network (tests pass an ``httpx.MockTransport``).
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        try:
            parsed = httpx.URL(self.url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise Unreachable(f"{url!r} is not a URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise Unreachable(f"{url!r} is not an http:// or https:// URL")
        self._client = httpx.Client(timeout=timeout, transport=transport, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any] | None = None, *, accept: str = "application/json") -> httpx.Response:
        """GET ``path``; return a 2xx response or raise Unreachable, NotFoundAnswer (404) or RefusedAnswer."""
        url = self.url + path
        try:
            response = self._client.get(url, params=params, headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {self.url}: {exc or type(exc).__name__}") from exc
        if response.is_success:
            return response
        detail = _detail(response)
        if response.status_code == 404:
            raise NotFoundAnswer(f"{self.url} answered 404 for {path}: {detail}")
        raise RefusedAnswer(f"{self.url} answered {response.status_code} for {path}: {detail}", response.status_code)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` and return its JSON body; a body that is not JSON raises MalformedAnswer."""
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedAnswer(
                f"{self.url}{path} answered {response.status_code} without JSON: is it a pubtrail server?"
            ) from exc


def _detail(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    detail = answer.get("detail") if isinstance(answer, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    return response.text.strip()[:200] or response.reason_phrase or "no detail"
