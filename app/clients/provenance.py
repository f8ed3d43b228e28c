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

An API-token upload (``auth: api_token``) has no exchange: instead the
``api_token`` item must be proven, the ``create`` entry of the upload's
token, for the upload's project, logged before it; ``publisher`` is null and
``authorised_by`` is recomputed (:func:`app.identity.authorised_by`).

What the client cannot check from one answer: that the named previous
release is really the newest earlier one, that the API token was not
revoked before the upload, the ``flags`` (``api_token_on_trusted_project``
is server state at the upload's index), and the incidents (reported as
the server gives them, with their log indexes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from app import tlog
from app.entries import API_TOKEN, ApiTokenEntry, ExchangeEntry, UploadEntry
from app.identity import CONTINUITY_FIELDS, authorised_by, continuity_key, identity_fields
from app.tlog import note
from app.watch import EVENTS as FLAGS

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
    exchange_index: int | None  # None for an API-token upload
    token_id: str
    publisher: dict[str, str | None] | None  # None for an API-token upload
    continuity: Continuity
    incidents: list[dict[str, Any]]
    checkpoint: tlog.Checkpoint | None = None  # the verified checkpoint the answer is proven at
    upload: UploadEntry | None = None  # the verified upload entry
    provenance_url: str | None = None  # where the server serves its PEP 740 attestations (None: it has none)
    auth: str = "trusted_publishing"  # the upload entry's `auth`
    authorised_by: str = ""  # app.identity.authorised_by, recomputed from the proven entries
    api_token: ApiTokenEntry | None = None  # the proven create entry of the API token behind the upload
    api_token_index: int | None = None
    flags: list[str] = dataclass_field(default_factory=list)  # server-stated (api_token_on_trusted_project)


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
    upload = upload_item.entry
    assert isinstance(upload, UploadEntry)
    exchange_index: int | None = None
    api_token: ApiTokenEntry | None = None
    api_token_index: int | None = None
    if upload.auth == API_TOKEN:
        expect_equal("answer", "exchange", answer.get("exchange"), None)
        token_item = verify_item(field(answer, "api_token", dict, "answer"), checkpoint, "api_token", kind="api_token")
        api_token, api_token_index = token_item.entry, token_item.index
        assert isinstance(api_token, ApiTokenEntry)
        _check_token_link(upload, upload_item.index, api_token, api_token_index)
        publisher = None
    else:
        expect_equal("answer", "api_token", answer.get("api_token"), None)
        exchange_item = verify_item(field(answer, "exchange", dict, "answer"), checkpoint, "exchange", kind="exchange")
        exchange = exchange_item.entry
        assert isinstance(exchange, ExchangeEntry)
        _check_link(upload, upload_item.index, exchange, exchange_item.index)
        exchange_index = exchange_item.index
        publisher = identity_fields(exchange.issuer, exchange.provider, exchange.claims)

    if file is not None:
        for name in ("sha256", "blake2b_256", "size", "filename"):
            logged, local = getattr(upload, name), getattr(file, name)
            if logged != local:
                raise FileHashError(f"the upload entry's {name} is {logged!r}, the file {file.path}'s is {local!r}")

    for name in ("project", "version", "filename", "packagetype", "size", "sha256", "blake2b_256"):
        expect_equal("answer", name, answer.get(name), getattr(upload, name))
    expect_equal("answer", "uploaded_at", answer.get("uploaded_at"), upload.time)
    expect_equal("answer", "publisher", answer.get("publisher"), publisher)
    expect_equal("answer", "auth", answer.get("auth"), upload.auth)
    said = authorised_by(upload.auth, publisher, None if api_token is None else {"description": api_token.description, "time": api_token.time})
    expect_equal("answer", "authorised_by", answer.get("authorised_by"), said)
    flags = field(answer, "flags", list, "answer")
    for flag in flags:
        if flag not in FLAGS:
            raise MalformedAnswer(f"answer.flags names {flag!r:.80}, not one of {', '.join(FLAGS)}")
    if flags and upload.auth != API_TOKEN:
        raise AnswerMismatchError(f"answer.flags {flags} raised for an upload that was not made with an API token")
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
        exchange_index=exchange_index,
        token_id=upload.token_id,
        publisher=publisher,
        continuity=continuity,
        incidents=incidents,
        checkpoint=checkpoint,
        upload=upload,
        provenance_url=provenance_url,
        auth=upload.auth,
        authorised_by=said,
        api_token=api_token,
        api_token_index=api_token_index,
        flags=flags,
    )


def _check_token_link(upload: UploadEntry, upload_index: int, token: ApiTokenEntry, token_index: int) -> None:
    if token.action != "create" or token.token_id != upload.token_id:
        raise LinkError(f"entry {token_index} is not the creation of API token {upload.token_id}")
    if token.project != upload.project:
        raise LinkError(f"API token {upload.token_id} was created for {token.project!r}, not {upload.project!r}")
    if token_index >= upload_index:
        raise LinkError(f"API token entry {token_index} is not logged before upload entry {upload_index}")


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
    # an API-token upload has no publisher: every field None (a change from any publisher)
    current = {name: (upload.publisher or {}).get(name) for name in CONTINUITY_FIELDS}
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
    previous = {name: (previous_upload.publisher or {}).get(name) for name in CONTINUITY_FIELDS}
    expect_equal(where, "previous", section.get("previous"), previous)
    changed = continuity_key(current) != continuity_key(previous)
    expect_equal(where, "changed", section.get("changed"), changed)
    return Continuity(changed, current, previous, previous_upload.version, previous_upload.filename, item.index)
