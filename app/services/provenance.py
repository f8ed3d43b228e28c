"""Provenance: where a file came from, and what a project's history is, as provable answers.

Every answer pins ONE signed checkpoint first (`checkpoint`, its `tree_size`)
and then reads only rows whose log entries lie below that size, so every log
item named in it can be proven at that size even while the log grows.

- :meth:`Provenance.of_file` (``GET /api/v1/provenance/{sha256}``): the file's
  upload entry and the exchange entry that minted its upload token, each with
  its inclusion proof at the answer's size (`ProvenEntry` JSON), the
  publisher identity of that exchange (`app.oidc.identity.identity_fields`),
  the incidents covering the upload and the identity continuity (below), and
  its PEP 740 attestations as the upload entry logged them (`attestations`:
  predicate type and digest each) with `provenance_url`, the Integrity API
  URL that serves them (null without attestations).
  Fields are read from the upload entry, not from the projection, and the
  projection's exchange index must be the one the entry names.
  How the upload was authorised is said plainly: `auth` (the entry's),
  `authorised_by` (`app.identity.authorised_by`: "uploaded with API token
  'ci-legacy' created 2024-06-01", or the trusted publisher). An API-token
  upload has `exchange` and `publisher` null and instead `api_token`: the
  token's `api_token` create entry, proven like the others. `flags` lists
  `api_token_on_trusted_project` when a trusted publisher was registered for
  the project when an API-token upload was logged (server state at that
  index, like incidents: not provable from this answer alone).
- :meth:`Provenance.project` / :meth:`Provenance.release` (``GET
  /api/v1/projects/{project}[/{version}]``): releases and files, each file
  with its publisher identity, the index and leaf hash of its upload and of
  its exchange, and its identity continuity; and the project's trusted
  publisher history (every add and remove: index, leaf hash, time, actor,
  provider, config). No inclusion proofs there: a page of 500 files would
  carry 1,000 proofs. Each item is provable at the answer's size with
  ``/api/v1/log/proof/inclusion?index=I&tree_size=N`` (or by its leaf hash),
  and a file's provenance answer carries full proofs. A file with PEP 740
  attestations has its Integrity API URL as `provenance_url` (null otherwise).

Identity continuity. A file's *previous release* is the newest upload of the
same project with a different version logged before the file's upload (none
for a project's first release). The identity compared is (provider,
repository, workflow, environment); repositories compare case-insensitively
(GitHub and GitLab names are), the rest exactly. In a provenance answer both
identities are read from the `publisher` object of the two upload entries
the answer proves (`upload` and `previous_release.upload`), so a client can
recompute `changed` from proven data alone.

Cost: a provenance answer is a constant number of indexed queries (file by
sha256, previous release by project and log index, the entries by index)
plus proofs from the cached tiles; a project page is three queries whatever
its number of files, plus one for the project's API tokens when it has
API-token uploads.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Protocol, Sequence

from packaging.version import InvalidVersion, Version
from sqlalchemy import Engine, and_, bindparam, exists, select

from app import tlog
from app.entries import rfc3339
from app.distributions.simple import integrity_path
from app.errors import BadRequest, NotFound
from app.identity import CONTINUITY_FIELDS, authorised_by, continuity, identity_fields
from app.services.log_reader import EntryIntegrityError, LogReader
from app.services.publishers import project_name
from app.storage.log_store import StoredCheckpoint
from app.storage.tables import ApiToken, LogEntry, Publisher, ReleaseAttestation, ReleaseFile

__all__ = ["CONTINUITY_FIELDS", "Provenance", "continuity", "parse_sha256"]

#: the identity fields whose change identity continuity reports
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_release = ReleaseFile.__table__
_attestation = ReleaseAttestation.__table__
_entry = LogEntry.__table__
_publisher = Publisher.__table__
_api_token = ApiToken.__table__

#: flags a provenance answer can raise (`flags`), each also a watch-rule event (`app.watch.EVENTS`)
API_TOKEN_ON_TRUSTED_PROJECT = "api_token_on_trusted_project"

# Statements built once, executed with parameters.
_FILE_BY_SHA256 = (
    select(
        _release.c.log_index, _release.c.exchange_log_index, _release.c.project, _release.c.version,
        _release.c.token_id,
    )
    .where(_release.c.sha256 == bindparam("sha256"))
    .order_by(_release.c.log_index)
    .limit(1)
)
_PREVIOUS_RELEASE = (
    select(_release.c.log_index, _release.c.version, _release.c.filename)
    .where(
        _release.c.project == bindparam("project"),
        _release.c.version != bindparam("version"),
        _release.c.log_index < bindparam("before"),
    )
    .order_by(_release.c.log_index.desc())
    .limit(1)
)
_upload_leaf = _entry.alias("upload_leaf")
_PROJECT_FILES = (
    select(
        _release.c.filename,
        _release.c.version,
        _release.c.packagetype,
        _release.c.size,
        _release.c.sha256,
        _release.c.blake2b_256,
        _release.c.requires_python,
        _release.c.uploaded_at,
        _release.c.log_index,
        _release.c.exchange_log_index,
        _release.c.token_id,
        _upload_leaf.c.leaf_hash,
        _release.c.project,
        exists().where(_attestation.c.log_index == _release.c.log_index).label("attested"),
    )
    .join(_upload_leaf, _upload_leaf.c.index == _release.c.log_index)
    .where(_release.c.project == bindparam("project"), _release.c.log_index < bindparam("size"))
    .order_by(_release.c.log_index)
)
_PROJECT_EXCHANGES = select(_entry.c.index, _entry.c.leaf_hash, _entry.c.data).where(
    _entry.c.index.in_(
        select(_release.c.exchange_log_index).where(
            _release.c.project == bindparam("project"), _release.c.log_index < bindparam("size")
        )
    )
)
# the create entry of the API token behind an upload
_API_TOKEN_CREATED = select(_api_token.c.created_log_index).where(_api_token.c.id == bindparam("id"))
# a project's API tokens created below a size, with their create entries' leaf hashes (project pages)
_token_leaf = _entry.alias("token_leaf")
_PROJECT_API_TOKENS = (
    select(
        _api_token.c.id, _api_token.c.description, _api_token.c.created_at, _api_token.c.created_log_index,
        _token_leaf.c.leaf_hash,
    )
    .join(_token_leaf, _token_leaf.c.index == _api_token.c.created_log_index)
    .where(_api_token.c.project == bindparam("project"), _api_token.c.created_log_index < bindparam("size"))
)
# was a trusted publisher registered for the project when the entry at `at` was logged?
_TRUSTED_AT = select(_publisher.c.added_log_index).where(
    _publisher.c.project == bindparam("project"),
    _publisher.c.added_log_index < bindparam("at"),
    (_publisher.c.removed_log_index.is_(None)) | (_publisher.c.removed_log_index > bindparam("at")),
).limit(1)
_added_leaf = _entry.alias("added_leaf")
_removed_leaf = _entry.alias("removed_leaf")
_PUBLISHER_HISTORY = (
    select(
        _publisher.c.id,
        _publisher.c.provider,
        _publisher.c.config,
        _publisher.c.added_at,
        _publisher.c.added_by,
        _publisher.c.added_log_index,
        _publisher.c.removed_at,
        _publisher.c.removed_by,
        _publisher.c.removed_log_index,
        _added_leaf.c.leaf_hash.label("added_leaf_hash"),
        _removed_leaf.c.leaf_hash.label("removed_leaf_hash"),
    )
    .join(_added_leaf, _added_leaf.c.index == _publisher.c.added_log_index)
    .outerjoin(
        _removed_leaf,
        and_(_removed_leaf.c.index == _publisher.c.removed_log_index, _removed_leaf.c.index < bindparam("size")),
    )
    .where(_publisher.c.project == bindparam("project"), _publisher.c.added_log_index < bindparam("size"))
)


class IncidentCoverage(Protocol):
    """The incidents whose blast radius holds an upload, as `{id, description, log_index,
    declared_at}`. A project page asks for all its files at once through `covering_many`
    (`{upload_index: [...]}`) when the coverage offers it, else file by file."""

    def covering(self, upload_index: int) -> list[dict[str, Any]]: ...


def parse_sha256(text: str) -> str:
    """The SHA-256 as pubtrail stores it (lower-case hex); BadRequest unless 64 hex digits.

    Upper-case digits are accepted (some tools, e.g. PowerShell's Get-FileHash,
    print them) and mean the same digest."""
    if not _SHA256.fullmatch(text):
        raise BadRequest("sha256 must be 64 hex digits (the SHA-256 of the file)")
    return text.lower()


def parse_version(text: str) -> str:
    """A release version as stored (PEP 440, normalized); BadRequest otherwise."""
    try:
        return str(Version(text))
    except InvalidVersion:
        raise BadRequest(f"{text!r} is not a valid PEP 440 version") from None


class Provenance:
    """Read-only answers about files and projects, each pinned to one signed checkpoint."""

    def __init__(self, engine: Engine, reader: LogReader, incidents: IncidentCoverage | None = None):
        self.engine = engine
        self.reader = reader
        #: set once incidents exist; None answers `incidents: []`
        self.incidents = incidents

    # --- one file ---------------------------------------------------------------

    def of_file(self, sha256: str) -> dict[str, Any]:
        """The provenance of the file whose SHA-256 is `sha256` (64 hex digits, either case).

        BadRequest for anything else; NotFound when no accepted file has it."""
        digest = parse_sha256(sha256)
        checkpoint = self.reader.latest()
        with self.engine.connect() as conn:
            row = conn.execute(_FILE_BY_SHA256, {"sha256": digest}).first()
            if row is None:
                raise NotFound(f"no uploaded file has sha256 {digest}")
            upload_index, exchange_index = row.log_index, row.exchange_log_index
            if upload_index >= checkpoint.size:  # committed by another process after our cached checkpoint
                checkpoint = self.reader.latest(fresh=True)
                if upload_index >= checkpoint.size:
                    raise NotFound(f"the upload of sha256 {digest} is not in a signed checkpoint yet")
            previous = conn.execute(
                _PREVIOUS_RELEASE, {"project": row.project, "version": row.version, "before": upload_index}
            ).first()
            flags = []
            if exchange_index is None:  # an API-token upload: its token's create entry instead of an exchange
                exchange_index = conn.execute(_API_TOKEN_CREATED, {"id": row.token_id}).scalar()
                if exchange_index is None:
                    raise EntryIntegrityError(
                        f"upload entry {upload_index} names API token {row.token_id}, which has no create entry "
                        "(the api_token projection disagrees with the log; run `pubtrail audit`)"
                    )
                trusted = conn.execute(_TRUSTED_AT, {"project": row.project, "at": upload_index}).first()
                if trusted is not None:
                    flags.append(API_TOKEN_ON_TRUSTED_PROJECT)
        indexes = [upload_index, exchange_index] + ([previous.log_index] if previous is not None else [])
        proven = [p.to_json() for p in self.reader.proven(indexes, checkpoint.size)]
        upload, authorising = proven[0], proven[1]
        _check_pair(upload, authorising, row.project, row.version)
        entry = upload["entry"]
        if entry.get("auth") == "api_token":
            exchange, api_token, publisher = None, authorising, None
        else:
            exchange, api_token = authorising, None
            exchange_entry = exchange["entry"]
            publisher = identity_fields(exchange_entry["issuer"], exchange_entry["provider"], exchange_entry["claims"])
        auth = entry.get("auth", "trusted_publishing")
        answer = {
            "project": entry["project"],
            "version": entry["version"],
            "filename": entry["filename"],
            "packagetype": entry["packagetype"],
            "size": entry["size"],
            "sha256": entry["sha256"],
            "blake2b_256": entry["blake2b_256"],
            "uploaded_at": entry["time"],
            "auth": auth,
            "authorised_by": authorised_by(auth, publisher, api_token["entry"] if api_token else None),
            "publisher": publisher,
            "upload": upload,
            "exchange": exchange,
            "api_token": api_token,
            "flags": flags,
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.size,
            "incidents": self._incidents(upload_index),
            **_attestations(entry),
        }
        previous_upload = proven[2] if previous is not None else None
        answer["identity_continuity"] = {
            # an API-token upload has no publisher identity: every field None, a change from any publisher
            **continuity(entry["publisher"] or {}, (previous_upload["entry"]["publisher"] or {}) if previous_upload else None),
            "previous_release": None
            if previous_upload is None
            else {
                "version": previous_upload["entry"]["version"],
                "filename": previous_upload["entry"]["filename"],
                "upload": previous_upload,
            },
        }
        return answer

    def _incidents(self, upload_index: int) -> list[dict[str, Any]]:
        return [] if self.incidents is None else list(self.incidents.covering(upload_index))

    # --- project pages ------------------------------------------------------------

    def project(self, project: str) -> dict[str, Any]:
        """A project's releases (oldest first), their files (in log order) and its
        trusted-publisher history; NotFound for a project with neither files nor
        publisher history, BadRequest for an invalid name."""
        name = project_name(project)
        checkpoint, files, history = self._read_project(name)
        releases: dict[str, list[dict[str, Any]]] = {}
        for file in files:
            releases.setdefault(file["version"], []).append(file)
        return {
            "project": name,
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.size,
            "releases": [{"version": version, "files": items} for version, items in releases.items()],
            "publisher_history": history,
        }

    def release(self, project: str, version: str) -> dict[str, Any]:
        """One release of a project: its files as in :meth:`project`; NotFound for an
        unknown project or version, BadRequest for an invalid name or version."""
        name = project_name(project)
        wanted = parse_version(version)
        checkpoint, files, _history = self._read_project(name)
        chosen = [f for f in files if f["version"] == wanted]
        if not chosen:
            raise NotFound(f"project {name} has no release {wanted}")
        return {
            "project": name,
            "version": wanted,
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.size,
            "files": chosen,
        }

    def _read_project(
        self, name: str
    ) -> tuple[StoredCheckpoint, list[dict[str, Any]], list[dict[str, Any]]]:
        """The latest checkpoint, and the project's files and publisher history below its size;
        NotFound when there are none (after re-reading the checkpoint, which may be another
        process's older one in this process's cache)."""
        checkpoint = self.reader.latest()
        rows, exchanges, publishers = self._project_rows(name, checkpoint.size)
        if not rows and not publishers:
            checkpoint = self.reader.latest(fresh=True)
            rows, exchanges, publishers = self._project_rows(name, checkpoint.size)
            if not rows and not publishers:
                raise NotFound(f"no project {name}: it has no files and never had a trusted publisher")
        identities: dict[int, tuple[str, dict[str, Any]]] = {}
        for ex in exchanges:
            entry = _checked_entry(ex.index, bytes(ex.data), bytes(ex.leaf_hash))
            identities[ex.index] = (
                bytes(ex.leaf_hash).hex(),
                identity_fields(entry["issuer"], entry["provider"], entry["claims"]),
            )
        tokens: dict[str, dict[str, Any]] = {}
        if any(row.exchange_log_index is None for row in rows):  # API-token uploads: one more query
            with self.engine.connect() as conn:
                for token in conn.execute(_PROJECT_API_TOKENS, {"project": name, "size": checkpoint.size}):
                    tokens[token.id] = {
                        "id": token.id, "index": token.created_log_index, "leaf_hash": bytes(token.leaf_hash).hex(),
                        "description": token.description, "time": rfc3339(token.created_at),
                    }
        covering = self._incidents_of([row.log_index for row in rows])
        return (
            checkpoint,
            _files(rows, identities, covering, tokens, publishers),
            _history(publishers, checkpoint.size),
        )

    def _incidents_of(self, upload_indexes: list[int]) -> dict[int, list[dict[str, Any]]]:
        if self.incidents is None or not upload_indexes:
            return {}
        many = getattr(self.incidents, "covering_many", None)
        if many is not None:
            return many(upload_indexes)
        return {index: self.incidents.covering(index) for index in upload_indexes}

    def _project_rows(self, name: str, size: int) -> tuple[list[Any], list[Any], list[Any]]:
        params = {"project": name, "size": size}
        with self.engine.connect() as conn:
            rows = conn.execute(_PROJECT_FILES, params).all()
            exchanges = conn.execute(_PROJECT_EXCHANGES, params).all() if rows else []
            publishers = conn.execute(_PUBLISHER_HISTORY, params).all()
        return rows, exchanges, publishers


def _files(
    rows: Sequence[Any],
    identities: Mapping[int, tuple[str, dict[str, Any]]],
    incidents: Mapping[int, list[dict[str, Any]]],
    tokens: Mapping[str, dict[str, Any]] | None = None,
    publishers: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Each file's JSON, rows in log order. Its previous release is found in one pass:
    the file just before it, or, when that one has the same version, its previous release.
    An API-token upload names its token (`api_token`: id, description, the index and leaf
    hash of its create entry) instead of an exchange and a publisher."""
    out: list[dict[str, Any]] = []
    previous_of: list[int | None] = []  # position in `out` of each file's previous release
    for position, row in enumerate(rows):
        token, flags = None, []
        if row.exchange_log_index is None:
            token = (tokens or {}).get(row.token_id)
            if token is None:
                raise EntryIntegrityError(
                    f"API token {row.token_id} named by upload {row.log_index} has no create entry in storage"
                )
            leaf_hash, identity = None, None
            if _trusted_at(publishers, row.log_index):
                flags.append(API_TOKEN_ON_TRUSTED_PROJECT)
        elif row.exchange_log_index not in identities:
            raise EntryIntegrityError(
                f"exchange entry {row.exchange_log_index} named by upload {row.log_index} is missing from storage"
            )
        else:
            leaf_hash, identity = identities[row.exchange_log_index]
        if position == 0:
            previous = None
        elif rows[position - 1].version != row.version:
            previous = position - 1
        else:
            previous = previous_of[position - 1]
        previous_of.append(previous)
        before = out[previous] if previous is not None else None
        out.append(
            {
                "filename": row.filename,
                "version": row.version,
                "packagetype": row.packagetype,
                "size": row.size,
                "sha256": row.sha256,
                "blake2b_256": row.blake2b_256,
                "requires_python": row.requires_python,
                "uploaded_at": rfc3339(row.uploaded_at),
                "upload": {"index": row.log_index, "leaf_hash": bytes(row.leaf_hash).hex()},
                "auth": "api_token" if token is not None else "trusted_publishing",
                "authorised_by": authorised_by(
                    "api_token" if token is not None else "trusted_publishing", identity, token
                ),
                "exchange": None if token is not None else {"index": row.exchange_log_index, "leaf_hash": leaf_hash},
                "api_token": token,
                "publisher": identity,
                "flags": flags,
                "identity_continuity": {
                    **continuity(identity or {}, (before["publisher"] or {}) if before else None),
                    "previous_release": None
                    if before is None
                    else {"version": before["version"], "filename": before["filename"], "upload": before["upload"]},
                },
                "incidents": list(incidents.get(row.log_index, ())),
                "provenance_url": integrity_path(row.project, row.version, row.filename) if row.attested else None,
            }
        )
    return out


def _trusted_at(publishers: Sequence[Any], index: int) -> bool:
    """Whether any of the project's publisher rows was registered when entry `index` was logged."""
    return any(
        row.added_log_index < index and (row.removed_log_index is None or row.removed_log_index > index)
        for row in publishers
    )


def _history(rows: Sequence[Any], size: int) -> list[dict[str, Any]]:
    """Every publisher add and remove logged below `size`, in log order."""
    events = []
    for row in rows:
        config = json.loads(row.config)
        common = {"publisher_id": row.id, "provider": row.provider, "config": config}
        events.append(
            {
                "action": "add",
                "index": row.added_log_index,
                "leaf_hash": bytes(row.added_leaf_hash).hex(),
                "time": rfc3339(row.added_at),
                "actor": row.added_by,
                **common,
            }
        )
        if row.removed_log_index is not None and row.removed_log_index < size:
            events.append(
                {
                    "action": "remove",
                    "index": row.removed_log_index,
                    "leaf_hash": bytes(row.removed_leaf_hash).hex(),
                    "time": rfc3339(row.removed_at),
                    "actor": row.removed_by,
                    **common,
                }
            )
    events.sort(key=lambda e: e["index"])
    return events


def _attestations(upload: dict[str, Any]) -> dict[str, Any]:
    """What a file's upload entry logged of its PEP 740 attestations (predicate type and
    digest each; [] for none and for v1 entries, which predate them) and, when it has
    some, where the Integrity API serves them."""
    logged = upload.get("attestations") or []
    url = integrity_path(upload["project"], upload["version"], upload["filename"]) if logged else None
    return {"attestations": logged, "provenance_url": url}


def _checked_entry(index: int, data: bytes, leaf_hash: bytes) -> dict[str, Any]:
    if tlog.leaf_hash(data) != leaf_hash:
        raise EntryIntegrityError(
            f"entry {index} in storage does not hash to its stored leaf hash; refusing to serve it "
            "(run `pubtrail audit`)"
        )
    return json.loads(data)


def _check_pair(upload: dict[str, Any], exchange: dict[str, Any], project: str, version: str) -> None:
    """The projection named these entries (and the file's project and version, which chose
    the previous release); they must be an upload of that release and the exchange it names,
    or, for an API-token upload, the `api_token` create entry of its token."""
    if upload["kind"] == "upload" and upload["entry"].get("auth") == "api_token":
        token = exchange["entry"]
        if (
            exchange["kind"] != "api_token"
            or token["action"] != "create"
            or token["token_id"] != upload["entry"]["token_id"]
            or (upload["entry"]["project"], upload["entry"]["version"]) != (project, version)
        ):
            raise EntryIntegrityError(
                f"entry {exchange['index']} is not the creation of API token {upload['entry']['token_id']} "
                f"named by upload {upload['index']} (the api_token projection disagrees with the log; "
                "run `pubtrail audit`)"
            )
        return
    if (
        upload["kind"] != "upload"
        or exchange["kind"] != "exchange"
        or (upload["entry"]["project"], upload["entry"]["version"]) != (project, version)
    ):
        raise EntryIntegrityError(
            f"entries {upload['index']} and {exchange['index']} are not an upload and an exchange "
            "(the release_file projection disagrees with the log; run `pubtrail audit`)"
        )
    if upload["entry"]["exchange_index"] != exchange["index"]:
        raise EntryIntegrityError(
            f"upload entry {upload['index']} names exchange {upload['entry']['exchange_index']}, "
            f"not {exchange['index']} (the release_file projection disagrees with the log; run `pubtrail audit`)"
        )
