"""Server-side monitors: watch rules whose matching entries are POSTed, signed,
to a webhook.

A monitor is operational state, not history: creating or deleting one is not
a log entry. It sees the entries logged after it was created (its scan cursor
starts at the latest checkpoint's size). The rule's `match` object takes the
fields of a watch rule (`app.watch`); deliveries are `app.services.deliveries`.

The signing secret (`whsec_...`) is in the answer to `create` only: listing
and reading a monitor never show it again, so it leaves the server once.
pubtrail keeps it in the database because it signs with it.

Webhook URLs: http or https, a host, no user name or password, at most 2,000
characters. A monitor makes pubtrail send requests from inside its network,
so an admin could aim one at an internal service (127.0.0.1, a cloud metadata
address): `allowed_hosts` (`PUBTRAIL_WEBHOOK_ALLOWED_HOSTS`) limits the hosts.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Callable
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, func, insert, select

from app.errors import BadRequest, NotFound
from app.storage.log_store import LogStore
from app.storage.tables import Monitor, WebhookDelivery
from app.watch import WatchRuleError, parse_rule
from app.webhooks import new_secret

MAX_URL = 2000
MAX_NAME = 200
_MONITOR_ID = re.compile(r"mon_[0-9a-f]{16}")
_monitors = Monitor.__table__
_deliveries = WebhookDelivery.__table__


def validate_webhook_url(url: Any, allowed_hosts: frozenset[str] = frozenset()) -> str:
    """`url` if it is an acceptable webhook target, else BadRequest saying why.

    `allowed_hosts` holds lower-case host names or `host:port`; empty allows any host.
    """
    if not isinstance(url, str) or not url:
        raise BadRequest("webhook_url must be a non-empty string")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise BadRequest(f"webhook_url must be at most {MAX_URL} characters without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"webhook_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("webhook_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise BadRequest("webhook_url names no host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("webhook_url must not carry a user name or password")
    if allowed_hosts:
        host = parts.hostname.lower()
        if host not in allowed_hosts and (port is None or f"{host}:{port}" not in allowed_hosts):
            raise BadRequest(f"webhook_url host {host!r} is not in PUBTRAIL_WEBHOOK_ALLOWED_HOSTS")
    return url


def parse_monitor(body: Any, allowed_hosts: frozenset[str] = frozenset()) -> tuple[str, dict, str]:
    """`(name, match, webhook_url)` from a request body, or BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    unknown = set(body) - {"name", "match", "webhook_url"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    name = body.get("name")
    if (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME} characters, "
                         "without control characters")
    match = body.get("match")
    if not isinstance(match, dict) or not match:
        raise BadRequest("match must be a non-empty object of watch-rule criteria")
    if "name" in match:
        raise BadRequest("match takes criteria only; the name is the monitor's")
    try:
        rule = parse_rule({"name": name, **match})
    except WatchRuleError as exc:
        raise BadRequest(f"match: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:  # a shape parse_rule did not expect
        raise BadRequest(f"match is not a valid watch rule: {exc}") from None
    criteria = rule.to_json()
    criteria.pop("name", None)
    return name, criteria, validate_webhook_url(body.get("webhook_url"), allowed_hosts)


class Monitors:
    """Create, list, read and delete monitors (admin API)."""

    def __init__(
        self,
        engine: Engine,
        store: LogStore,
        clock: Callable[[], float],
        allowed_hosts: frozenset[str] = frozenset(),
    ):
        self.engine = engine
        self.store = store
        self.clock = clock
        self.allowed_hosts = allowed_hosts

    def _log_size(self) -> int:
        checkpoint = self.store.checkpoint()  # from the database: another process may have appended
        return checkpoint.size if checkpoint is not None else 0

    def create(self, body: Any, admin: str) -> dict:
        """Store a monitor from `body`; the answer includes its `secret` (only here)."""
        name, match, url = parse_monitor(body, self.allowed_hosts)
        row = {
            "id": "mon_" + secrets.token_hex(8),
            "name": name,
            "match": json.dumps(match, sort_keys=True),
            "webhook_url": url,
            "secret": new_secret(),
            "created_at": int(self.clock()),
            "created_by": admin,
            "cursor": self._log_size(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(_monitors).values(**row))
        return {**_public(row), "secret": row["secret"]}

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_monitors).order_by(_monitors.c.created_at, _monitors.c.id)).mappings().all()
        return [_public(r) for r in rows]

    def get(self, monitor_id: str) -> dict:
        """The monitor with its delivery counts by status; NotFound if there is none."""
        _check_id(monitor_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(_monitors).where(_monitors.c.id == monitor_id)).mappings().first()
            if row is None:
                raise NotFound(f"no monitor {monitor_id!r}")
            counts = dict(
                conn.execute(
                    select(_deliveries.c.status, func.count())
                    .where(_deliveries.c.monitor_id == monitor_id)
                    .group_by(_deliveries.c.status)
                ).all()
            )
        return {**_public(row), "deliveries": {s: counts.get(s, 0) for s in ("pending", "delivered", "failed")}}

    def delete(self, monitor_id: str) -> None:
        """Delete the monitor and its deliveries (pending ones are never sent)."""
        _check_id(monitor_id)
        with self.engine.begin() as conn:
            gone = conn.execute(delete(_monitors).where(_monitors.c.id == monitor_id)).rowcount
            if not gone:
                raise NotFound(f"no monitor {monitor_id!r}")
            conn.execute(delete(_deliveries).where(_deliveries.c.monitor_id == monitor_id))


def _check_id(monitor_id: str) -> None:
    # never sent to the database otherwise: PostgreSQL refuses a NUL in text with an error
    if not _MONITOR_ID.fullmatch(monitor_id):
        raise NotFound(f"no monitor {monitor_id!r}")


def _public(row) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "match": json.loads(row["match"]),
        "webhook_url": row["webhook_url"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "next_index": row["cursor"],  # the next log index the monitor will look at
    }
