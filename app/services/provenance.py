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
its number of files.
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
from app.identity import CONTINUITY_FIELDS, continuity, identity_fields
from app.services.log_reader import EntryIntegrityError, LogReader
from app.services.publishers import project_name
from app.storage.log_store import StoredCheckpoint
from app.storage.tables import LogEntry, Publisher, ReleaseAttestation, ReleaseFile

__all__ = ["CONTINUITY_FIELDS", "Provenance", "continuity", "parse_sha256"]

#: the identity fields whose change identity continuity reports
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_release = ReleaseFile.__table__
_attestation = ReleaseAttestation.__table__
_entry = LogEntry.__table__
_publisher = Publisher.__table__

# Statements built once, executed with parameters.
_FILE_BY_SHA256 = (
    select(_release.c.log_index, _release.c.exchange_log_index, _release.c.project, _release.c.version)
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
        indexes = [upload_index, exchange_index] + ([previous.log_index] if previous is not None else [])
        proven = [p.to_json() for p in self.reader.proven(indexes, checkpoint.size)]
        upload, exchange = proven[0], proven[1]
        _check_pair(upload, exchange, row.project, row.version)
        entry, exchange_entry = upload["entry"], exchange["entry"]
        answer = {
            "project": entry["project"],
            "version": entry["version"],
            "filename": entry["filename"],
            "packagetype": entry["packagetype"],
            "size": entry["size"],
            "sha256": entry["sha256"],
            "blake2b_256": entry["blake2b_256"],
            "uploaded_at": entry["time"],
            "publisher": identity_fields(exchange_entry["issuer"], exchange_entry["provider"], exchange_entry["claims"]),
            "upload": upload,
            "exchange": exchange,
            "checkpoint": checkpoint.note,
            "tree_size": checkpoint.size,
            "incidents": self._incidents(upload_index),
            **_attestations(entry),
        }
        previous_upload = proven[2] if previous is not None else None
        answer["identity_continuity"] = {
            **continuity(entry["publisher"], previous_upload["entry"]["publisher"] if previous_upload else None),
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
        covering = self._incidents_of([row.log_index for row in rows])
        return checkpoint, _files(rows, identities, covering), _history(publishers, checkpoint.size)

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
) -> list[dict[str, Any]]:
    """Each file's JSON, rows in log order. Its previous release is found in one pass:
    the file just before it, or, when that one has the same version, its previous release."""
    out: list[dict[str, Any]] = []
    previous_of: list[int | None] = []  # position in `out` of each file's previous release
    for position, row in enumerate(rows):
        if row.exchange_log_index not in identities:
            raise EntryIntegrityError(
                f"exchange entry {row.exchange_log_index} named by upload {row.log_index} is missing from storage"
            )
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
                "exchange": {"index": row.exchange_log_index, "leaf_hash": leaf_hash},
                "publisher": identity,
                "identity_continuity": {
                    **continuity(identity, before["publisher"] if before else None),
                    "previous_release": None
                    if before is None
                    else {"version": before["version"], "filename": before["filename"], "upload": before["upload"]},
                },
                "incidents": list(incidents.get(row.log_index, ())),
                "provenance_url": integrity_path(row.project, row.version, row.filename) if row.attested else None,
            }
        )
    return out


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
    the previous release); they must be an upload of that release and the exchange it names."""
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
