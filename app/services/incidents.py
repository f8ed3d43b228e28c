"""Incidents: a declared compromise, its blast radius, and the tokens it killed.

`Incidents.declare` appends one `incident` entry (id, description, canonical
criteria, actor, the ids of the tokens it revokes). The entry's projection
revokes every upload token that matches the criteria and is still valid, and
every long-lived API token, not revoked, that made a matching upload (its
`api_token` row gets the incident's time, actor and log index), in
the entry's own transaction: either the entry is logged and every listed
token is revoked, or (any failure) neither. The list in the entry is
computed first and checked again under the log's write lock; if a matching
token was minted or revoked in between, the declaration is recomputed (a
few times, then 409). Later uploads with a revoked token get 403 (the
upload path refuses revoked tokens).

With `disable_publishers`, each trusted publisher that minted a matching
token is then removed from each project it is registered for, through
`Publishers.remove` (each removal its own `publisher` entry).

The `incident` and `incident_token` rows, and the revoked tokens'
`revoked_at` (the incident's time), are a pure function of the entry
(`incident_rows`), so they can be rebuilt from the log: each listed id is the
upload token an `exchange` entry minted or the API token an `api_token`
create entry created under that id (both are random 64-bit ids, drawn
independently, so a collision is not expected; nothing checks for one).

An incident covers the uploads in its current blast radius (its criteria
evaluated at the latest checkpoint): `covering(upload_index)` lists the
incidents that cover one upload (provenance answers), `covering_many` those
of several (project pages), each in one SQL statement.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable

import rfc8785
from sqlalchemy import Engine, literal, select, union_all, update
from sqlalchemy.engine import Connection

from app.entries import IncidentEntry, parse_rfc3339, rfc3339
from app.errors import BadRequest, Conflict, NotFound
from app.services import criteria as criteria_module
from app.services.blast_radius import BlastRadius
from app.services.criteria import Criteria
from app.services.log import Log
from app.services.publishers import Publishers
from app.storage.tables import ApiToken, Exchange, Incident, IncidentToken, Publisher, ReleaseFile, UploadToken

_incidents = Incident.__table__
_incident_tokens = IncidentToken.__table__
_tokens = UploadToken.__table__
_api_tokens = ApiToken.__table__
_publishers = Publisher.__table__
_releases = ReleaseFile.__table__

MAX_DESCRIPTION = 2000
DECLARE_ATTEMPTS = 5
BODY_FIELDS = {"description", "criteria", "revoke_tokens", "disable_publishers"}


class _MatchesChanged(Exception):
    """A matching token was minted, revoked or expired between planning and the write."""


def incident_rows(index: int, entry: IncidentEntry) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `incident` row and `incident_token` rows of the incident entry at
    `index`: a pure function of the entry. (The listed tokens' `revoked_at` is
    the entry's time.)"""
    incident = {
        "id": entry.incident_id,
        "log_index": index,
        "declared_at": parse_rfc3339(entry.time),
        "description": entry.description,
        "criteria": rfc8785.dumps(entry.criteria).decode(),
        "actor": entry.actor,
    }
    return incident, [{"incident_log_index": index, "token_id": t} for t in entry.revoked_tokens]


@dataclass(frozen=True)
class Declaration:
    description: str
    criteria: Criteria
    revoke_tokens: bool
    disable_publishers: bool


def parse_declaration(body: Any) -> Declaration:
    """The POST body `{description, criteria, revoke_tokens: true, disable_publishers: false}`; BadRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    unknown = set(body) - BODY_FIELDS
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}; known: {sorted(BODY_FIELDS)}")
    description = body.get("description")
    if not isinstance(description, str) or not description.strip() or len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"description must be a non-empty string of at most {MAX_DESCRIPTION} characters")
    if "criteria" not in body:
        raise BadRequest("criteria is required: a JSON object of blast-radius criteria")
    criteria = criteria_module.from_mapping(body["criteria"])
    flags = {}
    for name, default in (("revoke_tokens", True), ("disable_publishers", False)):
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false")
        flags[name] = value
    return Declaration(description, criteria, **flags)


class Incidents:
    def __init__(self, engine: Engine, log: Log, publishers: Publishers, clock: Callable[[], float]):
        self.engine = engine
        self.log = log
        self.publishers = publishers
        self.clock = clock
        self.blast = BlastRadius(engine, log.reader, clock)
        self._cache_lock = threading.Lock()
        self._criteria_cache: dict[str, Criteria] = {}

    # --- declaring -------------------------------------------------------------

    async def declare(self, declaration: Declaration, actor: str) -> dict[str, Any]:
        """Log the incident, revoke its live tokens (same transaction), then remove
        publishers if asked; the answer of POST /api/v1/incidents."""
        for _ in range(DECLARE_ATTEMPTS):
            try:
                entry, receipt = await self._append(declaration, actor)
                break
            except _MatchesChanged:
                continue
        else:
            raise Conflict("matching tokens kept changing while the incident was declared; try again")
        removed = []
        if declaration.disable_publishers:
            removed = await self._remove_publishers(declaration.criteria, receipt.index, actor)
        blast = await asyncio.to_thread(self.blast.answer, declaration.criteria)
        return {
            "id": entry.incident_id,
            "log_index": receipt.index,
            "revoked_tokens": entry.revoked_tokens,
            "removed_publishers": removed,
            "receipt": receipt.to_json(),
            "blast_radius": blast,
        }

    async def _append(self, declaration: Declaration, actor: str):
        now = int(self.clock())
        planned: list[str] = []
        planned_api: list[str] = []
        if declaration.revoke_tokens:
            planned, planned_api = await asyncio.to_thread(self._live_tokens_now, declaration.criteria, now)
        entry = IncidentEntry(
            time=rfc3339(now),
            incident_id="inc-" + secrets.token_hex(8),
            description=declaration.description,
            criteria=declaration.criteria.to_json(),
            actor=actor,
            revoked_tokens=sorted(planned + planned_api),
        )

        def project_rows(conn: Connection, index: int) -> None:
            if declaration.revoke_tokens and self._live_tokens(
                conn, declaration.criteria, index, now
            ) != (planned, planned_api):
                raise _MatchesChanged()
            if planned:
                result = conn.execute(
                    update(_tokens)
                    .where(_tokens.c.id.in_(planned), _tokens.c.revoked_at.is_(None), _tokens.c.expires_at > now)
                    .values(revoked_at=now)
                )
                if result.rowcount != len(planned):
                    raise _MatchesChanged()
            if planned_api:
                result = conn.execute(
                    update(_api_tokens)
                    .where(_api_tokens.c.id.in_(planned_api), _api_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_by=actor, revoked_log_index=index)
                )
                if result.rowcount != len(planned_api):
                    raise _MatchesChanged()
            write_incident(conn, index, entry)

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=project_rows)
        return entry, receipt

    def _live_tokens_now(self, criteria: Criteria, now: int) -> tuple[list[str], list[str]]:
        with self.engine.connect() as conn:
            return self._live_tokens(conn, criteria, 1 << 62, now)

    def _live_tokens(self, conn: Connection, criteria: Criteria, size: int, now: int) -> tuple[list[str], list[str]]:
        """Ids of the matching upload tokens (minted by exchanges below `size`) still valid at
        `now`, and of the API tokens, not revoked, that made a matching upload below `size`; each sorted."""
        query = self.blast.exchanges_query(criteria, size).subquery()
        rows = conn.execute(
            select(_tokens.c.id)
            .join(query, query.c.log_index == _tokens.c.exchange_log_index)
            .where(_tokens.c.revoked_at.is_(None), _tokens.c.expires_at > now)
        ).scalars()
        api = conn.execute(self.blast.live_api_tokens_query(criteria, size)).scalars()
        return sorted(rows), sorted(api)

    async def _remove_publishers(self, criteria: Criteria, below: int, actor: str) -> list[dict[str, Any]]:
        removed = []
        for project, pid in await asyncio.to_thread(self._matching_publishers, criteria, below):
            try:
                _, receipt = await self.publishers.remove(project, pid, actor)
            except NotFound:  # removed meanwhile by someone else
                continue
            removed.append({"project": project, "publisher_id": pid, "log_index": receipt.index})
        return removed

    def _matching_publishers(self, criteria: Criteria, below: int) -> list[tuple[str, str]]:
        """(project, publisher id) of active publishers that minted a matching token."""
        exchanges = self.blast.exchanges_query(criteria, below).subquery()
        ex = Exchange.__table__
        ids = select(ex.c.publisher_id).join(exchanges, exchanges.c.log_index == ex.c.log_index).distinct()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_publishers.c.project, _publishers.c.id)
                .where(_publishers.c.id.in_(ids), _publishers.c.removed_at.is_(None))
                .order_by(_publishers.c.added_log_index)
            ).all()
        return [(row.project, row.id) for row in rows]

    # --- reading ---------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every incident, oldest first, with its current blast radius summarised by totals."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_incidents).order_by(_incidents.c.log_index)).all()
        checkpoint = self.blast.pinned(None)
        size = checkpoint.size if checkpoint is not None else 0
        now = int(self.clock())
        out = []
        for row in rows:
            item = self._describe(row, conn=None)
            item["totals"] = self.blast.totals(self._criteria(row), size, now)
            out.append(item)
        return out

    def get(self, incident_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """One incident with one page of its current blast radius (paged like the query)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_incidents).where(_incidents.c.id == incident_id)).first()
            if row is None:
                raise NotFound(f"no incident {incident_id}")
            item = self._describe(row, conn=conn)
        item["blast_radius"] = self.blast.answer(self._criteria(row), limit=limit, cursor=cursor)
        return item

    def _describe(self, row, conn: Connection | None) -> dict[str, Any]:
        item = {
            "id": row.id,
            "description": row.description,
            "log_index": row.log_index,
            "declared_at": rfc3339(row.declared_at),
            "declared_by": row.actor,
            "criteria": json.loads(row.criteria),
        }
        if conn is not None:
            item["revoked_tokens"] = sorted(conn.execute(
                select(_incident_tokens.c.token_id).where(_incident_tokens.c.incident_log_index == row.log_index)
            ).scalars())
        return item

    def _criteria(self, row) -> Criteria:
        with self._cache_lock:
            cached = self._criteria_cache.get(row.id)
        if cached is None:
            cached = criteria_module.from_mapping(json.loads(row.criteria))
            with self._cache_lock:
                self._criteria_cache[row.id] = cached
        return cached

    def covering(self, upload_index: int) -> list[dict[str, Any]]:
        """The incidents whose current blast radius holds the upload at `upload_index`,
        oldest first, as `{id, description, log_index, declared_at}`."""
        return self.covering_many([upload_index])[upload_index]

    def covering_many(self, upload_indexes: list[int]) -> dict[int, list[dict[str, Any]]]:
        """`covering` for several uploads (a project page) in one SQL statement:
        per incident, its uploads query restricted to these indexes."""
        indexes = sorted(set(upload_indexes))
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in indexes}
        if not indexes:
            return out
        with self.engine.connect() as conn:
            rows = conn.execute(select(_incidents).order_by(_incidents.c.log_index)).all()
            if not rows:
                return out
            probes = []
            for row in rows:
                matched = (
                    self.blast.uploads_query(self._criteria(row), indexes[-1] + 1)
                    .where(_releases.c.log_index.in_(indexes))
                    .subquery()
                )
                probes.append(select(literal(row.id).label("id"), matched.c.log_index))
            hits = conn.execute(union_all(*probes) if len(probes) > 1 else probes[0]).all()
        found: dict[str, set[int]] = {}
        for incident_id, index in hits:
            found.setdefault(incident_id, set()).add(index)
        for row in rows:  # oldest incident first
            described = {
                "id": row.id, "description": row.description, "log_index": row.log_index,
                "declared_at": rfc3339(row.declared_at),
            }
            for index in sorted(found.get(row.id, ())):
                out[index].append(described)
        return out


def write_incident(conn: Connection, index: int, entry: IncidentEntry) -> None:
    """Insert the rows `incident_rows` gives for the entry (inside its transaction)."""
    incident, tokens = incident_rows(index, entry)
    conn.execute(_incidents.insert(), incident)
    if tokens:
        conn.execute(_incident_tokens.insert(), tokens)
