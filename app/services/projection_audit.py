"""Are the query tables what the log's entries imply? The check behind "the log is the
source of truth".

Every query table is a projection of log entries: replaying the entries in
index order gives its rows. `audit_projections` replays them and compares,
table by table, the rows the entries imply with the rows stored, on the
columns that come from entries (operational columns that no entry carries,
such as a token's secret hash or a row's surrogate key, are left out):

    exchange, exchange_claim, exchange_identity   from `exchange` entries
    upload_token                                  from `exchange` entries, revoked_at from `revocation`
                                                  and `incident` entries
    token_revocation                              from `revocation` entries
    incident, incident_token                      from `incident` entries
    publisher                                     from `publisher` entries (add, then remove)
    project, release_file                         from `upload` entries
    api_token                                     from `api_token` entries (create, then revoke) and `incident` entries
    project_setting                               from `project_settings` entries (the newest per project)
    release_attestation                           from `upload` entries (v2 `attestations`); each
                                                  stored body must hash to the digest its entry logged

Tables are compared as multisets through an order-independent digest (the
sum of the rows' SHA-256 values) and a row count, so memory stays constant
however large the log: a table that differs is named with both counts, not
row by row. Run it while nothing appends (`audit_sequencer` holds the write
lock), or a batch committed meanwhile shows up as a difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from app.entries import (
    ApiTokenEntry,
    Entry,
    EntryError,
    ExchangeEntry,
    IncidentEntry,
    ProjectSettingsEntry,
    PublisherEntry,
    RevocationEntry,
    UploadEntry,
    decode,
    parse_rfc3339,
)
from app.oidc.publishers import PublisherConfigError, publisher_from_config
from app.services.api_tokens import api_token_row, setting_row
from app.services.exchange import claim_text, identity_row
from app.services.incidents import incident_rows
from app.storage.log_store import StoredEntry
from app.storage.tables import (
    ApiToken,
    Exchange,
    ExchangeClaim,
    ExchangeIdentity,
    Incident,
    IncidentToken,
    Project,
    ProjectSetting,
    Publisher,
    ReleaseAttestation,
    ReleaseFile,
    TokenRevocation,
    UploadToken,
)

_MOD = 1 << 256

#: table -> the columns compared (those that entries determine), in this order
COLUMNS: dict[str, tuple[str, ...]] = {
    "exchange": tuple(c.name for c in Exchange.__table__.columns),
    "exchange_claim": tuple(c.name for c in ExchangeClaim.__table__.columns),
    "exchange_identity": tuple(c.name for c in ExchangeIdentity.__table__.columns),
    "upload_token": ("id", "exchange_log_index", "projects", "expires_at", "revoked_at"),
    "token_revocation": tuple(c.name for c in TokenRevocation.__table__.columns),
    "publisher": (
        "id", "project", "provider", "lookup_key", "config", "added_at", "added_by", "added_log_index",
        "removed_at", "removed_by", "removed_log_index",
    ),
    "project": tuple(c.name for c in Project.__table__.columns),
    "release_file": tuple(c.name for c in ReleaseFile.__table__.columns),
    # `sha256` is compared as the SHA-256 of the stored body, not as the stored column
    "release_attestation": ("log_index", "position", "filename", "predicate_type", "sha256"),
    "incident": tuple(c.name for c in Incident.__table__.columns),
    "incident_token": tuple(c.name for c in IncidentToken.__table__.columns),
    "api_token": tuple(c.name for c in ApiToken.__table__.columns if c.name != "secret_hash"),
    "project_setting": tuple(c.name for c in ProjectSetting.__table__.columns),
}
_TABLES = {
    t.name: t
    for t in (
        Exchange.__table__, ExchangeClaim.__table__, ExchangeIdentity.__table__, UploadToken.__table__,
        TokenRevocation.__table__, Publisher.__table__, Project.__table__, ReleaseFile.__table__,
        ReleaseAttestation.__table__,
        Incident.__table__, IncidentToken.__table__, ApiToken.__table__, ProjectSetting.__table__,
    )
}


def _row_hash(values: Iterable[Any]) -> int:
    encoded = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest(), "big")


@dataclass
class _Digest:
    count: int = 0
    total: int = 0

    def add(self, values: Iterable[Any]) -> None:
        self.count += 1
        self.total = (self.total + _row_hash(values)) % _MOD


@dataclass
class ProjectionReport:
    """The outcome per table: (expected rows, stored rows, equal?)."""

    tables: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _Replay:
    """Consumes decoded entries in index order and digests the rows they imply.

    Rows that a later entry changes (a publisher's removal, a token's
    revocation) are held until the end; all others are digested at once.
    """

    def __init__(self) -> None:
        self.digests = {name: _Digest() for name in COLUMNS}
        self.tokens: dict[str, list[Any]] = {}
        self.revoked: dict[str, int] = {}
        self.publishers: list[dict[str, Any]] = []
        self.api_tokens: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        self.projects: set[str] = set()
        self.problems: list[str] = []

    def add(self, index: int, entry: Entry) -> None:
        if isinstance(entry, ExchangeEntry):
            self._exchange(index, entry)
        elif isinstance(entry, UploadEntry):
            self._upload(index, entry)
        elif isinstance(entry, PublisherEntry):
            self._publisher(index, entry)
        elif isinstance(entry, RevocationEntry):
            at = parse_rfc3339(entry.time)
            self.revoked[entry.token_id] = at
            self._digest("token_revocation", dict(
                token_id=entry.token_id, revoked_at=at, revoked_by=entry.actor, reason=entry.reason, log_index=index
            ))
        elif isinstance(entry, ApiTokenEntry):
            self._api_token(index, entry)
        elif isinstance(entry, ProjectSettingsEntry):
            self.settings[entry.project] = setting_row(index, entry)
        elif isinstance(entry, IncidentEntry):
            incident, tokens = incident_rows(index, entry)
            self._digest("incident", incident)
            for row in tokens:
                self._digest("incident_token", row)
                api_token = self.api_tokens.get(row["token_id"])
                if api_token is None:  # an upload token an exchange minted
                    self.revoked[row["token_id"]] = incident["declared_at"]
                elif api_token["revoked_at"] is not None:
                    self.problems.append(f"entry {index}: revokes API token {row['token_id']}, already revoked")
                else:
                    api_token.update(revoked_at=incident["declared_at"], revoked_by=entry.actor, revoked_log_index=index)

    def _digest(self, table: str, row: dict[str, Any]) -> None:
        self.digests[table].add(row[c] for c in COLUMNS[table])

    def _exchange(self, index: int, entry: ExchangeEntry) -> None:
        at = parse_rfc3339(entry.time)
        expires = parse_rfc3339(entry.token_expires)
        self._digest("exchange", dict(
            log_index=index, at=at, issuer=entry.issuer, provider=entry.provider, kid=entry.kid, jti=entry.jti,
            publisher_id=entry.publisher_id, token_id=entry.token_id, token_expires_at=expires,
        ))
        for name, value in entry.claims.items():
            self._digest("exchange_claim", dict(log_index=index, name=name, value=claim_text(value)))
        self._digest("exchange_identity", identity_row(index, entry))
        self.tokens[entry.token_id] = [entry.token_id, index, json.dumps(sorted(entry.projects)), expires]

    def _upload(self, index: int, entry: UploadEntry) -> None:
        at = parse_rfc3339(entry.time)
        self._digest("release_file", dict(
            filename=entry.filename, project=entry.project, version=entry.version, packagetype=entry.packagetype,
            size=entry.size, sha256=entry.sha256, blake2b_256=entry.blake2b_256,
            requires_python=entry.requires_python, uploaded_at=at, log_index=index, token_id=entry.token_id,
            exchange_log_index=entry.exchange_index,
        ))
        for position, attestation in enumerate(entry.attestations or ()):
            self._digest("release_attestation", dict(
                log_index=index, position=position, filename=entry.filename,
                predicate_type=attestation["predicate_type"], sha256=attestation["sha256"],
            ))
        if entry.project not in self.projects:
            self.projects.add(entry.project)
            self._digest("project", dict(name=entry.project, created_at=at, created_log_index=index))

    def _api_token(self, index: int, entry: ApiTokenEntry) -> None:
        if entry.action == "create":
            if entry.token_id in self.api_tokens:
                self.problems.append(f"entry {index}: creates API token {entry.token_id} a second time")
                return
            self.api_tokens[entry.token_id] = api_token_row(index, entry)
            return
        row = self.api_tokens.get(entry.token_id)
        if row is None or row["revoked_at"] is not None or row["project"] != entry.project:
            self.problems.append(f"entry {index}: revokes API token {entry.token_id}, not live for {entry.project}")
            return
        row.update(revoked_at=parse_rfc3339(entry.time), revoked_by=entry.actor, revoked_log_index=index)

    def _publisher(self, index: int, entry: PublisherEntry) -> None:
        at = parse_rfc3339(entry.time)
        if entry.action == "add":
            try:
                lookup_key = publisher_from_config(entry.provider, entry.config).lookup_key
            except PublisherConfigError as exc:
                self.problems.append(f"entry {index}: a publisher entry whose config does not parse ({exc})")
                return
            self.publishers.append(dict(
                id=entry.publisher_id, project=entry.project, provider=entry.provider, lookup_key=lookup_key,
                config=json.dumps(entry.config, sort_keys=True), added_at=at, added_by=entry.actor,
                added_log_index=index, removed_at=None, removed_by=None, removed_log_index=None,
            ))
            return
        for row in self.publishers:
            if row["id"] == entry.publisher_id and row["project"] == entry.project and row["removed_at"] is None:
                row.update(removed_at=at, removed_by=entry.actor, removed_log_index=index)
                return
        self.problems.append(f"entry {index}: removes publisher {entry.publisher_id} that is not active for {entry.project}")

    def finish(self) -> dict[str, _Digest]:
        for token_id, values in self.tokens.items():
            self.digests["upload_token"].add([*values, self.revoked.get(token_id)])
        for row in self.publishers:
            self._digest("publisher", row)
        for row in self.api_tokens.values():
            self._digest("api_token", row)
        for row in self.settings.values():
            self._digest("project_setting", row)
        return self.digests


def _stored(conn: Connection, table: str, problems: list[str]) -> _Digest:
    digest = _Digest()
    if table == "release_attestation":
        return _stored_attestations(conn, problems)
    columns = [_TABLES[table].c[name] for name in COLUMNS[table]]
    for row in conn.execute(select(*columns)).yield_per(10_000):
        digest.add(row)
    return digest


def _stored_attestations(conn: Connection, problems: list[str]) -> _Digest:
    """The attestation rows with `sha256` recomputed from each stored body: a body
    that no longer hashes to its logged digest makes the table differ, and is named."""
    digest = _Digest()
    table = ReleaseAttestation.__table__
    columns = [table.c[name] for name in COLUMNS["release_attestation"]] + [table.c.body]
    named = 0
    for row in conn.execute(select(*columns)).yield_per(1_000):
        computed = hashlib.sha256(bytes(row.body)).hexdigest()
        if computed != row.sha256 and named < 100:
            named += 1
            problems.append(
                f"attestation {row.position} of {row.filename} (upload entry {row.log_index}) does not hash to "
                f"the digest stored with it, {row.sha256} (its body's SHA-256 is {computed})"
            )
        digest.add([row.log_index, row.position, row.filename, row.predicate_type, computed])
    return digest


def audit_projections(conn: Connection, entries: Iterator[StoredEntry]) -> ProjectionReport:
    """Replay `entries` (every stored entry, in index order) and compare each query
    table's rows, read on `conn`, with the rows the entries imply."""
    replay = _Replay()
    report = ProjectionReport()
    for stored in entries:
        try:
            entry = decode(stored.data)
        except EntryError as exc:
            report.problems.append(f"entry {stored.index}: does not decode, so its rows cannot be rebuilt ({exc})")
            continue
        replay.add(stored.index, entry)
    report.problems.extend(replay.problems)
    for table, expected in replay.finish().items():
        stored = _stored(conn, table, report.problems)
        same = (stored.count, stored.total) == (expected.count, expected.total)
        report.tables[table] = (expected.count, stored.count, same)
        if not same:
            report.problems.append(
                f"table {table} is not what the entries imply ({stored.count} rows stored, "
                f"{expected.count} rebuilt from the entries): it cannot be rebuilt from the log as it is"
            )
    return report
