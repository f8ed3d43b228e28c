"""Long-lived API tokens of one project, and per-project settings: every change a log entry.

An API token is what a project uses when it cannot use trusted publishing
(PyPI's project-scoped tokens): twine sends it as the password of the user
``__token__``. Wire format ``pubtrail-api-v1.<id>.<secret>``: the prefix
tells it from a short-lived upload token (``pubtrail-v1.``) at a glance and
to secret scanners; the id is 16 hex digits (public: it is in the log), the
secret 32 random bytes in URL-safe base64. Only SHA-256 of the secret is
stored (the secret is high-entropy, so a fast hash suffices) and compared in
constant time; the secret is shown once, in the answer that creates it.

Creating and revoking are `api_token` entries (action, project, token id,
description, actor); their projection writes the `api_token` row in the
entry's own transaction, so once a revocation's receipt exists the token
authorises nothing. Every upload made with a token is an `upload` entry
with ``auth: api_token`` and the token's id.

A project can be set to take trusted-publishing uploads only
(`project_settings` entry, ``trusted_publishing_only``): API-token uploads
to it are refused with 403 and a reason that says so, checked when the token
is presented and again under the log's write lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import Connection

from app.entries import API_TOKEN, ApiTokenEntry, ProjectSettingsEntry, parse_rfc3339, rfc3339
from app.errors import BadRequest, NotFound
from app.sequencer import Receipt
from app.services.log import Log
from app.services.publishers import _known_project, project_name
from app.storage.tables import ApiToken, ProjectSetting

PREFIX = "pubtrail-api-v1"
MAX_DESCRIPTION = 200

_tokens = ApiToken.__table__
_settings = ProjectSetting.__table__
_BY_ID = select(_tokens).where(_tokens.c.id == bindparam("id"))
_TP_ONLY = select(_settings.c.trusted_publishing_only).where(_settings.c.project == bindparam("project"))


class ApiTokenRejected(Exception):
    """The API token cannot authorise an upload; the message says why (safe to show)."""


@dataclass(frozen=True)
class ApiTokenGrant:
    """What an authenticated API token allows: uploads to its one project.

    Shaped like `app.services.upload_tokens.TokenGrant` (``token_id``,
    ``projects``, ``exchange_log_index``, ``auth``) so the upload path reads both."""

    token_id: str
    project: str
    description: str
    created_at: int
    auth: str = API_TOKEN
    exchange_log_index: None = None

    @property
    def projects(self) -> tuple[str, ...]:
        return (self.project,)


@dataclass(frozen=True)
class ApiTokenInfo:
    """An API token as the admin API lists it (never its secret)."""

    id: str
    project: str
    description: str
    created_at: int
    created_by: str
    created_log_index: int
    revoked_at: int | None
    revoked_by: str | None
    revoked_log_index: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "description": self.description,
            "created_at": rfc3339(self.created_at),
            "created_by": self.created_by,
            "created_log_index": self.created_log_index,
            "revoked_at": None if self.revoked_at is None else rfc3339(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoked_log_index": self.revoked_log_index,
        }


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _info(row: Any) -> ApiTokenInfo:
    return ApiTokenInfo(
        row.id, row.project, row.description, row.created_at, row.created_by, row.created_log_index,
        row.revoked_at, row.revoked_by, row.revoked_log_index,
    )


def parse_description(value: Any) -> str:
    """A token's description: 1 to MAX_DESCRIPTION printable characters; BadRequest otherwise."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DESCRIPTION or not value.isprintable():
        raise BadRequest(f'"description" must be a non-empty printable string of at most {MAX_DESCRIPTION} characters')
    return value


def api_token_row(index: int, entry: ApiTokenEntry, secret_hash: bytes = b"") -> dict[str, Any]:
    """The `api_token` row a create entry implies (before any revocation)."""
    return {
        "id": entry.token_id, "project": entry.project, "description": entry.description,
        "secret_hash": secret_hash, "created_at": parse_rfc3339(entry.time), "created_by": entry.actor,
        "created_log_index": index, "revoked_at": None, "revoked_by": None, "revoked_log_index": None,
    }


def setting_row(index: int, entry: ProjectSettingsEntry) -> dict[str, Any]:
    """The `project_setting` row a `project_settings` entry implies (the newest one holds)."""
    return {
        "project": entry.project, "trusted_publishing_only": entry.trusted_publishing_only,
        "updated_at": parse_rfc3339(entry.time), "updated_by": entry.actor, "log_index": index,
    }


def trusted_publishing_only(conn: Connection, project: str) -> bool:
    return bool(conn.execute(_TP_ONLY, {"project": project}).scalar())


def tp_only_reason(project: str) -> str:
    return (
        f"Project {project!r} accepts uploads through trusted publishing only: "
        "API tokens cannot upload to it (an admin set trusted_publishing_only)"
    )


class ApiTokens:
    """API tokens and project settings; ``clock`` returns Unix time."""

    def __init__(self, engine: Engine, log: Log, clock: Callable[[], float]):
        self.engine = engine
        self.log = log
        self.clock = clock

    # --- admin ---------------------------------------------------------------------

    async def create(self, project: str, description: Any, actor: str) -> tuple[dict[str, Any], Receipt]:
        """Create a token for ``project`` (it must have files or a publisher history: NotFound
        otherwise). Answers ``{id, token, description, created_at}`` (the only time the secret
        is shown) and the receipt of its `api_token` entry."""
        name = project_name(project)
        text = parse_description(description)
        await asyncio.to_thread(self._require_project, name)
        now = int(self.clock())
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        entry = ApiTokenEntry(
            time=rfc3339(now), action="create", project=name, token_id=token_id, description=text, actor=actor
        )

        def write_rows(conn: Connection, index: int) -> None:
            conn.execute(_tokens.insert().values(**api_token_row(index, entry, _hash(secret))))

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=write_rows)
        created = {
            "id": token_id,
            "token": f"{PREFIX}.{token_id}.{secret}",
            "description": text,
            "created_at": entry.time,
            "project": name,
        }
        return created, receipt

    def list(self, project: str) -> list[ApiTokenInfo]:
        """Every API token of ``project`` (revoked ones too), oldest first; no secrets."""
        name = project_name(project)
        with self.engine.connect() as conn:
            if not _known_project(conn, name):
                raise NotFound(f"no project {name}: it has no files and never had a trusted publisher")
            rows = conn.execute(
                select(_tokens).where(_tokens.c.project == name).order_by(_tokens.c.created_log_index)
            ).all()
        return [_info(row) for row in rows]

    async def revoke(self, project: str, token_id: str, actor: str) -> tuple[ApiTokenInfo, Receipt]:
        """Revoke a live token of ``project``; NotFound unless it exists there unrevoked."""
        name = project_name(project)
        current = await asyncio.to_thread(self._live, name, token_id)
        now = int(self.clock())
        entry = ApiTokenEntry(
            time=rfc3339(now), action="revoke", project=name, token_id=token_id,
            description=current.description, actor=actor,
        )

        def write_rows(conn: Connection, index: int) -> ApiTokenInfo:
            # under the write lock: a concurrent revocation leaves no second entry
            done = conn.execute(
                update(_tokens)
                .where(_tokens.c.id == token_id, _tokens.c.project == name, _tokens.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=actor, revoked_log_index=index)
            ).rowcount
            if done != 1:
                raise NotFound(f"no live API token {token_id} for project {name}")
            return _info(conn.execute(_BY_ID, {"id": token_id}).first())

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=write_rows)
        return receipt.projected, receipt

    async def set_trusted_publishing_only(self, project: str, value: Any, actor: str) -> tuple[dict[str, Any], Receipt]:
        """Log a `project_settings` entry; the project must exist (NotFound otherwise)."""
        name = project_name(project)
        if not isinstance(value, bool):
            raise BadRequest('"trusted_publishing_only" must be true or false')
        await asyncio.to_thread(self._require_project, name)
        now = int(self.clock())
        entry = ProjectSettingsEntry(time=rfc3339(now), project=name, trusted_publishing_only=value, actor=actor)

        def write_rows(conn: Connection, index: int) -> None:
            row = setting_row(index, entry)
            done = conn.execute(
                update(_settings).where(_settings.c.project == name).values(**row)
            ).rowcount
            if done == 0:
                conn.execute(_settings.insert().values(**row))

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=write_rows)
        return {"project": name, "trusted_publishing_only": value, "updated_at": entry.time, "updated_by": actor}, receipt

    def settings(self, project: str) -> dict[str, Any]:
        name = project_name(project)
        with self.engine.connect() as conn:
            if not _known_project(conn, name):
                raise NotFound(f"no project {name}: it has no files and never had a trusted publisher")
            return {"project": name, "trusted_publishing_only": trusted_publishing_only(conn, name)}

    def _require_project(self, name: str) -> None:
        with self.engine.connect() as conn:
            if not _known_project(conn, name):
                raise NotFound(f"no project {name}: it has no files and never had a trusted publisher")

    def _live(self, name: str, token_id: str) -> ApiTokenInfo:
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": token_id}).first()
        if row is None or row.project != name or row.revoked_at is not None:
            raise NotFound(f"no live API token {token_id} for project {name}")
        return _info(row)

    # --- uploads ---------------------------------------------------------------------

    def authenticate(self, value: str) -> ApiTokenGrant:
        """Check a presented API token (``pubtrail-api-v1.<id>.<secret>``); ApiTokenRejected
        unless it is known and unrevoked and its project takes API-token uploads."""
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise ApiTokenRejected("Invalid API Token: the token is not a pubtrail API token")
        token_id, secret = parts[1], parts[2]
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": token_id}).first()
            tp_only = row is not None and trusted_publishing_only(conn, row.project)
        # compare even when the row is missing, so timing does not reveal which ids exist
        expected = bytes(row.secret_hash) if row is not None else b"\0" * 32
        if not hmac.compare_digest(expected, _hash(secret)) or row is None:
            raise ApiTokenRejected("Invalid API Token: the token is not recognised")
        if row.revoked_at is not None:
            raise ApiTokenRejected("Invalid API Token: the token has been revoked")
        if tp_only:
            raise ApiTokenRejected(tp_only_reason(row.project))
        return ApiTokenGrant(row.id, row.project, row.description, row.created_at)

    @staticmethod
    def still_allowed(conn: Connection, token_id: str, project: str) -> str | None:
        """Why the API token can no longer upload to ``project`` (revoked, or the project
        switched to trusted publishing only), or None; read on ``conn`` (the log's
        write transaction, so a change logged while the body streamed in is seen)."""
        row = conn.execute(_BY_ID, {"id": token_id}).first()
        if row is None or row.revoked_at is not None or row.project != project:
            return "Invalid API Token: the token was revoked during the upload"
        if trusted_publishing_only(conn, project):
            return tp_only_reason(project)
        return None
