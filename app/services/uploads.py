"""Uploads through PyPI's legacy API, each accepted file a log entry.

The route hands over the ``Authorization`` header first and the body second,
so an unauthenticated client never gets a byte spooled:

1. :meth:`Uploads.authenticate`: HTTP Basic ``__token__`` + upload token
   (403 with the reason otherwise);
2. :meth:`Uploads.upload`: stream the multipart body into the spool
   (``parse_upload_form``, size limit enforced while streaming), then run
   PyPI's checks in PyPI's order (``app.distributions.validate``): action,
   metadata fields, the token's project scope and that the token's trusted
   publisher is still registered for the project (403), filename, content
   type, digests, duplicates, archive; store the file content-addressed
   (``BlobStore.commit``: fsync + rename); append an ``upload`` entry whose
   projection writes the ``release_file`` row (and the ``project`` row for a
   project's first file) in the log's own transaction.

Nothing blocking runs on the event loop: the token look-up, the checks (the
archive check inflates up to 64 MiB whatever the compressed size), the
database reads and the blob fsyncs all run on the service's worker threads.

PEP 740 attestations (the ``attestations`` field, ``app.attestations``) are
checked last, after the duplicate and archive checks as on PyPI: each verified
offline (Sigstore, the trust root read at start) against the file and the
publisher identity the entry records; the entry lists each one's predicate type
and digest, and the projection stores their canonical JSON
(``release_attestation``) beside the file.

Under the log's write lock, in the entry's own transaction, the projection
checks the token again (revoked or expired while the body streamed in) and
that its publisher is still registered for the project (removed meanwhile),
as PyPI re-checks at upload time; either refusal is a 403 and no entry.

Duplicates follow PyPI (warehouse ``_is_duplicate_file``): a file "exists"
when its filename *or* its content is already stored. Same filename and same
content: 200, nothing changes. Anything else: 400 "File already exists".
The check runs before the archive is opened, and again inside the
projection, where writers are serialised by the log's write lock, so a race
between two uploads resolves the same way; the loser gets no entry.

An upload refused by any check leaves nothing behind: no entry, no row, no
blob, no spool file. The file is stored before its entry is appended (an
entry must never name a file that is not there), so one refused at the
append itself (a lost race, a token revoked while the body streamed in)
leaves an unreferenced file, which `collect_orphan_blobs` (an hourly job)
deletes. Every :class:`~app.distributions.errors.UploadError` carries the
status and the one-line reason the route puts on the status line.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, bindparam, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from packaging.utils import canonicalize_version
from sigstore.verify import Verifier

from app import attestations as pep740
from app.distributions.blobs import BlobStore, InvalidDigest
from app.distributions.errors import DEFAULT_HELP_URL, FileTooLarge, UploadError, file_already_exists
from app.distributions.form import StagedFile, UploadForm, parse_upload_form
from app.distributions.simple import SimpleFile, integrity_path
from app.distributions.validate import (
    Metadata,
    check_action,
    check_archive,
    check_content_type,
    check_digests,
    check_release_window,
    validate_filename,
    validate_metadata_fields,
)
from app.entries import API_TOKEN, TRUSTED_PUBLISHING, ExchangeEntry, UploadEntry, decode, parse_rfc3339, rfc3339
from app.metrics import Metrics
from app.oidc.publishers import identity_summary
from app.sequencer import Receipt
from app.services.log import Log
from app.services.api_tokens import PREFIX as API_TOKEN_PREFIX
from app.services.api_tokens import ApiTokenGrant, ApiTokenRejected, ApiTokens
from app.services.upload_tokens import TokenGrant, TokenRejected, UploadTokens
from app.storage.tables import Exchange, LogEntry, Project, Publisher, ReleaseAttestation, ReleaseFile, UploadToken
from app.tlog import MAX_ENTRY_SIZE

__all__ = ["Accepted", "AlreadyStored", "TOKEN_USERNAME", "Uploads"]

#: The only HTTP Basic username accepted: the password is an upload token.
TOKEN_USERNAME = "__token__"

_release = ReleaseFile.__table__
_attestation = ReleaseAttestation.__table__
_project = Project.__table__
_log_entry = LogEntry.__table__
_exchange = Exchange.__table__
_publisher = Publisher.__table__
_IDENTITY_CACHE = 4096
#: Threads for the blocking part of every upload (token look-up, checks, archive
#: inflation, fsyncs): their own pool, so uploads waiting on the disk never hold up
#: the sequencer's thread or the event loop. Few of them: every extra runnable
#: thread adds GIL hand-offs (measured: 32 threads spent more CPU in futex
#: hand-offs than in the work).
_WORKERS = 4

# Statements built once (executed with parameters): building and cache-keying a
# statement per call costs more than running it on SQLite.
_COLLIDING = (
    select(_release.c.filename, _release.c.sha256, _release.c.blake2b_256, _release.c.log_index)
    .where(or_(_release.c.filename == bindparam("filename"), _release.c.sha256 == bindparam("sha256")))
    .limit(2)
)
# The release row, inserted only if no stored file has its name or its content: one
# statement in the common case; the projection looks for the collision only when
# nothing was inserted.
_RELEASE_COLUMNS = [c for c in _release.columns]
_INSERT_RELEASE_UNLESS_COLLIDING = _release.insert().from_select(
    [c.name for c in _RELEASE_COLUMNS],
    select(*(bindparam(c.name, type_=c.type) for c in _RELEASE_COLUMNS)).where(
        ~exists().where(
            or_(_release.c.filename == bindparam("filename"), _release.c.sha256 == bindparam("sha256"))
        )
    ),
).returning(_release.c.log_index)  # a row back means inserted (rowcount is -1 for INSERT ... SELECT on psycopg)
_token = UploadToken.__table__
# Is the trusted publisher behind the token (through the exchange that minted it)
# still registered for the project? PyPI re-checks this at upload time.
_PUBLISHER_REGISTERED = (
    exists()
    .select_from(_exchange.join(_publisher, _publisher.c.id == _exchange.c.publisher_id))
    .where(
        _exchange.c.log_index == _token.c.exchange_log_index,
        _publisher.c.project == bindparam("project"),
        _publisher.c.removed_at.is_(None),
    )
)
_TOKEN_LIVE = select(
    _token.c.revoked_at, _token.c.expires_at, _PUBLISHER_REGISTERED.label("registered")
).where(_token.c.id == bindparam("id"))
# a project's versions as stored, each with its first file's time; the stale-release guard
# matches them by canonical version in Python, as PyPI finds a release ("0.1" is "0.1.0")
_RELEASE_CREATED = (
    select(_release.c.version, func.min(_release.c.uploaded_at))
    .where(_release.c.project == bindparam("project"))
    .group_by(_release.c.version)
)
_REFERENCED = select(_release.c.filename).where(_release.c.sha256 == bindparam("sha256")).limit(1)
_EXCHANGE_DATA = select(_log_entry.c.data).where(_log_entry.c.index == bindparam("index"))


def _release_created(conn: Connection, project: str, version: str) -> int | None:
    """When the release `version` of `project` got its first file, or None for a new release.

    A release is found by canonical version (packaging's `canonicalize_version`, as PyPI
    does), so "0.1" names the release whose files say "0.1.0"."""
    wanted = canonicalize_version(version)
    times = [t for v, t in conn.execute(_RELEASE_CREATED, {"project": project}) if canonicalize_version(v) == wanted]
    return min(times, default=None)


@dataclass(frozen=True)
class Accepted:
    """A new file: its entry and the receipt proving it is in the log."""

    entry: UploadEntry
    receipt: Receipt

    def to_json(self) -> dict[str, Any]:
        return {"upload": self.entry.to_json(), "receipt": self.receipt.to_json()}


@dataclass(frozen=True)
class AlreadyStored:
    """The same file (same name, same content) was uploaded before: nothing changed."""

    filename: str
    sha256: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return {"duplicate": True, "filename": self.filename, "sha256": self.sha256, "log_index": self.log_index}


@dataclass(frozen=True)
class _Stored:
    """A ``release_file`` row that collides with an upload (by name or content)."""

    filename: str
    sha256: str
    blake2b_256: str
    log_index: int


class _SameFile(Exception):
    """Raised inside the projection: an identical file won the race; refuse this entry."""

    def __init__(self, stored: _Stored):
        super().__init__(stored.filename)
        self.stored = stored


def _invalid_auth(detail: str | None, help_url: str) -> UploadError:
    why = f": {detail}" if detail else ""
    return UploadError(
        403,
        f"Invalid or non-existent authentication information{why}. "
        f"See {help_url}#invalid-auth for more information.",
    )


class Uploads:
    """The upload service. ``clock`` returns Unix time; ``max_upload_size``
    caps the distribution file in bytes."""

    def __init__(
        self,
        engine: Engine,
        log: Log,
        tokens: UploadTokens,
        blobs: BlobStore,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        max_upload_size: int,
        help_url: str = DEFAULT_HELP_URL,
        api_tokens: ApiTokens | None = None,
        release_file_window_days: int = 14,
        sigstore_verifier: Verifier | None = None,
    ):
        """``help_url`` is the base of the "See ... for more information." links
        of refusals (pubtrail's upload help page, ``/help/uploads``).
        ``sigstore_verifier`` checks PEP 740 attestations (default: one over the
        production trust root embedded in ``sigstore``, built at the first
        attestation)."""
        self.engine = engine
        self.log = log
        self.tokens = tokens
        self.blobs = blobs
        self.metrics = metrics
        self.clock = clock
        self.max_upload_size = max_upload_size
        self.help_url = help_url
        #: long-lived project API tokens (twine's password may be one); None: upload tokens only
        self.api_tokens = api_tokens
        #: PyPI's stale-release guard: no new file for a release whose first file is older than this
        self.release_file_window_days = release_file_window_days
        self._sigstore_verifier = sigstore_verifier
        self._identities: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._identities_lock = threading.Lock()
        self._insert_project = _insert_ignore(engine, _project)
        # projects whose row is committed (rows are never deleted): their uploads skip the insert
        self._known_projects: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="pubtrail-upload")

    def close(self) -> None:
        """Stop the worker threads (after the server stopped taking requests)."""
        self._executor.shutdown(wait=True)

    # --- authentication (headers only) -----------------------------------------

    async def authenticate(self, authorization: str | None) -> TokenGrant:
        """Check ``Authorization: Basic base64(__token__:<upload token>)``.

        Raises a 403 :class:`UploadError` saying why (missing, not Basic, not
        the ``__token__`` user, or the token unknown / expired / revoked).
        Reads no request body; one indexed query, on a worker thread.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._authenticate, authorization
            )
        except UploadError:
            self.metrics.uploads.labels("auth_failed").inc()
            raise

    def _authenticate(self, authorization: str | None) -> TokenGrant | ApiTokenGrant:
        if not authorization:
            raise _invalid_auth(None, self.help_url)
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise _invalid_auth("use HTTP Basic authentication", self.help_url)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # binascii.Error, or non-ASCII text
            raise _invalid_auth("the Basic credentials are not valid base64 of user:password", self.help_url) from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise _invalid_auth("the Basic credentials are not valid base64 of user:password", self.help_url)
        if not hmac.compare_digest(username.encode(), TOKEN_USERNAME.encode()):
            raise _invalid_auth(
                f"only upload tokens are accepted, with the username {TOKEN_USERNAME!r}", self.help_url
            )
        try:
            if self.api_tokens is not None and password.startswith(API_TOKEN_PREFIX + "."):
                return self.api_tokens.authenticate(password)
            return self.tokens.authenticate(password, self.clock())
        except (TokenRejected, ApiTokenRejected) as exc:
            raise UploadError(403, f"{exc}. See {self.help_url}#invalid-auth for more information.") from None

    # --- the upload ---------------------------------------------------------------

    async def upload(
        self, grant: TokenGrant, chunks: AsyncIterable[bytes], content_type: str | None
    ) -> Accepted | AlreadyStored:
        """Receive, check, store and log one file for an authenticated token.

        Raises :class:`UploadError` (400/403/410) when refused; then nothing
        is stored.
        """
        try:
            result = await self._upload(grant, chunks, content_type)
        except UploadError as exc:
            self.metrics.uploads.labels(_result_label(exc)).inc()
            raise
        self.metrics.uploads.labels("accepted" if isinstance(result, Accepted) else "duplicate").inc()
        return result

    async def _upload(
        self, grant: TokenGrant, chunks: AsyncIterable[bytes], content_type: str | None
    ) -> Accepted | AlreadyStored:
        form = await parse_upload_form(
            chunks,
            content_type,
            max_file_size=self.max_upload_size,
            spool_dir=self.blobs.spool_dir,
            help_url=self.help_url,
        )
        try:
            checked = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._check_and_store, grant, form
            )
        finally:
            form.discard()  # no-op once the file was committed (renamed away)
        if isinstance(checked, AlreadyStored):
            return checked
        entry, leaf, bodies = checked
        try:
            receipt = await self.log.append(leaf, kind=entry.kind, projection=self._projection(entry, bodies))
        except _SameFile as exc:
            return AlreadyStored(exc.stored.filename, exc.stored.sha256, exc.stored.log_index)
        self._known_projects.add(entry.project)  # committed now
        return Accepted(entry, receipt)

    def _check_and_store(
        self, grant: TokenGrant, form: UploadForm
    ) -> tuple[UploadEntry, bytes, list[bytes]] | AlreadyStored:
        """PyPI's checks in PyPI's order (PEP 740 attestations verified last), then
        the blob commit (worker thread).

        Returns the entry, its canonical bytes and the attestations' canonical JSON
        (in the entry's order), or :class:`AlreadyStored`.
        """
        fields = form.fields
        check_action(fields)
        meta = validate_metadata_fields(fields)
        if meta.normalized_name not in grant.projects:
            raise UploadError(
                403,
                f"The given token isn't allowed to upload to project {meta.name!r}. "
                f"See {self.help_url}#project-name for more information.",
            )
        staged = form.file
        if staged is None:
            raise UploadError(400, "Upload payload does not have a file.", field="content")
        validate_filename(staged.filename, meta.name, meta.version, meta.filetype)
        check_content_type(staged.content_type)
        check_digests(fields, staged)
        with self.engine.connect() as conn:
            # checked again under the write lock; here so that a refused upload stores nothing
            self._check_token_live(conn, grant.token_id, meta.normalized_name, self.clock(), grant.auth)
            stored = _colliding_file(conn, staged.filename, staged.sha256)
            release_created = _release_created(conn, meta.normalized_name, str(meta.version))
        if stored is not None:
            return self._duplicate(stored, staged.filename, staged.sha256, staged.blake2b_256)
        check_release_window(release_created, self.clock(), self.release_file_window_days)
        check_archive(staged.path, staged.filename)
        entry = self._entry(grant, meta, staged)  # before the commit: a failure here stores nothing
        attested = self._verify_attestations(form, entry)
        if attested:
            entry = replace(entry, attestations=[{"predicate_type": t, "sha256": a.sha256} for t, a in attested])
        leaf = entry.encode()
        if len(leaf) > MAX_ENTRY_SIZE:
            raise UploadError(
                400,
                f"Invalid distribution metadata: the upload's log entry would be {len(leaf)} bytes, "
                f"more than the {MAX_ENTRY_SIZE} a log entry may hold (shorten the version or filename).",
            )
        self.blobs.commit(staged)
        return entry, leaf, [a.body for _t, a in attested]

    def _verify_attestations(
        self, form: UploadForm, entry: UploadEntry
    ) -> list[tuple[str, pep740.ParsedAttestation]]:
        """The upload's PEP 740 attestations (the ``attestations`` field), each verified
        against the file and the publisher identity the entry records, with its
        predicate type; [] when the field was not sent. A 400 with PyPI's text otherwise
        (warehouse ``IntegrityService.parse_attestations``). Sigstore verification is
        CPU work: this runs on the upload worker threads."""
        text = form.first("attestations")
        if text is None:
            return []

        def refused(why: str) -> UploadError:
            return UploadError(400, f"Invalid attestations supplied during upload: {why}", field="attestations")

        if entry.publisher is None:
            raise refused("Attestations are only supported when using Trusted Publishing")
        identity = pep740.attestation_identity(entry.publisher)
        if identity is None:
            label = pep740.provider_label(entry.publisher.get("provider"))
            raise refused(f"Attestations are not currently supported with {label} publishers")
        try:
            parsed = pep740.parse_attestations(text)
            if self._sigstore_verifier is None:
                self._sigstore_verifier = pep740.verifier(None)
            types = pep740.verify_all(parsed, identity, entry.filename, entry.sha256, self._sigstore_verifier)
        except pep740.AttestationRefused as exc:
            raise refused(str(exc)) from None
        return list(zip(types, parsed, strict=True))

    def _duplicate(self, stored: _Stored, filename: str, sha256: str, blake2b_256: str) -> AlreadyStored:
        """PyPI's rule: same name and same content is a no-op; anything else is refused."""
        if stored.filename == filename and stored.sha256 == sha256 and stored.blake2b_256 == blake2b_256:
            return AlreadyStored(filename, sha256, stored.log_index)
        raise file_already_exists(filename, blake2b_256, help_url=self.help_url)

    def _entry(self, grant: TokenGrant | ApiTokenGrant, meta: Metadata, staged: StagedFile) -> UploadEntry:
        if isinstance(grant, ApiTokenGrant):
            authorised: dict[str, Any] = dict(auth=API_TOKEN, exchange_index=None, publisher=None)
        else:
            authorised = dict(
                auth=TRUSTED_PUBLISHING,
                exchange_index=grant.exchange_log_index,
                publisher=self.publisher_identity(grant.exchange_log_index),
            )
        return UploadEntry(
            time=rfc3339(self.clock()),
            project=meta.normalized_name,
            version=str(meta.version),
            filename=staged.filename,
            packagetype=meta.filetype,
            size=staged.size,
            sha256=staged.sha256,
            blake2b_256=staged.blake2b_256,
            requires_python=meta.requires_python,
            token_id=grant.token_id,
            attestations=[],
            **authorised,
        )

    def _projection(self, entry: UploadEntry, attestation_bodies: list[bytes]):
        row = {
            "filename": entry.filename,
            "project": entry.project,
            "version": entry.version,
            "packagetype": entry.packagetype,
            "size": entry.size,
            "sha256": entry.sha256,
            "blake2b_256": entry.blake2b_256,
            "requires_python": entry.requires_python,
            "uploaded_at": parse_rfc3339(entry.time),
            "token_id": entry.token_id,
            "exchange_log_index": entry.exchange_index,
        }
        new_project = entry.project not in self._known_projects

        def write_rows(conn: Connection, index: int) -> None:
            # Runs under the log's write lock: no other upload's rows can appear between
            # the collision check and the insert, and a revocation that landed while the
            # body streamed in is seen here.
            self._check_token_live(conn, entry.token_id, entry.project, parse_rfc3339(entry.time), entry.auth)
            if conn.execute(_INSERT_RELEASE_UNLESS_COLLIDING, {**row, "log_index": index}).first() is None:
                stored = _colliding_file(conn, entry.filename, entry.sha256)
                if stored is None:
                    raise RuntimeError(f"release row for {entry.filename} neither inserted nor colliding")
                self._duplicate(stored, entry.filename, entry.sha256, entry.blake2b_256)  # raises unless identical
                raise _SameFile(stored)
            if attestation_bodies:
                conn.execute(_attestation.insert(), [
                    {"log_index": index, "position": position, "filename": entry.filename,
                     "predicate_type": logged["predicate_type"], "sha256": logged["sha256"], "body": body}
                    for position, (logged, body) in enumerate(zip(entry.attestations, attestation_bodies, strict=True))
                ])
            if new_project:
                conn.execute(
                    self._insert_project,
                    {"name": entry.project, "created_at": row["uploaded_at"], "created_log_index": index},
                )

        return write_rows

    def _check_token_live(
        self, conn: Connection, token_id: str, project: str, now: float, auth: str = TRUSTED_PUBLISHING
    ) -> None:
        """403 unless the token is unrevoked and unexpired at ``now`` and the
        trusted publisher that minted it is still registered for ``project``;
        for an API token: unrevoked, and the project not trusted-publishing-only."""
        if auth == API_TOKEN:
            why = ApiTokens.still_allowed(conn, token_id, project)
            if why is not None:
                raise UploadError(403, f"{why}. See {self.help_url}#invalid-auth for more information.")
            return
        live = conn.execute(_TOKEN_LIVE, {"id": token_id, "project": project}).first()
        if live is None or live.revoked_at is not None or now >= live.expires_at:
            raise UploadError(
                403,
                "Invalid API Token: the token was revoked or expired during the upload. "
                f"See {self.help_url}#invalid-auth for more information.",
            )
        if not live.registered:
            raise UploadError(
                403,
                f"Invalid API Token: the trusted publisher that minted this token is no longer "
                f"registered for project {project!r}. See {self.help_url}#invalid-auth for more information.",
            )

    # --- the read side (simple index, file downloads) ----------------------------

    def project_names(self) -> list[str]:
        """Every project with at least one file (normalized names)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(_project.c.name).order_by(_project.c.name)).scalars())

    def project_files(self, project: str) -> list[SimpleFile] | None:
        """The files of a project (normalized name), oldest first; None if the project is unknown."""
        with self.engine.connect() as conn:
            if conn.execute(select(_project.c.name).where(_project.c.name == project)).first() is None:
                return None
            rows = conn.execute(
                select(
                    _release.c.filename,
                    _release.c.sha256,
                    _release.c.size,
                    _release.c.requires_python,
                    _release.c.uploaded_at,
                    _release.c.version,
                    exists().where(_attestation.c.log_index == _release.c.log_index).label("attested"),
                )
                .where(_release.c.project == project)
                .order_by(_release.c.log_index)
            ).all()
        return [
            SimpleFile(
                filename=row.filename,
                sha256=row.sha256,
                size=row.size,
                requires_python=row.requires_python,
                upload_time=datetime.fromtimestamp(row.uploaded_at, tz=timezone.utc),
                provenance=integrity_path(project, row.version, row.filename) if row.attested else None,
            )
            for row in rows
        ]

    def stored_file(self, sha256: str, filename: str) -> Path | None:
        """The stored blob of an accepted file named ``filename`` with this SHA-256, or None."""
        try:
            path = self.blobs.path_for(sha256)
        except InvalidDigest:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_release.c.log_index).where(_release.c.filename == filename, _release.c.sha256 == sha256)
            ).first()
        return path if row is not None and path.is_file() else None

    def collect_orphan_blobs(self, older_than: float) -> int:
        """Delete stored files older than `older_than` seconds that no release row names.

        An upload refused after its file was committed (a lost race, a token revoked
        mid-upload, the log refusing its batch) leaves such a file. A file is
        committed before its entry is appended, and re-committing touches it, so
        anything younger than `older_than` may still be about to be referenced.
        """
        cutoff = self.clock() - older_than
        candidates = [sha256 for sha256, mtime in self.blobs.stored() if mtime < cutoff]
        removed = 0
        with self.engine.connect() as conn:

            def referenced(sha256: str) -> bool:
                found = conn.execute(_REFERENCED, {"sha256": sha256}).first() is not None
                conn.rollback()  # a fresh snapshot for the next file (PostgreSQL)
                return found

            for sha256 in candidates:
                # re-checked under the store's exclusive lock: an upload may reuse it meanwhile
                if self.blobs.remove_unreferenced(sha256, cutoff, referenced):
                    removed += 1
        return removed

    # --- the identity behind a token ---------------------------------------------

    def publisher_identity(self, exchange_index: int) -> dict[str, Any]:
        """The identity summary of the exchange entry at ``exchange_index``,
        read from the log itself (entries are immutable, so it is cached)."""
        with self._identities_lock:
            cached = self._identities.get(exchange_index)
            if cached is not None:
                self._identities.move_to_end(exchange_index)
                return cached
        with self.engine.connect() as conn:
            data = conn.execute(_EXCHANGE_DATA, {"index": exchange_index}).scalar_one()
        exchange = decode(bytes(data))
        if not isinstance(exchange, ExchangeEntry):
            raise RuntimeError(f"log entry {exchange_index} is a {exchange.kind} entry, not an exchange")
        summary = identity_summary(exchange.issuer, exchange.provider, exchange.claims)
        with self._identities_lock:
            self._identities[exchange_index] = summary
            while len(self._identities) > _IDENTITY_CACHE:
                self._identities.popitem(last=False)
        return summary


def _colliding_file(conn: Connection, filename: str, sha256: str) -> _Stored | None:
    """A stored file with this name or this content, the same-named one first.

    Content is matched by SHA-256 (indexed); PyPI matches by BLAKE2b-256,
    which identifies the same content.
    """
    rows = conn.execute(_COLLIDING, {"filename": filename, "sha256": sha256}).all()
    if not rows:
        return None
    row = next((r for r in rows if r.filename == filename), rows[0])
    return _Stored(row.filename, row.sha256, row.blake2b_256, row.log_index)


def _insert_ignore(engine: Engine, table):
    """``INSERT ... ON CONFLICT DO NOTHING`` for this engine's dialect."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(engine.dialect.name)
    if dialect is None:
        raise RuntimeError(f"unsupported database dialect {engine.dialect.name!r}")
    return dialect.insert(table).on_conflict_do_nothing()


def _result_label(exc: UploadError) -> str:
    if isinstance(exc, FileTooLarge):
        return "too_large"
    if exc.status == 403:
        return "forbidden"
    if exc.status == 410:
        return "gone"
    if exc.reason.startswith("File already exists"):
        return "exists"
    return "invalid"
