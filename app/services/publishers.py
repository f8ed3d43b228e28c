"""Trusted publishers: register, list and remove them, each change a log entry.

A publisher's id is derived from its identity (provider + canonical
configuration), so registering the same workflow for two projects yields one
id, and a token minted for it covers both projects, as on PyPI.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

import rfc8785
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import Connection

from app.distributions.errors import UploadError
from app.distributions.validate import normalize_project_name, validate_project_name
from app.entries import PublisherEntry, rfc3339
from app.errors import BadRequest, Conflict, NotFound
from app.oidc.publishers import Publisher, PublisherConfigError, publisher_from_config
from app.sequencer import Receipt
from app.services.log import Log
from app.storage.tables import Project as ProjectRow
from app.storage.tables import Publisher as PublisherRow

_table = PublisherRow.__table__
# built once: compiling and cache-keying a statement per exchange costs more than running it
_CANDIDATES = select(_table).where(
    _table.c.lookup_key.in_(bindparam("keys", expanding=True)), _table.c.removed_at.is_(None)
)


@dataclass(frozen=True)
class RegisteredPublisher:
    id: str
    project: str
    provider: str
    config: dict[str, Any]
    added_at: int
    added_by: str
    added_log_index: int

    def to_json(self) -> dict[str, Any]:
        """`project` is the index project; the provider's own fields (a GitLab or
        ActiveState publisher has a `project` of its own) stay inside `config`."""
        return {
            "id": self.id,
            "project": self.project,
            "provider": self.provider,
            "config": dict(self.config),
            "added_at": rfc3339(self.added_at),
            "added_by": self.added_by,
            "log_index": self.added_log_index,
        }

    def publisher(self) -> Publisher:
        return publisher_from_config(self.provider, self.config)


def publisher_id(publisher: Publisher) -> str:
    """A stable id for a publisher's identity: 16 hex digits of SHA-256 over its canonical config."""
    canonical = rfc8785.dumps({"provider": publisher.provider, "config": publisher.to_config()})
    return hashlib.sha256(canonical).hexdigest()[:16]


def project_name(name: str) -> str:
    """Validate a project name and return it normalized (PEP 503)."""
    try:
        validate_project_name(name)
    except UploadError as exc:
        raise BadRequest(f"invalid project name {name!r}: {exc.reason}") from exc
    return normalize_project_name(name)


def parse_publisher(body: Any) -> Publisher:
    """Build a publisher from an admin request body `{"provider": ..., <fields>}`."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    config = dict(body)
    provider = config.pop("provider", None)
    if not isinstance(provider, str):
        raise BadRequest("provider is required: one of github, gitlab, google, activestate")
    try:
        return publisher_from_config(provider, config)
    except PublisherConfigError as exc:
        raise BadRequest(str(exc)) from exc


class Publishers:
    def __init__(self, engine: Engine, log: Log, clock: Callable[[], float]):
        self.engine = engine
        self.log = log
        self.clock = clock

    async def add(self, project: str, publisher: Publisher, actor: str) -> tuple[RegisteredPublisher, Receipt]:
        """Register `publisher` for `project`; Conflict if it already is."""
        project = project_name(project)
        pid = publisher_id(publisher)
        now = int(self.clock())
        entry = PublisherEntry(
            time=rfc3339(now),
            action="add",
            project=project,
            publisher_id=pid,
            provider=publisher.provider,
            config=publisher.to_config(),
            actor=actor,
        )

        def project_row(conn: Connection, index: int) -> RegisteredPublisher:
            if _active(conn, project, pid) is not None:
                raise Conflict(f"publisher {pid} is already registered for {project}")
            conn.execute(
                _table.insert().values(
                    id=pid,
                    project=project,
                    provider=publisher.provider,
                    lookup_key=publisher.lookup_key,
                    config=json.dumps(publisher.to_config(), sort_keys=True),
                    added_at=now,
                    added_by=actor,
                    added_log_index=index,
                )
            )
            return RegisteredPublisher(pid, project, publisher.provider, publisher.to_config(), now, actor, index)

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=project_row)
        return receipt.projected, receipt

    async def remove(self, project: str, pid: str, actor: str) -> tuple[RegisteredPublisher, Receipt]:
        """Remove a registered publisher; NotFound if it is not active for `project`."""
        project = project_name(project)
        current = await asyncio.to_thread(self._active, project, pid)
        if current is None:
            raise NotFound(f"no trusted publisher {pid} for project {project}")
        now = int(self.clock())
        entry = PublisherEntry(
            time=rfc3339(now),
            action="remove",
            project=project,
            publisher_id=pid,
            provider=current.provider,
            config=current.config,
            actor=actor,
        )

        def project_row(conn: Connection, index: int) -> RegisteredPublisher:
            result = conn.execute(
                update(_table)
                .where(_table.c.project == project, _table.c.id == pid, _table.c.removed_at.is_(None))
                .values(removed_at=now, removed_by=actor, removed_log_index=index)
            )
            if result.rowcount != 1:
                raise NotFound(f"no trusted publisher {pid} for project {project}")
            return current

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=project_row)
        return receipt.projected, receipt

    def list(self, project: str) -> list[RegisteredPublisher]:
        """The publishers active for `project`; NotFound for a project that has
        neither files nor any publisher history (most likely a typo)."""
        project = project_name(project)
        with self.engine.connect() as conn:
            if not _known_project(conn, project):
                raise NotFound(f"no project {project}: it has no files and never had a trusted publisher")
            rows = conn.execute(
                select(_table)
                .where(_table.c.project == project, _table.c.removed_at.is_(None))
                .order_by(_table.c.added_log_index)
            ).all()
        return [_registered(row) for row in rows]

    def _active(self, project: str, pid: str) -> RegisteredPublisher | None:
        with self.engine.connect() as conn:
            return _active(conn, project, pid)

    def candidates(self, lookup_keys: list[str]) -> list[RegisteredPublisher]:
        """Active publishers stored under any of `lookup_keys` (one indexed query)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_CANDIDATES, {"keys": lookup_keys}).all()
        return [_registered(row) for row in rows]


def _known_project(conn: Connection, project: str) -> bool:
    projects = ProjectRow.__table__
    return (
        conn.execute(select(projects.c.name).where(projects.c.name == project)).first() is not None
        or conn.execute(select(_table.c.row_id).where(_table.c.project == project).limit(1)).first() is not None
    )


def _active(conn: Connection, project: str, pid: str) -> RegisteredPublisher | None:
    row = conn.execute(
        select(_table).where(_table.c.project == project, _table.c.id == pid, _table.c.removed_at.is_(None))
    ).first()
    return _registered(row) if row is not None else None


def _registered(row) -> RegisteredPublisher:
    return RegisteredPublisher(
        id=row.id,
        project=row.project,
        provider=row.provider,
        config=json.loads(row.config),
        added_at=row.added_at,
        added_by=row.added_by,
        added_log_index=row.added_log_index,
    )
