"""The monitor's local mirror: verified log entries and checkpoints in one SQLite file.

`pubtrail monitor` writes it (:mod:`app.clients.monitor`); `pubtrail
blast-radius --mirror DIR` and `pubtrail provenance --mirror DIR` read it.
Nothing goes in unverified: a `Writer` collects one checkpoint step (every new
entry and the checkpoint that covers them) in one SQLite transaction, and the
monitor commits it only after the entries hashed to the log's tiles and the
tiles to the signed root; any failure rolls the whole step back.

Schema (plain `sqlite3`, file ``mirror.sqlite3`` in the state folder)::

    meta        key -> value: the pinned verifier key the mirror was built with
    checkpoint  size, root, note (the signed text): every checkpoint verified
    entry       idx, leaf_hash, data (the entry bytes), kind, at (Unix seconds)
    exchange    idx, at, issuer, provider, kid, publisher_id, token_id,
                token_expires_at, projects (JSON list), and the identity
                fields of app.identity (case-insensitive ones lower-cased)
    upload      idx, at, project, version, filename, sha256, token_id, exchange_idx
                (NULL for an API-token upload), auth
    revoked     token_id -> the first revocation, incident or api_token revoke entry revoking it
    incident    idx, incident_id, description, at, criteria (JSON object)

with an index on every column a blast-radius or provenance query filters on.

Queries answer like the server's API (`GET /api/v1/blast-radius`,
`GET /api/v1/provenance/{sha256}`) over the verified prefix: same semantics,
same item fields, proofs at the mirror's latest checkpoint. The tree for
proofs is rebuilt in memory from the stored leaf hashes (71 bytes per leaf).
"""

from __future__ import annotations

import base64
import calendar
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from app import tlog
from app.entries import (
    ApiTokenEntry,
    Entry,
    ExchangeEntry,
    IncidentEntry,
    PublisherEntry,
    RevocationEntry,
    UploadEntry,
    decode,
    parse_rfc3339,
    rfc3339,
)
from app.identity import authorised_by, continuity, identity_fields, query_key
from app.tlog import MemoryTree, note

from .blast_radius import (
    EXCHANGE_CRITERIA,
    IDENTITY_CRITERIA,
    WINDOW,
    BlastRadius,
    _seconds,
    exchange_fields,
    normalize_project,
)
from .errors import ClientError
from .items import VerifiedItem

FILE = "mirror.sqlite3"

#: identity columns of the `exchange` table (app.identity fields)
IDENTITY_COLUMNS = (
    "repository", "repository_owner_id", "workflow", "workflow_ref", "job_workflow_ref", "ref", "sha",
    "environment", "actor",
)
CSV_COLUMNS = (
    "index", "time", "project", "version", "filename", "packagetype", "sha256", "token_id", "exchange_index",
    "issuer", "provider", "repository", "workflow", "ref", "sha", "environment", "auth",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entry (
    idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, data BLOB NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS exchange (
    idx INTEGER PRIMARY KEY, at INTEGER NOT NULL, issuer TEXT NOT NULL, provider TEXT NOT NULL, kid TEXT NOT NULL,
    publisher_id TEXT NOT NULL, token_id TEXT NOT NULL, token_expires_at INTEGER NOT NULL, projects TEXT NOT NULL,
    repository TEXT, repository_owner_id TEXT, workflow TEXT, workflow_ref TEXT, job_workflow_ref TEXT,
    ref TEXT, sha TEXT, environment TEXT, actor TEXT
);
CREATE TABLE IF NOT EXISTS upload (
    idx INTEGER PRIMARY KEY, at INTEGER NOT NULL, project TEXT NOT NULL, version TEXT NOT NULL,
    filename TEXT NOT NULL, sha256 TEXT NOT NULL, token_id TEXT NOT NULL, exchange_idx INTEGER,
    auth TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS incident (
    idx INTEGER PRIMARY KEY, incident_id TEXT NOT NULL, description TEXT NOT NULL, at INTEGER NOT NULL,
    criteria TEXT NOT NULL
);
"""
#: the secondary indexes of the query tables (dropped during a bulk catch-up, rebuilt before its commit)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS exchange_token ON exchange (token_id)",
    "CREATE INDEX IF NOT EXISTS exchange_issuer ON exchange (issuer)",
    "CREATE INDEX IF NOT EXISTS exchange_kid ON exchange (kid)",
    "CREATE INDEX IF NOT EXISTS exchange_publisher ON exchange (publisher_id)",
    "CREATE INDEX IF NOT EXISTS exchange_repository ON exchange (repository)",
    "CREATE INDEX IF NOT EXISTS exchange_owner ON exchange (repository_owner_id)",
    "CREATE INDEX IF NOT EXISTS exchange_workflow ON exchange (workflow)",
    "CREATE INDEX IF NOT EXISTS exchange_workflow_ref ON exchange (workflow_ref)",
    "CREATE INDEX IF NOT EXISTS exchange_job_workflow_ref ON exchange (job_workflow_ref)",
    "CREATE INDEX IF NOT EXISTS exchange_ref ON exchange (ref)",
    "CREATE INDEX IF NOT EXISTS exchange_sha ON exchange (sha)",
    "CREATE INDEX IF NOT EXISTS exchange_environment ON exchange (environment)",
    "CREATE INDEX IF NOT EXISTS exchange_actor ON exchange (actor)",
    "CREATE INDEX IF NOT EXISTS upload_token ON upload (token_id)",
    "CREATE INDEX IF NOT EXISTS upload_exchange ON upload (exchange_idx)",
    "CREATE INDEX IF NOT EXISTS upload_project ON upload (project, idx)",
    "CREATE INDEX IF NOT EXISTS upload_sha256 ON upload (sha256)",
)


class MirrorError(ClientError):
    """A mirror folder that cannot be used (missing, another log's, unreadable)."""

    check = "local mirror"


def _upgrade(conn: sqlite3.Connection) -> None:
    """A mirror written before API tokens: its `upload` table gains `auth` (every upload
    then was trusted publishing) and a nullable `exchange_idx`, rebuilt in one transaction."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(upload)")]
    if "auth" in columns:
        return
    conn.executescript(
        """
        BEGIN IMMEDIATE;
        ALTER TABLE upload RENAME TO upload_v1;
        CREATE TABLE upload (
            idx INTEGER PRIMARY KEY, at INTEGER NOT NULL, project TEXT NOT NULL, version TEXT NOT NULL,
            filename TEXT NOT NULL, sha256 TEXT NOT NULL, token_id TEXT NOT NULL, exchange_idx INTEGER,
            auth TEXT NOT NULL
        );
        INSERT INTO upload SELECT idx, at, project, version, filename, sha256, token_id, exchange_idx,
            'trusted_publishing' FROM upload_v1;
        DROP TABLE upload_v1;
        COMMIT;
        """
    )


@dataclass(frozen=True)
class MirrorCheckpoint:
    size: int
    root: bytes
    note: str


def _at(text: str) -> int:
    """Unix seconds of an entry's time (``YYYY-MM-DDTHH:MM:SSZ``); ValueError for anything else."""
    if len(text) == 20 and text[4] == text[7] == "-" and text[10] == "T" and text[13] == text[16] == ":" \
            and text[19] == "Z" and text[:4].isdigit():
        fields = (text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
        if all(f.isdigit() for f in fields):
            month, day, hour, minute, second = map(int, fields)
            year = int(text[:4])
            if 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60 \
                    and 1 <= day <= calendar.monthrange(year, month)[1]:
                return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return parse_rfc3339(text)


class Mirror:
    """The mirror in ``folder`` (created when ``create``), bound to one verifier key.

    ``key`` (the verifier key string) is recorded on first use; opening the
    folder with another key raises MirrorError, so two logs never mix.
    """

    def __init__(self, folder: str | Path, *, key: str | None = None, create: bool = False) -> None:
        self.folder = Path(folder)
        path = self.folder / FILE
        if not create and not path.is_file():
            raise MirrorError(f"{self.folder} holds no mirror ({FILE}): run pubtrail monitor --state {self.folder} first")
        try:
            if create:
                self.folder.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages of a catch-up stay cached
            self.conn.executescript(_SCHEMA)
            _upgrade(self.conn)
            for statement in _INDEXES:
                self.conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise MirrorError(f"cannot open the mirror in {self.folder}: {exc}") from exc
        stored = self.conn.execute("SELECT value FROM meta WHERE key = 'key'").fetchone()
        if key is not None:
            if stored is None:
                self.conn.execute("INSERT INTO meta (key, value) VALUES ('key', ?)", (key,))
            elif stored[0] != key:
                raise MirrorError(f"{self.folder} mirrors the log of key {stored[0]!r}, not {key!r}")
        self.key = key if key is not None else (stored[0] if stored else None)
        self._tree: MemoryTree | None = None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------

    def latest(self) -> MirrorCheckpoint | None:
        """The newest verified checkpoint, or None for an empty mirror."""
        row = self.conn.execute("SELECT size, root, note FROM checkpoint ORDER BY size DESC LIMIT 1").fetchone()
        return MirrorCheckpoint(row[0], bytes(row[1]), row[2]) if row else None

    @property
    def size(self) -> int:
        latest = self.latest()
        return latest.size if latest else 0

    def tree(self) -> MemoryTree:
        """The Merkle tree of every mirrored leaf (built once from the stored leaf hashes)."""
        if self._tree is None:
            tree = MemoryTree()
            cursor = self.conn.execute("SELECT leaf_hash FROM entry ORDER BY idx")
            while rows := cursor.fetchmany(65536):
                tree.extend_hashes([bytes(r[0]) for r in rows])
            self._tree = tree
        return self._tree

    def forget_tree(self) -> None:
        """Drop the in-memory tree (after a failed step extended it with unverified leaves)."""
        self._tree = None

    def entry(self, index: int) -> Entry | None:
        row = self.conn.execute("SELECT data FROM entry WHERE idx = ?", (index,)).fetchone()
        return decode(bytes(row[0])) if row else None

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes, Entry]]:
        """(index, leaf hash, entry) of the mirrored entries in [start, end)."""
        query = "SELECT idx, leaf_hash, data FROM entry WHERE idx >= ?" + (" AND idx < ?" if end is not None else "")
        params = (start,) if end is None else (start, end)
        for idx, leaf, data in self.conn.execute(query + " ORDER BY idx", params):
            yield idx, bytes(leaf), decode(bytes(data))

    # --- writing ---------------------------------------------------------------

    def writer(self, *, bulk: bool = False) -> Writer:
        """Begin one checkpoint step (an SQLite transaction). ``bulk`` (a long catch-up) drops the
        secondary indexes for the step and rebuilds them before it commits: sorting once is
        cheaper than updating every index for every row."""
        return Writer(self, bulk=bulk)

    # --- queries ---------------------------------------------------------------

    def _item_base(self, index: int, size: int) -> tuple[bytes, bytes, dict[str, Any]]:
        leaf, data = self.conn.execute("SELECT leaf_hash, data FROM entry WHERE idx = ?", (index,)).fetchone()
        tree = self.tree()
        proof = {
            "tree_size": size,
            "root_hash": tree.root(size).hex(),
            "hashes": [h.hex() for h in tree.inclusion_proof(index, size)],
        }
        return bytes(leaf), bytes(data), proof

    def blast_radius(self, criteria: Mapping[str, str], *, now: int) -> BlastRadius:
        """The blast radius of ``criteria`` over the verified prefix, as the server answers it
        (:mod:`app.services.blast_radius` semantics) with every page merged; ``now`` decides token states."""
        latest = self.latest()
        if latest is None:
            raise MirrorError(f"the mirror in {self.folder} is empty: nothing verified yet")
        if self.key is None:  # a mirror the monitor wrote always records its key
            raise MirrorError(f"the mirror in {self.folder} records no verifier key")
        verifier = note.Verifier(self.key)
        checkpoint = tlog.open_checkpoint(latest.note, [verifier], origin=verifier.name)
        size = latest.size
        values = _canonical(criteria)
        exchange_sql, exchange_params = self._exchanges_sql(values, size)
        upload_sql, upload_params = self._uploads_sql(values, size)
        exchange_rows = self.conn.execute(exchange_sql + " ORDER BY e.idx", exchange_params).fetchall()
        upload_rows = self.conn.execute(upload_sql + " ORDER BY r.idx", upload_params).fetchall()
        result = BlastRadius(
            checkpoint=checkpoint, checkpoint_note=latest.note, criteria=values, as_of=rfc3339(now)
        )
        valid = 0
        for idx, expires_at, revoked in exchange_rows:
            state = "revoked" if revoked is not None else ("valid" if now < expires_at else "expired")
            valid += state == "valid"
            leaf, data, proof = self._item_base(idx, size)
            entry = decode(data)
            assert isinstance(entry, ExchangeEntry)
            said = exchange_fields(entry)
            item = {
                "index": idx, "leaf_hash": leaf.hex(), "time": entry.time, "issuer": entry.issuer,
                "provider": entry.provider, "kid": entry.kid, "publisher_id": entry.publisher_id,
                **{name: said[name] for name in IDENTITY_COLUMNS},
                "token_id": entry.token_id, "token_expires": entry.token_expires, "token_state": state,
                "entry_bytes": base64.b64encode(data).decode(), "proof": proof,
            }
            result.exchanges.append((item, VerifiedItem(idx, leaf, data, entry)))
        releases: set[tuple[str, str]] = set()
        api_tokens: set[str] = set()
        for idx, project, version in upload_rows:
            leaf, data, proof = self._item_base(idx, size)
            entry = decode(data)
            assert isinstance(entry, UploadEntry)
            releases.add((project, version))
            if entry.auth == "api_token":
                api_tokens.add(entry.token_id)
            item = {
                "index": idx, "leaf_hash": leaf.hex(), "time": entry.time, "project": entry.project,
                "version": entry.version, "filename": entry.filename, "packagetype": entry.packagetype,
                "sha256": entry.sha256, "token_id": entry.token_id, "exchange_index": entry.exchange_index,
                "auth": entry.auth, "entry_bytes": base64.b64encode(data).decode(), "proof": proof,
            }
            result.uploads.append((item, VerifiedItem(idx, leaf, data, entry)))
        result.totals = {
            "exchanges": len(exchange_rows),
            "uploads": len(upload_rows),
            "projects": len({p for p, _ in releases}),
            "releases": len(releases),
            # as the server counts it: valid upload tokens plus the matching uploads' API tokens
            # that no api_token revoke or incident entry in the verified prefix has revoked
            "tokens_valid": valid + sum(
                self.conn.execute("SELECT 1 FROM revoked WHERE token_id = ?", (token,)).fetchone() is None
                for token in api_tokens
            ),
        }
        return result

    def provenance(self, sha256: str) -> dict[str, Any]:
        """Where the file with this SHA-256 came from, as ``GET /api/v1/provenance/{sha256}``
        answers (proofs at the mirror's checkpoint); MirrorError for a malformed or unknown digest."""
        if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256 or ""):
            raise MirrorError("sha256 must be 64 hex digits (the SHA-256 of the file)")
        digest = sha256.lower()
        latest = self.latest()
        row = self.conn.execute(
            "SELECT idx, exchange_idx, project, version FROM upload WHERE sha256 = ? ORDER BY idx LIMIT 1", (digest,)
        ).fetchone() if latest else None
        if row is None:
            raise MirrorError(f"no uploaded file has sha256 {digest} in the verified mirror")
        upload_index, exchange_index, project, version = row
        size = latest.size
        previous = self.conn.execute(
            "SELECT idx FROM upload WHERE project = ? AND version != ? AND idx < ? ORDER BY idx DESC LIMIT 1",
            (project, version, upload_index),
        ).fetchone()
        upload = self._proven(upload_index, size)
        entry = upload["entry"]
        auth = entry.get("auth", "trusted_publishing")
        exchange = api_token = publisher = None
        flags: list[str] = []
        if auth == "api_token":
            created = self._api_token_created(entry["token_id"], upload_index)
            if created is None:
                raise MirrorError(f"the mirror holds no creation of API token {entry['token_id']} before entry {upload_index}")
            api_token = self._proven(created, size)
            if _trusted_at(self.conn, project, upload_index):
                flags.append("api_token_on_trusted_project")
        else:
            exchange = self._proven(exchange_index, size)
            exchange_entry = exchange["entry"]
            publisher = identity_fields(exchange_entry["issuer"], exchange_entry["provider"], exchange_entry["claims"])
        previous_upload = self._proven(previous[0], size) if previous else None
        before = (previous_upload["entry"]["publisher"] or {}) if previous_upload else None
        logged = entry.get("attestations") or []
        return {
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
            "attestations": logged,
            "provenance_url": _integrity_path(entry) if logged else None,
            "checkpoint": latest.note,
            "tree_size": size,
            "incidents": self.covering(upload_index),
            "identity_continuity": {
                **continuity(entry["publisher"] or {}, before),
                "previous_release": None if previous_upload is None else {
                    "version": previous_upload["entry"]["version"],
                    "filename": previous_upload["entry"]["filename"],
                    "upload": previous_upload,
                },
            },
        }

    def _api_token_created(self, token_id: str, before: int) -> int | None:
        """The index of the `api_token` create entry of ``token_id`` logged before ``before``."""
        for idx, data in self.conn.execute(
            "SELECT idx, data FROM entry WHERE kind = 'api_token' AND idx < ? ORDER BY idx", (before,)
        ):
            entry = decode(bytes(data))
            if isinstance(entry, ApiTokenEntry) and entry.action == "create" and entry.token_id == token_id:
                return idx
        return None

    def covering(self, upload_index: int) -> list[dict[str, Any]]:
        """The incidents whose blast radius (over the mirror) holds the upload at ``upload_index``, oldest first."""
        out = []
        for idx, incident_id, description, at, criteria in self.conn.execute(
            "SELECT idx, incident_id, description, at, criteria FROM incident ORDER BY idx"
        ):
            sql, params = self._uploads_sql(json.loads(criteria), upload_index + 1)
            if self.conn.execute(f"{sql} AND r.idx = ?", [*params, upload_index]).fetchone():
                out.append({"id": incident_id, "description": description, "log_index": idx,
                            "declared_at": rfc3339(at)})
        return out

    def _proven(self, index: int, size: int) -> dict[str, Any]:
        leaf, data, proof = self._item_base(index, size)
        entry = json.loads(data)
        return {
            "index": index, "kind": entry["kind"], "leaf_hash": leaf.hex(), "entry": entry,
            "entry_bytes": base64.b64encode(data).decode(), "inclusion_proof": {"index": index, **proof},
        }

    def blast_radius_csv(self, result: BlastRadius) -> str:
        """The server's CSV (``format=csv``) of the uploads of ``result``."""
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for item, verified in result.uploads:
            entry = verified.entry
            assert isinstance(entry, UploadEntry)
            raw = json.loads(verified.entry_bytes)
            own = {"index": verified.index, "time": entry.time, "exchange_index": entry.exchange_index,
                   "auth": entry.auth}
            publisher = raw.get("publisher") or {}
            writer.writerow([own[c] if c in own else (raw.get(c) if c in raw else publisher.get(c)) for c in CSV_COLUMNS])
        return out.getvalue()

    def _exchange_conditions(self, values: Mapping[str, str], window: bool) -> tuple[list[str], list[Any]]:
        conditions, params = [], []
        for name, value in values.items():
            if name in ("issuer", "publisher_id", "kid", "provider"):
                conditions.append(f"e.{name} = ?")
                params.append(value)
            elif name == "workflow" and "@" in value:
                conditions.append("e.workflow_ref = ?")
                params.append(query_key("workflow_ref", value))
            elif name in IDENTITY_CRITERIA:
                conditions.append(f"e.{name} = ?")
                params.append(query_key(name, value))
        if window and "since" in values:
            conditions.append("e.at >= ?")
            params.append(_seconds(values["since"], "since"))
        if window and "until" in values:
            conditions.append("e.at < ?")
            params.append(_seconds(values["until"], "until"))
        return conditions, params

    def _upload_only(self, values: Mapping[str, str], size: int) -> tuple[list[str], list[Any]]:
        conditions, params = ["r.idx < ?"], [size]
        if "auth" in values:
            conditions.append("r.auth = ?")
            params.append(values["auth"])
        if "token_id" in values:
            conditions.append("r.token_id = ?")
            params.append(values["token_id"])
        if "project" in values:
            conditions.append("r.project = ?")
            params.append(values["project"])
        if "since" in values:
            conditions.append("r.at >= ?")
            params.append(_seconds(values["since"], "since"))
        if "until" in values:
            conditions.append("r.at < ?")
            params.append(_seconds(values["until"], "until"))
        return conditions, params

    def _exchanges_sql(self, values: Mapping[str, str], size: int) -> tuple[str, list[Any]]:
        selects = any(name in EXCHANGE_CRITERIA for name in values)
        conditions, params = ["e.idx < ?"], [size]
        if values.get("auth") == "api_token" and (selects or "token_id" in values):
            conditions.append("0")  # an exchange authorises trusted publishing only
        if selects:
            more, more_params = self._exchange_conditions(values, window=True)
            conditions += more
            params += more_params
            if "token_id" in values:
                conditions.append("e.token_id = ?")
                params.append(values["token_id"])
        elif "token_id" in values:
            conditions.append("e.token_id = ?")
            params.append(values["token_id"])
        else:
            behind, behind_params = self._upload_only(values, size)
            conditions.append(f"e.idx IN (SELECT r.exchange_idx FROM upload r WHERE {' AND '.join(behind)})")
            params += behind_params
        if "project" in values and (selects or "token_id" in values):
            conditions.append("EXISTS (SELECT 1 FROM json_each(e.projects) WHERE json_each.value = ?)")
            params.append(values["project"])
        sql = (
            "SELECT e.idx, e.token_expires_at, v.idx FROM exchange e LEFT JOIN revoked v ON v.token_id = e.token_id"
            f" WHERE {' AND '.join(conditions)}"
        )
        return sql, params

    def _uploads_sql(self, values: Mapping[str, str], size: int) -> tuple[str, list[Any]]:
        if not any(name in EXCHANGE_CRITERIA for name in values):
            conditions, params = self._upload_only(values, size)
            return f"SELECT r.idx, r.project, r.version FROM upload r WHERE {' AND '.join(conditions)}", params
        conditions, params = ["r.idx < ?"], [size]
        more, more_params = self._exchange_conditions(values, window=True)
        conditions += more
        params += more_params
        if "token_id" in values:
            conditions.append("r.token_id = ?")
            params.append(values["token_id"])
        if "project" in values:
            conditions.append("r.project = ?")
            params.append(values["project"])
        if "auth" in values:
            conditions.append("r.auth = ?")
            params.append(values["auth"])
        sql = (
            "SELECT r.idx, r.project, r.version FROM upload r JOIN exchange e ON e.idx = r.exchange_idx"
            f" WHERE {' AND '.join(conditions)}"
        )
        return sql, params


#: the identity fields whose change identity continuity reports (as the server's provenance answers)
def _canonical(criteria: Mapping[str, str]) -> dict[str, str]:
    """The criteria in the server's canonical JSON form (projects normalized, times as RFC 3339 UTC)."""
    names = {*EXCHANGE_CRITERIA, "token_id", "project", "auth", *WINDOW}
    out: dict[str, str] = {}
    for name, value in criteria.items():
        if name not in names:
            raise MirrorError(f"unknown criterion {name!r}")
        if not isinstance(value, str) or not value:
            raise MirrorError(f"{name} must be a non-empty string")
        if name in WINDOW:
            out[name] = rfc3339(_seconds(value, f"--{name}"))
        elif name == "project":
            out[name] = normalize_project(value)
        elif name == "auth" and value not in ("trusted_publishing", "api_token"):
            raise MirrorError(f"auth must be trusted_publishing or api_token, not {value!r}")
        else:
            out[name] = value
    if not any(name not in WINDOW for name in out):
        raise MirrorError("name at least one criterion besides since/until")
    if "since" in out and "until" in out and _at(out["since"]) >= _at(out["until"]):
        raise MirrorError("since must be before until")
    return dict(sorted(out.items()))


def _trusted_at(conn: sqlite3.Connection, project: str, before: int) -> bool:
    """Whether a trusted publisher was registered for ``project`` (normalized) when entry
    ``before`` was logged: the mirrored `publisher` entries below it, replayed."""
    active: set[str] = set()
    for (data,) in conn.execute("SELECT data FROM entry WHERE kind = 'publisher' AND idx < ? ORDER BY idx", (before,)):
        entry = decode(bytes(data))
        if isinstance(entry, PublisherEntry) and normalize_project(entry.project) == project:
            (active.add if entry.action == "add" else active.discard)(entry.publisher_id)
    return bool(active)


def _integrity_path(upload: Mapping[str, Any]) -> str:
    """Where the server serves a file's PEP 740 attestations (the Integrity API path,
    as `app.distributions.simple.integrity_path` builds it)."""
    parts = (upload["project"], upload["version"], upload["filename"])
    return "/integrity/" + "/".join(quote(p, safe="") for p in parts) + "/provenance"


class Writer:
    """One checkpoint step: rows added here are committed together by `commit`, or not at all."""

    def __init__(self, mirror: Mirror, *, bulk: bool = False) -> None:
        self.mirror = mirror
        self.conn = mirror.conn
        self.bulk = bulk
        self.conn.execute("BEGIN IMMEDIATE")
        if bulk:  # DDL is transactional in SQLite: a rollback restores them
            for statement in _INDEXES:
                self.conn.execute("DROP INDEX IF EXISTS " + statement.split()[5])
        self._entries: list[tuple] = []
        self._exchanges: list[tuple] = []
        self._uploads: list[tuple] = []
        self._revoked: list[tuple] = []
        self._incidents: list[tuple] = []

    def add(self, index: int, leaf: bytes, data: bytes, entry: Entry) -> None:
        """Stage one verified entry (written at the next `flush`)."""
        at = _at(entry.time)
        self._entries.append((index, leaf, data, entry.kind, at))
        if isinstance(entry, UploadEntry):
            self._uploads.append(
                (index, at, normalize_project(entry.project), entry.version, entry.filename, entry.sha256,
                 entry.token_id, entry.exchange_index, entry.auth)
            )
        elif isinstance(entry, ExchangeEntry):
            identity = identity_fields(entry.issuer, entry.provider, entry.claims)
            self._exchanges.append(
                (index, at, entry.issuer, entry.provider, entry.kid, entry.publisher_id, entry.token_id,
                 _at(entry.token_expires), json.dumps(entry.projects),
                 *(query_key(name, identity[name]) for name in IDENTITY_COLUMNS))
            )
        elif isinstance(entry, RevocationEntry) or (isinstance(entry, ApiTokenEntry) and entry.action == "revoke"):
            self._revoked.append((entry.token_id, index))
        elif isinstance(entry, IncidentEntry):
            self._revoked.extend((token, index) for token in entry.revoked_tokens)
            self._incidents.append(
                (index, entry.incident_id, entry.description, at, json.dumps(entry.criteria, sort_keys=True))
            )

    def flush(self) -> None:
        """Write the staged rows into the open transaction."""
        conn = self.conn
        conn.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?)", self._entries)
        if self._exchanges:
            conn.executemany(f"INSERT INTO exchange VALUES ({', '.join('?' * 18)})", self._exchanges)
        if self._uploads:
            conn.executemany("INSERT INTO upload VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._uploads)
        if self._revoked:
            conn.executemany("INSERT OR IGNORE INTO revoked VALUES (?, ?)", self._revoked)
        if self._incidents:
            conn.executemany("INSERT INTO incident VALUES (?, ?, ?, ?, ?)", self._incidents)
        self._entries.clear()
        self._exchanges.clear()
        self._uploads.clear()
        self._revoked.clear()
        self._incidents.clear()

    def exchange(self, index: int) -> ExchangeEntry | None:
        """The exchange entry at ``index`` among the mirrored or staged entries, or None."""
        for staged in self._entries:
            if staged[0] == index:
                entry = decode(staged[2])
                return entry if isinstance(entry, ExchangeEntry) else None
        row = self.conn.execute("SELECT data FROM entry WHERE idx = ?", (index,)).fetchone()
        if row is None:
            return None
        entry = decode(bytes(row[0]))
        return entry if isinstance(entry, ExchangeEntry) else None

    def trusted_project(self, project: str, before: int) -> bool:
        """Whether a trusted publisher was registered for ``project`` when entry ``before`` was
        logged, replaying the mirrored and staged `publisher` entries below it."""
        self.flush()
        return _trusted_at(self.conn, project, before)

    def commit(self, size: int, root: bytes, signed_note: str) -> None:
        """Record the verified checkpoint and commit the step."""
        self.flush()
        if self.bulk:
            for statement in _INDEXES:
                self.conn.execute(statement)
        self.conn.execute("INSERT OR REPLACE INTO checkpoint VALUES (?, ?, ?)", (size, root, signed_note))
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def utc_now() -> int:
    """Current Unix seconds (the CLI's clock; queries take ``now`` as a parameter)."""
    return int(datetime.now(timezone.utc).timestamp())
