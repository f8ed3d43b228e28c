"""A small client of pubtrail's admin API for the CLI: one bearer-authenticated JSON request at a time."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from app.cli.errors import FAILED, CliError
from app.config import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"


def default_url() -> str:
    """The server the CLI talks to: PUBTRAIL_URL, else pubtrail serve's default address."""
    return os.environ.get("PUBTRAIL_URL") or DEFAULT_URL


def segment(value: str) -> str:
    """``value`` as one URL path segment (a '/' in a project name stays inside it)."""
    return quote(value, safe="")


class AdminClient:
    """Requests to ``url`` with the admin token of PUBTRAIL_ADMIN_TOKEN; every failure is a CliError."""

    def __init__(self, url: str, token: str | None = None) -> None:
        token = token or os.environ.get("PUBTRAIL_ADMIN_TOKEN")
        if not token:
            raise ConfigError("set PUBTRAIL_ADMIN_TOKEN to the service's admin token")
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: dict | None = None) -> Any:
        """Send the request; return the JSON answer of a 2xx, raise CliError on anything else."""
        return json_request(method, self.url + path, json=body, headers=self._headers)


def json_request(method: str, url: str, **kwargs: Any) -> Any:
    """One HTTP request whose answer must be JSON; unreachable servers, non-2xx answers and non-JSON
    bodies raise CliError (exit status 1) with the server's `detail` when it gives one."""
    import httpx

    try:
        response = httpx.request(method, url, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        base = httpx.URL(url).copy_with(path="/", query=None)
        raise CliError(
            f"cannot reach {str(base).rstrip('/')}: {exc or type(exc).__name__} "
            "(is pubtrail serve running there? set --url or PUBTRAIL_URL)",
            FAILED,
        ) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not response.is_success:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        detail = detail if isinstance(detail, str) else response.text.strip()[:200] or "no detail"
        raise CliError(f"{response.status_code} {response.reason_phrase}: {detail}", FAILED)
    if answer is None:
        raise CliError(f"{url} answered {response.status_code} without JSON: is it a pubtrail server?", FAILED)
    return answer
