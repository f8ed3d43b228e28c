"""Blast radius: what a compromised identity, key or token published, and which
of its tokens are still alive. Every item is proven against one signed checkpoint.

Semantics (the route's OpenAPI description says the same):

* With any exchange criterion (identity fields, `issuer`, `kid`,
  `publisher_id`), the exchanges are those matching every one of them, with
  the window (`since` inclusive, `until` exclusive) on the exchange's time.
  The uploads are those made with a token one of these exchanges minted,
  whenever they happened, even after `until`: the token was already in the
  attacker's hands. `token_id` and `project` narrow both lists (an
  exchange's token covered `project`, an upload is of `project`). `auth`
  narrows the uploads to one way of authorisation; `auth=api_token` with
  exchange criteria matches nothing (an exchange is trusted publishing).
* With only upload criteria (`token_id`, `project`, `auth`), the window
  applies to the uploads' time. The exchanges are then the one that minted
  `token_id` (even if it never uploaded anything), or the exchanges behind
  the selected uploads. `token_id` may be an API token's id: its uploads
  (`auth: api_token`, no exchange) are found the same way.

An answer pins one signed checkpoint: every item is at an index below its
`tree_size` and carries its entry bytes and inclusion proof at that size.
Items are paged by log index (`limit` per list, an opaque `cursor` holding
the pinned size, the last index of each list and the criteria's
fingerprint), so later pages neither miss nor repeat items while the log
grows. `totals` count every match at the pinned size; token states
(valid / expired / revoked) and `tokens_valid` are taken at the answer's
time (`as_of`). `tokens_valid` counts the matching exchanges' upload tokens
still valid plus the long-lived API tokens, not revoked, that made a matching
upload (`live_api_tokens_query`; an API token never expires). `projects` groups the uploads of the page.

Every list is one SQL query joined on indexed columns; totals are COUNT
queries; entries and proofs are read in one batch per page.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from sqlalchemy import Engine, and_, case, distinct, false, func, select
from sqlalchemy.sql import Select

from app.entries import API_TOKEN, TRUSTED_PUBLISHING, rfc3339
from app.errors import BadRequest, NotFound
from app.oidc.identity import identity_fields, query_key
from app.services.criteria import EXCHANGE_CRITERIA, Criteria
from app.services.log_reader import LogReader, ProvenEntry
from app.storage.log_store import StoredCheckpoint
from app.storage.tables import ApiToken, Exchange, ExchangeIdentity, ReleaseFile, UploadToken

_e = Exchange.__table__
_i = ExchangeIdentity.__table__
_r = ReleaseFile.__table__
_t = UploadToken.__table__
_a = ApiToken.__table__

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CSV_CHUNK = 1000
CSV_COLUMNS = (
    "index", "time", "project", "version", "filename", "packagetype", "sha256", "token_id", "exchange_index",
    "issuer", "provider", "repository", "workflow", "ref", "sha", "environment", "auth",
)


def token_state(revoked_at: int | None, expires_at: int, now: int) -> str:
    """`revoked`, `expired` or `valid` at `now` (a token authorises uploads while now < expires_at)."""
    if revoked_at is not None:
        return "revoked"
    return "valid" if now < expires_at else "expired"


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the pinned size and, per list, the last index
    returned (None once that list is exhausted)."""

    size: int
    digest: str
    exchange: int | None
    upload: int | None

    def encode(self) -> str:
        raw = json.dumps([self.size, self.digest, self.exchange, self.upload], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, criteria: Criteria) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            size, digest, exchange, upload = raw
            ok = (
                isinstance(size, int) and size >= 0 and isinstance(digest, str)
                and all(v is None or (isinstance(v, int) and v >= -1) for v in (exchange, upload))
            )
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            ok = False
        if not ok:
            raise BadRequest("cursor is not one this server gave out")
        if digest != criteria.digest():
            raise BadRequest("cursor belongs to a query with other criteria")
        return cls(size, digest, exchange, upload)


class BlastRadius:
    """Blast-radius queries over the projection tables, proven through `reader`."""

    def __init__(self, engine: Engine, reader: LogReader, clock: Callable[[], float]):
        self.engine = engine
        self.reader = reader
        self.clock = clock

    # --- the SQL -----------------------------------------------------------------

    def exchanges_query(self, criteria: Criteria, size: int) -> Select:
        """Matching exchanges (log_index, token expiry, revocation time) below `size`."""
        source = _e.outerjoin(_t, _t.c.id == _e.c.token_id)
        conditions = [_e.c.log_index < size]
        if criteria.get("auth") == API_TOKEN and (criteria.selects_exchanges or criteria.get("token_id")):
            conditions.append(false())  # exchanges authorise trusted publishing only
        if criteria.selects_exchanges:
            source, conditions = self._exchange_filter(criteria, source, conditions, window=True)
            if criteria.get("token_id"):
                conditions.append(_e.c.token_id == criteria.get("token_id"))
        elif criteria.get("token_id"):
            conditions.append(_e.c.token_id == criteria.get("token_id"))
        else:
            behind = select(_r.c.exchange_log_index).where(*self._upload_only_conditions(criteria, size))
            conditions.append(_e.c.log_index.in_(behind))
        if criteria.get("project") and (criteria.selects_exchanges or criteria.get("token_id")):
            # projects are PEP 503-normalized ([a-z0-9-]), so the quoted name matches exactly
            conditions.append(_t.c.projects.like(f'%"{criteria.get("project")}"%'))
        return (
            select(_e.c.log_index, _e.c.token_expires_at, _t.c.revoked_at)
            .select_from(source)
            .where(*conditions)
        )

    def uploads_query(self, criteria: Criteria, size: int) -> Select:
        """Matching uploads (log_index, project, version) below `size`."""
        columns = (_r.c.log_index, _r.c.project, _r.c.version)
        if not criteria.selects_exchanges:
            return select(*columns).where(*self._upload_only_conditions(criteria, size))
        source = _r.join(_e, _e.c.log_index == _r.c.exchange_log_index)
        conditions = [_r.c.log_index < size]
        source, conditions = self._exchange_filter(criteria, source, conditions, window=True)
        if criteria.get("token_id"):
            conditions.append(_r.c.token_id == criteria.get("token_id"))
        if criteria.get("project"):
            conditions.append(_r.c.project == criteria.get("project"))
        conditions.extend(_auth_conditions(criteria))
        return select(*columns).select_from(source).where(*conditions)

    @staticmethod
    def _exchange_filter(criteria: Criteria, source, conditions: list, *, window: bool):
        identity = []
        for name, value in criteria.exchange_criteria.items():
            if name in EXCHANGE_CRITERIA:
                conditions.append(_e.c[name] == value)
            elif name == "provider":
                conditions.append(_e.c.provider == value)
            elif name == "workflow" and "@" in value:
                identity.append(_i.c.workflow_ref == query_key("workflow_ref", value))
            else:
                identity.append(_i.c[name] == query_key(name, value))
        if identity:
            source = source.join(_i, _i.c.log_index == _e.c.log_index)
            conditions.extend(identity)
        if window and criteria.since is not None:
            conditions.append(_e.c.at >= criteria.since)
        if window and criteria.until is not None:
            conditions.append(_e.c.at < criteria.until)
        return source, conditions

    @staticmethod
    def _upload_only_conditions(criteria: Criteria, size: int) -> list:
        conditions = [_r.c.log_index < size]
        if criteria.get("token_id"):
            conditions.append(_r.c.token_id == criteria.get("token_id"))
        if criteria.get("project"):
            conditions.append(_r.c.project == criteria.get("project"))
        if criteria.since is not None:
            conditions.append(_r.c.uploaded_at >= criteria.since)
        if criteria.until is not None:
            conditions.append(_r.c.uploaded_at < criteria.until)
        conditions.extend(_auth_conditions(criteria))
        return conditions

    # --- answers -----------------------------------------------------------------

    def pinned(self, cursor: Cursor | None) -> StoredCheckpoint | None:
        """The checkpoint an answer is pinned to: the cursor's, else the latest (None: empty log)."""
        if cursor is None:
            try:
                return self.reader.latest()
            except NotFound:
                return None
        try:
            return self.reader.checkpoint_at(cursor.size)
        except NotFound as exc:
            raise BadRequest(f"cursor names a tree size this log never signed: {exc.message}") from exc

    def live_api_tokens_query(self, criteria: Criteria, size: int) -> Select:
        """Ids of the API tokens, not revoked, that made a matching upload below `size` (distinct)."""
        uploads = self.uploads_query(criteria, size).subquery()
        return (
            select(_a.c.id)
            .select_from(uploads.join(_r, _r.c.log_index == uploads.c.log_index).join(_a, _a.c.id == _r.c.token_id))
            .where(_r.c.exchange_log_index.is_(None), _a.c.revoked_at.is_(None))
            .distinct()
        )

    def totals(self, criteria: Criteria, size: int, now: int) -> dict[str, int]:
        """Counts of every match below `size` (four COUNT queries)."""
        exchanges = self.exchanges_query(criteria, size).subquery()
        uploads = self.uploads_query(criteria, size).subquery()
        valid = and_(exchanges.c.revoked_at.is_(None), exchanges.c.token_expires_at > now)
        with self.engine.connect() as conn:
            n_exchanges, n_valid = conn.execute(
                select(func.count(), func.coalesce(func.sum(case((valid, 1), else_=0)), 0)).select_from(exchanges)
            ).one()
            n_uploads, n_projects = conn.execute(
                select(func.count(), func.count(distinct(uploads.c.project))).select_from(uploads)
            ).one()
            releases = select(uploads.c.project, uploads.c.version).distinct().subquery()
            n_releases = conn.execute(select(func.count()).select_from(releases)).scalar_one()
            api_live = self.live_api_tokens_query(criteria, size).subquery()
            n_valid += conn.execute(select(func.count()).select_from(api_live)).scalar_one()
        return {
            "exchanges": n_exchanges,
            "uploads": n_uploads,
            "projects": n_projects,
            "releases": n_releases,
            "tokens_valid": int(n_valid),
        }

    def answer(self, criteria: Criteria, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
        """One page of the blast radius of `criteria` (see the module docstring)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        position = Cursor.decode(cursor, criteria) if cursor is not None else None
        now = int(self.clock())
        checkpoint = self.pinned(position)
        size = checkpoint.size if checkpoint is not None else 0
        after_exchange = position.exchange if position is not None else -1
        after_upload = position.upload if position is not None else -1
        exchange_rows, upload_rows = [], []
        with self.engine.connect() as conn:
            if after_exchange is not None and size:
                query = self.exchanges_query(criteria, size)
                exchange_rows = conn.execute(
                    query.where(_e.c.log_index > after_exchange).order_by(_e.c.log_index).limit(limit + 1)
                ).all()
            if after_upload is not None and size:
                query = self.uploads_query(criteria, size)
                upload_rows = conn.execute(
                    query.where(_r.c.log_index > after_upload).order_by(_r.c.log_index).limit(limit + 1)
                ).all()
        more_exchanges, exchange_rows = len(exchange_rows) > limit, exchange_rows[:limit]
        more_uploads, upload_rows = len(upload_rows) > limit, upload_rows[:limit]
        indexes = [row.log_index for row in exchange_rows] + [row.log_index for row in upload_rows]
        proven = {p.stored.index: p for p in self.reader.proven(indexes, size)} if indexes else {}
        exchanges = [
            exchange_item(proven[row.log_index], token_state(row.revoked_at, row.token_expires_at, now))
            for row in exchange_rows
        ]
        uploads = [upload_item(proven[row.log_index]) for row in upload_rows]
        next_cursor = None
        if more_exchanges or more_uploads:
            next_cursor = Cursor(
                size,
                criteria.digest(),
                exchange_rows[-1].log_index if more_exchanges else None,
                upload_rows[-1].log_index if more_uploads else None,
            ).encode()
        return {
            "criteria": criteria.to_json(),
            "checkpoint": checkpoint.note if checkpoint is not None else None,
            "tree_size": size,
            "as_of": rfc3339(now),
            "exchanges": exchanges,
            "uploads": uploads,
            "projects": group_projects(uploads),
            "totals": self.totals(criteria, size, now) if size else dict.fromkeys(
                ("exchanges", "uploads", "projects", "releases", "tokens_valid"), 0
            ),
            "next_cursor": next_cursor,
        }

    def csv(self, criteria: Criteria) -> tuple[int, Iterator[str]]:
        """Every matching upload at the latest checkpoint as CSV, one row per file
        with the publisher identity its entry records; returns (tree size, text chunks)."""
        checkpoint = self.pinned(None)
        size = checkpoint.size if checkpoint is not None else 0
        query = self.uploads_query(criteria, size)

        def chunks() -> Iterator[str]:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            after = -1
            while size:
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        query.where(_r.c.log_index > after).order_by(_r.c.log_index).limit(CSV_CHUNK)
                    ).all()
                if not rows:
                    break
                after = rows[-1].log_index
                for item in self.reader.proven([row.log_index for row in rows], size):
                    writer.writerow(csv_row(item))
                yield out.getvalue()
                out.seek(0)
                out.truncate()
            yield out.getvalue()

        return size, chunks()


def _auth_conditions(criteria: Criteria) -> list:
    """An API-token upload is the release row without an exchange."""
    auth = criteria.get("auth")
    if auth == API_TOKEN:
        return [_r.c.exchange_log_index.is_(None)]
    if auth is not None:
        return [_r.c.exchange_log_index.is_not(None)]
    return []


def _proof(proven: ProvenEntry) -> dict[str, Any]:
    proof = proven.proof
    return {"tree_size": proof.tree_size, "root_hash": proof.root_hash.hex(), "hashes": [h.hex() for h in proof.hashes]}


def exchange_item(proven: ProvenEntry, state: str) -> dict[str, Any]:
    """An exchange as a blast-radius item: identity for display (read from the
    entry, not the lower-cased query columns), token state, bytes and proof."""
    entry = json.loads(proven.stored.data)
    identity = identity_fields(entry["issuer"], entry["provider"], entry["claims"])
    return {
        "index": proven.stored.index,
        "leaf_hash": proven.stored.leaf_hash.hex(),
        "time": entry["time"],
        "issuer": entry["issuer"],
        "provider": entry["provider"],
        "kid": entry["kid"],
        "publisher_id": entry["publisher_id"],
        **{name: identity[name] for name in (
            "repository", "repository_owner_id", "workflow", "workflow_ref", "job_workflow_ref",
            "ref", "sha", "environment", "actor",
        )},
        "token_id": entry["token_id"],
        "token_expires": entry["token_expires"],
        "token_state": state,
        "entry_bytes": base64.b64encode(proven.stored.data).decode(),
        "proof": _proof(proven),
    }


def upload_item(proven: ProvenEntry) -> dict[str, Any]:
    entry = json.loads(proven.stored.data)
    return {
        "index": proven.stored.index,
        "leaf_hash": proven.stored.leaf_hash.hex(),
        "time": entry["time"],
        "project": entry["project"],
        "version": entry["version"],
        "filename": entry["filename"],
        "packagetype": entry["packagetype"],
        "sha256": entry["sha256"],
        "token_id": entry["token_id"],
        "exchange_index": entry["exchange_index"],
        "auth": entry.get("auth", TRUSTED_PUBLISHING),
        "entry_bytes": base64.b64encode(proven.stored.data).decode(),
        "proof": _proof(proven),
    }


def group_projects(uploads: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """project -> version -> filenames, of the given upload items."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for item in uploads:
        grouped.setdefault(item["project"], {}).setdefault(item["version"], []).append(item["filename"])
    return grouped


def csv_row(proven: ProvenEntry) -> list[Any]:
    entry = json.loads(proven.stored.data)
    publisher = entry.get("publisher") or {}
    own = {
        "index": proven.stored.index,
        "time": entry["time"],
        "exchange_index": entry["exchange_index"],
        "auth": entry.get("auth", TRUSTED_PUBLISHING),
    }
    return [own[c] if c in own else (entry.get(c) if c in entry else publisher.get(c)) for c in CSV_COLUMNS]
