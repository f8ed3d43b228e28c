"""Where a local file came from: its provenance answer, verified against the pinned key.

:func:`fetch_and_verify` hashes nothing itself: give it a :class:`LocalFile`
(``LocalFile.read(path)`` streams the file through SHA-256 and BLAKE2b-256).
It asks the server for ``GET /api/v1/provenance/{sha256}`` and
:func:`verify_provenance` checks, in this order, each failure its own error:

- the checkpoint is signed by the pinned key, for the key's own origin;
- the ``upload`` and ``exchange`` items are proven at that checkpoint's size
  (:func:`app.clients.items.verify_item`), an upload and an exchange entry;
- the upload entry's sha256, blake2b_256, size and filename are the file's;
- the upload names the exchange (``exchange_index``), logged before it, whose
  token (``token_id``) authorised it for the upload's project, and the
  identity the upload copied is that exchange's;
- every plain field of the answer (project, version, ..., ``publisher``,
  ``identity_continuity``) equals what the verified entries say: the
  publisher identity is recomputed from the exchange's logged claims with
  :func:`app.identity.identity_fields`, the server's own function;
- the previous release named by ``identity_continuity`` is an upload of the
  same project, of another version, logged before this one, proven at the
  same checkpoint; ``changed`` is recomputed from both entries;
- ``attestations`` is what the upload entry logged of its PEP 740
  attestations, and ``provenance_url`` a server path exactly when there are
  some (the attestations themselves are checked by
  :mod:`app.clients.attestations`).

What the client cannot check from one answer: that the named previous
release is really the newest earlier one, and the incidents (reported as
the server gives them, with their log indexes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import tlog
from app.entries import ExchangeEntry, UploadEntry
from app.identity import CONTINUITY_FIELDS, continuity_key, identity_fields
from app.tlog import note

from .errors import AnswerMismatchError, FileHashError, LinkError, MalformedAnswer
from .http import Server
from .items import expect_equal, field, integer, open_checkpoint, verify_item

#: the identity fields whose change between releases is the continuity signal

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    """A file on disk and the hashes the log records of an upload."""

    path: Path
    filename: str
    size: int
    sha256: str
    blake2b_256: str

    @classmethod
    def read(cls, path: Path) -> LocalFile:
        """Hash ``path`` in 1 MiB chunks (OSError if it cannot be read)."""
        sha256, blake2b = hashlib.sha256(), hashlib.blake2b(digest_size=32)
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha256.update(chunk)
                blake2b.update(chunk)
                size += len(chunk)
        return cls(Path(path), Path(path).name, size, sha256.hexdigest(), blake2b.hexdigest())


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path, with a directory (a ``pip download -d`` folder) replaced by its regular files, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            yield path


@dataclass(frozen=True)
class Continuity:
    """The identity behind this file and behind the project's previous release (None for a first release)."""

    changed: bool
    current: dict[str, str | None]
    previous: dict[str, str | None] | None
    previous_version: str | None
    previous_filename: str | None
    previous_index: int | None


@dataclass(frozen=True)
class Provenance:
    """A verified provenance answer: every field here comes from a proven entry (``incidents`` excepted)."""

    file: LocalFile | None
    origin: str
    tree_size: int
    project: str
    version: str
    filename: str
    packagetype: str
    uploaded_at: str
    upload_index: int
    exchange_index: int
    token_id: str
    publisher: dict[str, str | None]
    continuity: Continuity
    incidents: list[dict[str, Any]]
    checkpoint: tlog.Checkpoint | None = None  # the verified checkpoint the answer is proven at
    upload: UploadEntry | None = None  # the verified upload entry
    provenance_url: str | None = None  # where the server serves its PEP 740 attestations (None: it has none)


def fetch_and_verify(server: Server, verifier: note.Verifier, file: LocalFile) -> Provenance:
    """Ask ``server`` for ``file``'s provenance and verify it (404: NotFoundAnswer, never uploaded there)."""
    answer = server.get_json(f"/api/v1/provenance/{file.sha256}")
    return verify_provenance(answer, verifier, file)


def verify_provenance(answer: Any, verifier: note.Verifier, file: LocalFile | None = None) -> Provenance:
    """Verify a provenance answer (see the module docstring); ``file``, when given, must be the upload."""
    if not isinstance(answer, dict):
        raise MalformedAnswer("the provenance answer is not a JSON object")
    checkpoint = open_checkpoint(answer.get("checkpoint"), verifier)
    expect_equal("answer", "tree_size", integer(answer, "tree_size", "answer"), checkpoint.size)
    upload_item = verify_item(field(answer, "upload", dict, "answer"), checkpoint, "upload", kind="upload")
    exchange_item = verify_item(field(answer, "exchange", dict, "answer"), checkpoint, "exchange", kind="exchange")
    upload, exchange = upload_item.entry, exchange_item.entry
    assert isinstance(upload, UploadEntry) and isinstance(exchange, ExchangeEntry)

    if file is not None:
        for name in ("sha256", "blake2b_256", "size", "filename"):
            logged, local = getattr(upload, name), getattr(file, name)
            if logged != local:
                raise FileHashError(f"the upload entry's {name} is {logged!r}, the file {file.path}'s is {local!r}")

    _check_link(upload, upload_item.index, exchange, exchange_item.index)
    publisher = identity_fields(exchange.issuer, exchange.provider, exchange.claims)

    for name in ("project", "version", "filename", "packagetype", "size", "sha256", "blake2b_256"):
        expect_equal("answer", name, answer.get(name), getattr(upload, name))
    expect_equal("answer", "uploaded_at", answer.get("uploaded_at"), upload.time)
    expect_equal("answer", "publisher", answer.get("publisher"), publisher)
    logged_attestations = upload.attestations or []
    expect_equal("answer", "attestations", answer.get("attestations"), logged_attestations)
    provenance_url = answer.get("provenance_url")
    if bool(logged_attestations) != isinstance(provenance_url, str) or (
        provenance_url is not None and not provenance_url.startswith("/")
    ):
        raise AnswerMismatchError(
            f"answer.provenance_url is {provenance_url!r}: a path on the server when the upload logged "
            "attestations, null otherwise"
        )

    continuity = _verify_continuity(answer, checkpoint, upload, upload_item.index)
    incidents = field(answer, "incidents", list, "answer")
    for position, incident in enumerate(incidents):
        where = f"answer.incidents[{position}]"
        field(incident, "id", (str, int), where)
        field(incident, "description", str, where)
        integer(incident, "log_index", where)
    return Provenance(
        file=file,
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        project=upload.project,
        version=upload.version,
        filename=upload.filename,
        packagetype=upload.packagetype,
        uploaded_at=upload.time,
        upload_index=upload_item.index,
        exchange_index=exchange_item.index,
        token_id=upload.token_id,
        publisher=publisher,
        continuity=continuity,
        incidents=incidents,
        checkpoint=checkpoint,
        upload=upload,
        provenance_url=provenance_url,
    )


def _check_link(upload: UploadEntry, upload_index: int, exchange: ExchangeEntry, exchange_index: int) -> None:
    if upload.exchange_index != exchange_index:
        raise LinkError(f"the upload names exchange entry {upload.exchange_index}, the answer gave entry {exchange_index}")
    if exchange_index >= upload_index:
        raise LinkError(f"exchange entry {exchange_index} is not logged before upload entry {upload_index}")
    if exchange.token_id != upload.token_id:
        raise LinkError(f"the upload used token {upload.token_id}, exchange {exchange_index} minted {exchange.token_id}")
    if upload.project not in exchange.projects:
        raise LinkError(f"the token of exchange {exchange_index} does not cover project {upload.project!r}")
    copied = upload_identity(identity_fields(exchange.issuer, exchange.provider, exchange.claims))
    if upload.publisher != copied:
        raise LinkError(f"the upload's publisher {upload.publisher} is not its exchange's identity {copied}")


def upload_identity(fields: dict[str, str | None]) -> dict[str, str | None]:
    """The publisher identity an upload entry copies from its exchange, given the exchange's identity fields."""
    copied = {name: fields[name] for name in ("issuer", "provider", "repository", "workflow", "ref", "sha", "environment")}
    if fields["provider"] == "google":
        copied["email"] = fields["actor"]
    return copied


def _verify_continuity(answer: dict, checkpoint: tlog.Checkpoint, upload: UploadEntry, upload_index: int) -> Continuity:
    # Both identities are the `publisher` objects of the two proven upload entries.
    where = "answer.identity_continuity"
    section = field(answer, "identity_continuity", dict, "answer")
    current = {name: upload.publisher.get(name) for name in CONTINUITY_FIELDS}
    expect_equal(where, "current", section.get("current"), current)
    release = section.get("previous_release")
    if release is None:
        expect_equal(where, "previous", section.get("previous"), None)
        expect_equal(where, "changed", section.get("changed"), False)
        return Continuity(False, current, None, None, None, None)
    release_where = f"{where}.previous_release"
    item = verify_item(field(release, "upload", dict, release_where), checkpoint, f"{release_where}.upload", kind="upload")
    previous_upload = item.entry
    assert isinstance(previous_upload, UploadEntry)
    expect_equal(release_where, "version", release.get("version"), previous_upload.version)
    expect_equal(release_where, "filename", release.get("filename"), previous_upload.filename)
    if previous_upload.project != upload.project:
        raise AnswerMismatchError(f"{release_where} is an upload of {previous_upload.project!r}, not of {upload.project!r}")
    if previous_upload.version == upload.version:
        raise AnswerMismatchError(f"{release_where} is of version {upload.version!r}, the file's own version")
    if item.index >= upload_index:
        raise AnswerMismatchError(f"{release_where} (entry {item.index}) is not logged before this upload ({upload_index})")
    previous = {name: previous_upload.publisher.get(name) for name in CONTINUITY_FIELDS}
    expect_equal(where, "previous", section.get("previous"), previous)
    changed = continuity_key(current) != continuity_key(previous)
    expect_equal(where, "changed", section.get("changed"), changed)
    return Continuity(changed, current, previous, previous_upload.version, previous_upload.filename, item.index)
