"""The log's entry kinds and their canonical encoding.

An entry's leaf bytes are its RFC 8785 (JSON Canonicalization Scheme)
encoding: anyone can re-encode a decoded entry and get the same bytes, hence
the same leaf hash. Every entry has `kind`, `v` (the schema version of that
kind) and `time` (RFC 3339, UTC, whole seconds).

    exchange   an OIDC token traded for an upload token: issuer, provider, the
               token's signing key id, identity claims, jti, publisher, the
               projects the upload token covers, its id and expiry
    upload     a release file accepted: its hashes, the token that authorised
               it and how (v2: `auth`, `attestations`; see below)
    publisher  a trusted publisher added to or removed from a project, by whom
    revocation an upload token revoked before its expiry: which token, the
               exchange that minted it, by whom, and why
    incident   an incident declared: its id, description, the blast-radius
               criteria it covers (canonical JSON object), by whom, and the
               tokens it revoked (`revoked_tokens`, sorted ids): upload tokens
               (each id an earlier exchange's token_id) and long-lived API
               tokens (each id an earlier api_token create entry's token_id;
               the token needs no api_token revoke entry of its own)
    api_token  a long-lived project API token created or revoked: action,
               project, token id, description, by whom (never the secret)
    project_settings  a project's settings set by an admin: whether it takes
               trusted-publishing uploads only, by whom

Never a raw OIDC token, never an upload or API token's secret.

Upload entry versions. v1 (every upload logged before API tokens existed)
has `token_id`, `exchange_index` and `publisher` and was always trusted
publishing. v2 adds `auth` and `attestations`:

    auth = "trusted_publishing": token_id is the upload token, exchange_index
           the log index of the exchange that minted it, publisher the
           identity copied from that exchange (as in v1);
    auth = "api_token": token_id is the API token's id (its `api_token`
           create entry names it); exchange_index and publisher are null.
    attestations: a list (possibly empty) of {"predicate_type", "sha256"},
           the SHA-256 (hex) of each PEP 740 attestation's RFC 8785 JSON.

Decoded v1 upload entries read as `auth="trusted_publishing"` and
`attestations=None` and re-encode to their v1 bytes; new uploads are v2.

Which "project" is which. In `publisher` entries the top-level `project` is
always the index (PyPI) project the publisher was registered under, in
normalized form; the publisher's own configuration is the separate `config`
object, where GitLab and ActiveState publishers have a `project` field of
their own (the GitLab or ActiveState project). This has held for every
`publisher` entry ever logged, so a reader of old entries tells them apart
the same way. Exchange and upload entries name index projects only
(`projects`, `project`); provider-side names live in `claims` / `publisher`.

How the format evolves. An entry's bytes are never rewritten: the leaf hash
of every logged entry stays valid forever. A new kind (as `revocation` was)
is added without touching the others. Versions are per kind: a change to an
existing kind's fields gets a new `v` for that kind only (upload is at v2,
every other kind at v1), each kind lists the field set of every version it
ever had (`Entry.VERSIONS`), and `decode` keeps accepting every earlier
version of every kind, refusing a field set that is not exactly one
version's.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar

import rfc8785

#: the version of every kind that has only ever had one (all but `upload`)
VERSION = 1

#: `UploadEntry.auth` values
TRUSTED_PUBLISHING = "trusted_publishing"
API_TOKEN = "api_token"
AUTHS = (TRUSTED_PUBLISHING, API_TOKEN)

_HEX64 = re.compile(r"[0-9a-f]{64}")


class EntryError(ValueError):
    """Bytes (or fields) that are not a canonical entry of a known kind and version."""


def rfc3339(unix_seconds: float) -> str:
    return datetime.fromtimestamp(int(unix_seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class Entry:
    kind: ClassVar[str] = ""
    #: every version of this kind and the JSON field names it has (besides kind and v)
    VERSIONS: ClassVar[dict[int, frozenset[str]]] = {}
    time: str

    @property
    def schema_version(self) -> int:
        """This entry's `v` (its kind's schema version)."""
        return VERSION

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "v": self.schema_version, **asdict(self)}

    def encode(self) -> bytes:
        """The canonical bytes: the leaf the log hashes."""
        return rfc8785.dumps(self.to_json())

    @classmethod
    def build(cls, version: int, values: dict[str, Any]) -> Entry:
        """The entry of this kind at ``version`` from its JSON fields (without kind and v)."""
        return cls(**values)


@dataclass(frozen=True)
class ExchangeEntry(Entry):
    kind: ClassVar[str] = "exchange"
    issuer: str
    provider: str
    kid: str
    claims: dict[str, Any]
    jti: str | None
    publisher_id: str
    projects: list[str]
    token_id: str
    token_expires: str


_UPLOAD_V1 = (
    "time", "project", "version", "filename", "packagetype", "size", "sha256", "blake2b_256",
    "requires_python", "token_id", "exchange_index", "publisher",
)


@dataclass(frozen=True)
class UploadEntry(Entry):
    """An accepted file. ``v`` is 2 for every new upload; decoded v1 entries keep
    ``v=1``, read as ``auth="trusted_publishing"``, ``attestations=None``, and
    encode without those two fields (their logged bytes). Inconsistent fields
    (an API-token upload naming an exchange, a trusted-publishing one without
    it, a v1 entry with v2 fields) raise :class:`EntryError`."""

    kind: ClassVar[str] = "upload"
    VERSIONS: ClassVar[dict[int, frozenset[str]]] = {
        1: frozenset(_UPLOAD_V1),
        2: frozenset(_UPLOAD_V1 + ("auth", "attestations")),
    }
    project: str
    version: str
    filename: str
    packagetype: str
    size: int
    sha256: str
    blake2b_256: str
    requires_python: str | None
    token_id: str
    exchange_index: int | None
    publisher: dict[str, Any] | None
    auth: str = TRUSTED_PUBLISHING
    attestations: list[dict[str, str]] | None = field(default=None)
    v: int = 2

    @property
    def schema_version(self) -> int:
        return self.v

    def __post_init__(self) -> None:
        if self.v == 2 and self.attestations is None:
            object.__setattr__(self, "attestations", [])
        _check_upload(self)

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, **asdict(self)}
        if self.v == 1:
            del out["auth"], out["attestations"]
        return out

    @classmethod
    def build(cls, version: int, values: dict[str, Any]) -> Entry:
        return cls(**values, v=version)


def _check_upload(entry: UploadEntry) -> None:
    def refuse(why: str):
        raise EntryError(f"upload entry v{entry.v}: {why}")

    if entry.v not in UploadEntry.VERSIONS:
        refuse("unsupported version")
    for name in ("time", "project", "version", "filename", "packagetype", "sha256", "blake2b_256", "token_id"):
        if not isinstance(getattr(entry, name), str):
            refuse(f"{name} is not a string")
    if not isinstance(entry.size, int) or isinstance(entry.size, bool):
        refuse("size is not an integer")
    if entry.requires_python is not None and not isinstance(entry.requires_python, str):
        refuse("requires_python is neither a string nor null")
    if entry.v == 1 and (entry.auth != TRUSTED_PUBLISHING or entry.attestations is not None):
        refuse("auth and attestations are v2 fields")
    if entry.auth not in AUTHS:
        refuse(f"auth is {entry.auth!r}, not one of {', '.join(AUTHS)}")
    if entry.auth == TRUSTED_PUBLISHING:
        if not isinstance(entry.exchange_index, int) or isinstance(entry.exchange_index, bool):
            refuse("a trusted-publishing upload names the exchange (exchange_index) that minted its token")
        if not isinstance(entry.publisher, dict):
            refuse("a trusted-publishing upload carries its publisher identity")
    elif entry.exchange_index is not None or entry.publisher is not None:
        refuse("an API-token upload has no exchange_index and no publisher")
    if entry.v == 2:
        if not isinstance(entry.attestations, list):
            refuse("attestations is not a list")
        for item in entry.attestations:
            if (
                not isinstance(item, dict)
                or set(item) != {"predicate_type", "sha256"}
                or not isinstance(item["predicate_type"], str)
                or not isinstance(item["sha256"], str)
                or not _HEX64.fullmatch(item["sha256"])
            ):
                refuse("each attestation is {predicate_type, sha256 (64 lower-case hex digits)}")


@dataclass(frozen=True)
class PublisherEntry(Entry):
    kind: ClassVar[str] = "publisher"
    action: str  # "add" or "remove"
    project: str
    publisher_id: str
    provider: str
    config: dict[str, Any]
    actor: str


@dataclass(frozen=True)
class RevocationEntry(Entry):
    kind: ClassVar[str] = "revocation"
    token_id: str
    exchange_index: int  # the log index of the exchange that minted the token
    actor: str
    reason: str | None


@dataclass(frozen=True)
class IncidentEntry(Entry):
    kind: ClassVar[str] = "incident"
    incident_id: str
    description: str
    criteria: dict[str, str]  # app.services.criteria.Criteria.to_json()
    actor: str
    revoked_tokens: list[str]  # sorted upload and API token ids, each live when the incident was declared


@dataclass(frozen=True)
class ApiTokenEntry(Entry):
    """A long-lived API token of one project created or revoked (never its secret)."""

    kind: ClassVar[str] = "api_token"
    action: str  # "create" or "revoke"
    project: str
    token_id: str
    description: str
    actor: str

    def __post_init__(self) -> None:
        if self.action not in ("create", "revoke"):
            raise EntryError(f"api_token entry: action is {self.action!r}, not create or revoke")
        for name in ("project", "token_id", "description", "actor"):
            if not isinstance(getattr(self, name), str):
                raise EntryError(f"api_token entry: {name} is not a string")


@dataclass(frozen=True)
class ProjectSettingsEntry(Entry):
    """A project's settings as an admin set them; the newest entry of a project holds."""

    kind: ClassVar[str] = "project_settings"
    project: str
    trusted_publishing_only: bool
    actor: str

    def __post_init__(self) -> None:
        if not isinstance(self.trusted_publishing_only, bool):
            raise EntryError("project_settings entry: trusted_publishing_only is not a boolean")
        if not isinstance(self.project, str) or not isinstance(self.actor, str):
            raise EntryError("project_settings entry: project and actor are strings")


KINDS: dict[str, type[Entry]] = {
    cls.kind: cls
    for cls in (
        ExchangeEntry, UploadEntry, PublisherEntry, RevocationEntry, IncidentEntry, ApiTokenEntry, ProjectSettingsEntry
    )
}
for _cls in KINDS.values():
    if not _cls.VERSIONS:
        _cls.VERSIONS = {VERSION: frozenset(f.name for f in fields(_cls))}
del _cls


def build(kind: Any, version: Any, values: dict[str, Any]) -> Entry:
    """The entry of ``kind`` at ``version`` from its JSON fields (without kind and v);
    EntryError unless they are exactly the fields of that kind's version and consistent."""
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EntryError(f"unknown entry kind {kind!r}")
    names = cls.VERSIONS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
    if names is None:
        raise EntryError(f"unsupported entry version {version!r} of kind {kind}")
    if set(values) != names:
        raise EntryError(f"{kind} v{version} entry fields {sorted(values)} are not {sorted(names)}")
    try:
        return cls.build(version, values)
    except TypeError as exc:
        raise EntryError(f"{kind} v{version} entry fields are malformed: {exc}") from None


def decode(data: bytes) -> Entry:
    """Parse leaf bytes into an entry; raise EntryError unless they are the canonical
    bytes of a known kind at one of its versions."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError(f"entry is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EntryError("entry is not a JSON object")
    kind, version = raw.pop("kind", None), raw.pop("v", None)
    entry = build(kind, version, raw)
    if entry.encode() != data:
        raise EntryError("entry bytes are not in canonical (RFC 8785) form")
    return entry
