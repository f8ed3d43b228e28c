"""SQLModel tables.

Two groups:

* the log itself (`LogState`, `LogEntry`, `LogTile`, `SignedCheckpoint`): the
  source of truth, enough to rebuild everything else;
* projections of log entries (`Publisher`, `Exchange`, `ExchangeClaim`,
  `ExchangeIdentity`, `UploadToken`, `TokenRevocation`, `Project`, `ApiToken`, `ProjectSetting`,
  `ReleaseFile`, `ReleaseAttestation`, `Incident`, `IncidentToken`) and operational state that is not logged (`UsedJti`,
  `FailedExchange`, `LogHalt`).

Times are integer Unix seconds (UTC): portable between SQLite and PostgreSQL
and trivially indexable for time-window queries. Log indexes are BIGINT.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _bigint(primary_key: bool = False, index: bool = False, nullable: bool = False, unique: bool = False) -> Column:
    return Column(
        BigInteger, primary_key=primary_key, index=index, nullable=nullable, unique=unique, autoincrement=False
    )


# --- the log -----------------------------------------------------------------


class LogState(SQLModel, table=True):
    """One row: the log's origin and the size and root of its latest checkpoint.

    Writers lock this row (PostgreSQL `SELECT ... FOR UPDATE`) or the whole
    database (SQLite `BEGIN IMMEDIATE`) before appending.
    """

    __tablename__ = "log_state"
    id: int = Field(default=1, primary_key=True)
    origin: str
    size: int = Field(sa_column=_bigint())
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogEntry(SQLModel, table=True):
    """A leaf of the log: `data` is the exact byte string that was hashed."""

    __tablename__ = "log_entry"
    index: int = Field(sa_column=_bigint(primary_key=True))
    kind: str = Field(index=True)
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, index=True))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    logged_at: int = Field(sa_column=_bigint(index=True))


class LogTile(SQLModel, table=True):
    """The newest version of one hash tile (tlog-tiles). A partial tile at width
    W is a prefix of every later version, so only the widest is kept."""

    __tablename__ = "log_tile"
    level: int = Field(primary_key=True)
    index: int = Field(sa_column=_bigint(primary_key=True))
    width: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SignedCheckpoint(SQLModel, table=True):
    """Every checkpoint the log ever signed, by tree size."""

    __tablename__ = "signed_checkpoint"
    size: int = Field(sa_column=_bigint(primary_key=True))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: int = Field(sa_column=_bigint())


# --- projections of log entries ---------------------------------------------


class Publisher(SQLModel, table=True):
    """A trusted publisher registered for a project, from its `publisher` entries.

    `id` names the publisher's identity (provider + configuration), so one
    publisher registered for several projects has one id and mints tokens
    covering all of them. Active while `removed_at` is NULL.
    """

    __tablename__ = "publisher"
    row_id: Optional[int] = Field(default=None, primary_key=True)
    id: str = Field(index=True)
    project: str = Field(index=True)
    provider: str
    lookup_key: str = Field(index=True)
    config: str = Field(sa_column=Column(Text, nullable=False))
    added_at: int = Field(sa_column=_bigint())
    added_by: str
    added_log_index: int = Field(sa_column=_bigint())
    removed_at: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))
    removed_by: Optional[str] = None
    removed_log_index: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))


class Exchange(SQLModel, table=True):
    """A successful token exchange, from its `exchange` entry."""

    __tablename__ = "exchange"
    log_index: int = Field(sa_column=_bigint(primary_key=True))
    at: int = Field(sa_column=_bigint(index=True))
    issuer: str = Field(index=True)
    provider: str
    kid: str = Field(index=True)
    jti: Optional[str] = None
    publisher_id: str = Field(index=True)
    token_id: str = Field(unique=True)
    token_expires_at: int = Field(sa_column=_bigint())


class ExchangeClaim(SQLModel, table=True):
    """One identity claim of an exchange: blast-radius queries select on (name, value)."""

    __tablename__ = "exchange_claim"
    __table_args__ = (Index("ix_exchange_claim_name_value", "name", "value"),)
    log_index: int = Field(sa_column=_bigint(primary_key=True))
    name: str = Field(primary_key=True)
    value: str


class ExchangeIdentity(SQLModel, table=True):
    """An exchange's publisher identity in provider-neutral fields
    (`app.oidc.identity.identity_fields`), indexed for blast-radius queries.

    `repository`, `workflow_ref` and `job_workflow_ref` are stored lower-cased
    (`app.oidc.identity.query_key`); read display values from the entry.
    """

    __tablename__ = "exchange_identity"

    log_index: int = Field(sa_column=_bigint(primary_key=True))
    at: int = Field(sa_column=_bigint(index=True))
    provider: str
    repository: Optional[str] = Field(default=None, index=True)
    repository_owner_id: Optional[str] = Field(default=None, index=True)
    workflow: Optional[str] = Field(default=None, index=True)
    workflow_ref: Optional[str] = Field(default=None, index=True)
    job_workflow_ref: Optional[str] = Field(default=None, index=True)
    ref: Optional[str] = Field(default=None, index=True)
    sha: Optional[str] = Field(default=None, index=True)
    environment: Optional[str] = Field(default=None, index=True)
    actor: Optional[str] = Field(default=None, index=True)


class UploadToken(SQLModel, table=True):
    """A minted upload token: only a hash of its secret is kept."""

    __tablename__ = "upload_token"
    id: str = Field(primary_key=True)
    secret_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    exchange_log_index: int = Field(sa_column=_bigint(index=True))
    projects: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: int = Field(sa_column=_bigint(index=True))
    revoked_at: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))


class TokenRevocation(SQLModel, table=True):
    """An upload token revoked before its expiry, from its `revocation` entry.

    The token's own row gets `revoked_at` in the same transaction; this row
    says who revoked it, why, and where in the log that is recorded.
    """

    __tablename__ = "token_revocation"

    token_id: str = Field(primary_key=True)
    revoked_at: int = Field(sa_column=_bigint())
    revoked_by: str
    reason: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    log_index: int = Field(sa_column=_bigint(unique=True))


class Project(SQLModel, table=True):
    __tablename__ = "project"
    name: str = Field(primary_key=True)
    created_at: int = Field(sa_column=_bigint())
    created_log_index: int = Field(sa_column=_bigint())


class ReleaseFile(SQLModel, table=True):
    """An accepted distribution file, from its `upload` entry."""

    __tablename__ = "release_file"
    # a project's files in log order: project pages and the previous release (provenance)
    # walk it without sorting, however many files the project has
    __table_args__ = (Index("ix_release_file_project_log_index", "project", "log_index"),)
    filename: str = Field(primary_key=True)
    project: str
    version: str
    packagetype: str
    size: int = Field(sa_column=_bigint())
    sha256: str = Field(index=True)
    blake2b_256: str
    requires_python: Optional[str] = None
    uploaded_at: int = Field(sa_column=_bigint(index=True))
    log_index: int = Field(sa_column=_bigint(unique=True))
    token_id: str = Field(index=True)  # the upload token's, or (exchange_log_index NULL) the API token's
    # the exchange that minted the upload token; NULL for an upload authorised by an API token
    exchange_log_index: Optional[int] = Field(default=None, sa_column=_bigint(index=True, nullable=True))


class ReleaseAttestation(SQLModel, table=True):
    """A PEP 740 attestation of an accepted file, stored beside it: written by the
    `upload` entry's projection in the entry's own transaction. The entry records
    `predicate_type` and `sha256` (of `body`, the attestation's RFC 8785 canonical
    JSON as uploaded); `body` itself is not in the log, and `pubtrail audit` checks
    that it hashes to the logged digest."""

    __tablename__ = "release_attestation"
    log_index: int = Field(sa_column=_bigint(primary_key=True))  # the upload entry's
    position: int = Field(primary_key=True)  # its place in the entry's `attestations`
    filename: str = Field(index=True)
    predicate_type: str
    sha256: str
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ApiToken(SQLModel, table=True):
    """A long-lived API token of one project, from its `api_token` entries (create,
    then maybe revoke). `secret_hash` is operational (SHA-256 of the secret, which no
    entry holds); every other column comes from the entries."""

    __tablename__ = "api_token"
    id: str = Field(primary_key=True)
    project: str = Field(index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    secret_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: int = Field(sa_column=_bigint())
    created_by: str
    created_log_index: int = Field(sa_column=_bigint(unique=True))
    revoked_at: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))
    revoked_by: Optional[str] = None
    revoked_log_index: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))


class ProjectSetting(SQLModel, table=True):
    """A project's settings, from its newest `project_settings` entry."""

    __tablename__ = "project_setting"
    project: str = Field(primary_key=True)
    trusted_publishing_only: bool
    updated_at: int = Field(sa_column=_bigint())
    updated_by: str
    log_index: int = Field(sa_column=_bigint(unique=True))


class Incident(SQLModel, table=True):
    """A declared incident, from its `incident` entry (`app.services.incidents.incident_rows`)."""

    __tablename__ = "incident"
    id: str = Field(primary_key=True)
    log_index: int = Field(sa_column=_bigint(unique=True))
    declared_at: int = Field(sa_column=_bigint())
    description: str = Field(sa_column=Column(Text, nullable=False))
    criteria: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON (RFC 8785)
    actor: str


class IncidentToken(SQLModel, table=True):
    """An upload or API token an incident revoked; the token's own row gets `revoked_at`
    (the incident's time) in the same transaction."""

    __tablename__ = "incident_token"
    incident_log_index: int = Field(sa_column=_bigint(primary_key=True))
    token_id: str = Field(primary_key=True, index=True)


# --- operational state (not logged) ------------------------------------------


class UsedJti(SQLModel, table=True):
    """OIDC `jti` values already exchanged, kept until after the token's expiry."""

    __tablename__ = "used_jti"
    __table_args__ = (UniqueConstraint("issuer", "jti"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    issuer: str
    jti: str
    expires_at: int = Field(sa_column=_bigint(index=True))


class FailedExchange(SQLModel, table=True):
    """A refused token exchange (bounded audit trail, pruned oldest first)."""

    __tablename__ = "failed_exchange"
    id: Optional[int] = Field(default=None, primary_key=True)
    at: int = Field(sa_column=_bigint(index=True))
    issuer: Optional[str] = None
    code: str
    description: str = Field(sa_column=Column(Text, nullable=False))
    repository: Optional[str] = None


class LogHalt(SQLModel, table=True):
    """Present while signing is stopped: the self-audit found stored tiles,
    entries or checkpoints that disagree (`app.services.self_audit`). Every
    process's sequencer reads it under the write lock before each batch;
    `pubtrail audit` deletes it when the full audit passes."""

    __tablename__ = "log_halt"
    id: int = Field(default=1, primary_key=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: int = Field(sa_column=_bigint())


class Monitor(SQLModel, table=True):
    """A server-side watch rule whose matching entries are POSTed to a webhook
    (`app.services.monitors`). `cursor` is the next log index to scan for it:
    the scan reads only entries below the latest signed checkpoint, which are
    all committed, so advancing it never skips one."""

    __tablename__ = "monitor"
    id: str = Field(primary_key=True)
    name: str
    match: str = Field(sa_column=Column(Text, nullable=False))  # the rule's criteria as JSON
    webhook_url: str = Field(sa_column=Column(Text, nullable=False))
    secret: str  # whsec_...: signing needs it, so it is stored as is
    created_at: int = Field(sa_column=_bigint())
    created_by: str
    cursor: int = Field(sa_column=_bigint())


class WebhookDelivery(SQLModel, table=True):
    """One event: an entry that matched a monitor. `id` is the event id every
    attempt carries (`webhook-id`); `body` is fixed when the event is stored,
    so every retry sends the same bytes. A process claims a due attempt by
    setting `lease_owner`/`lease_until` only where the lease expired."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)
    id: str = Field(primary_key=True)
    monitor_id: str = Field(index=True)
    entry_index: int = Field(sa_column=_bigint())
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str  # pending, delivered, failed (gave up)
    attempts: int = 0
    created_at: int = Field(sa_column=_bigint())
    next_attempt_at: int = Field(sa_column=_bigint())
    lease_owner: Optional[str] = None
    lease_until: int = Field(default=0, sa_column=_bigint())
    delivered_at: Optional[int] = Field(default=None, sa_column=_bigint(nullable=True))
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class WitnessCosignature(SQLModel, table=True):
    """A cosignature a configured witness gave the log's checkpoint at `size`
    (operational: gathered from witnesses, not a projection of entries).
    `witness` is the witness key's `name+keyid`; `line` the whole note
    signature line, verified before it was stored."""

    __tablename__ = "witness_cosignature"
    size: int = Field(sa_column=_bigint(primary_key=True))
    witness: str = Field(primary_key=True)
    line: str = Field(sa_column=Column(Text, nullable=False))
    timestamp: int = Field(sa_column=_bigint())
    received_at: int = Field(sa_column=_bigint())
