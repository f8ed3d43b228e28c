"""The log's entry kinds (v1) and their canonical encoding.

An entry's leaf bytes are its RFC 8785 (JSON Canonicalization Scheme)
encoding: anyone can re-encode a decoded entry and get the same bytes, hence
the same leaf hash. Every entry has `kind`, `v` (schema version, 1) and
`time` (RFC 3339, UTC, whole seconds).

    exchange   an OIDC token traded for an upload token: issuer, provider, the
               token's signing key id, identity claims, jti, publisher, the
               projects the upload token covers, its id and expiry
    upload     a release file accepted: its hashes, the upload token's id, the
               log index of the exchange that minted it, the publisher identity
    publisher  a trusted publisher added to or removed from a project, by whom
    revocation an upload token revoked before its expiry: which token, the
               exchange that minted it, by whom, and why
    incident   an incident declared: its id, description, the blast-radius
               criteria it covers (canonical JSON object), by whom, and the
               upload tokens it revoked

Never a raw OIDC token, never an upload token's secret.

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
is added without touching the others; a change to an existing kind's fields
gets a new `v` for that kind, and `decode` keeps accepting every earlier
version of every kind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any, ClassVar

import rfc8785

VERSION = 1


class EntryError(ValueError):
    """Bytes that are not a canonical v1 entry."""


def rfc3339(unix_seconds: float) -> str:
    return datetime.fromtimestamp(int(unix_seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class Entry:
    kind: ClassVar[str] = ""
    time: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "v": VERSION, **asdict(self)}

    def encode(self) -> bytes:
        """The canonical bytes: the leaf the log hashes."""
        return rfc8785.dumps(self.to_json())


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


@dataclass(frozen=True)
class UploadEntry(Entry):
    kind: ClassVar[str] = "upload"
    project: str
    version: str
    filename: str
    packagetype: str
    size: int
    sha256: str
    blake2b_256: str
    requires_python: str | None
    token_id: str
    exchange_index: int
    publisher: dict[str, Any]


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
    revoked_tokens: list[str]  # sorted token ids, each valid when the incident was declared


KINDS: dict[str, type[Entry]] = {
    cls.kind: cls for cls in (ExchangeEntry, UploadEntry, PublisherEntry, RevocationEntry, IncidentEntry)
}


def decode(data: bytes) -> Entry:
    """Parse leaf bytes into an entry; raise EntryError unless they are canonical v1."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError(f"entry is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EntryError("entry is not a JSON object")
    kind, version = raw.pop("kind", None), raw.pop("v", None)
    cls = KINDS.get(kind)
    if cls is None:
        raise EntryError(f"unknown entry kind {kind!r}")
    if version != VERSION:
        raise EntryError(f"unsupported entry version {version!r}")
    names = {f.name for f in fields(cls)}
    if set(raw) != names:
        raise EntryError(f"{kind} entry fields {sorted(raw)} are not {sorted(names)}")
    entry = cls(**raw)
    if entry.encode() != data:
        raise EntryError("entry bytes are not in canonical (RFC 8785) form")
    return entry
