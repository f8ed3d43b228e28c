"""The Integrity API's read side (PEP 740, as PyPI serves it): a file's provenance object.

A file uploaded with attestations has a provenance object of one attestation
bundle: the publisher identity the attestations were verified against (from the
upload entry's ``publisher``, :func:`app.attestations.attestation_identity`) and
the attestations as stored (``release_attestation``, in the entry's order). The
answer is RFC 8785 canonical JSON assembled from the stored canonical bodies, so
each attestation is served byte for byte as stored, and hashes to the digest its
upload entry logged.

Two indexed queries: the file by name, its attestations by upload index (with
the upload entry, whose bytes are checked against their leaf hash before use).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from sqlalchemy import Engine, bindparam, select

from app import attestations as pep740
from app import tlog
from app.services.log_reader import EntryIntegrityError
from app.storage.tables import LogEntry, ReleaseAttestation, ReleaseFile

__all__ = ["NoProvenance", "provenance_document"]

_release = ReleaseFile.__table__
_attestation = ReleaseAttestation.__table__
_entry = LogEntry.__table__

_FILE = select(_release.c.project, _release.c.version, _release.c.log_index).where(
    _release.c.filename == bindparam("filename")
)
_ATTESTATIONS = (
    select(_attestation.c.body).where(_attestation.c.log_index == bindparam("index")).order_by(_attestation.c.position)
)
_UPLOAD = select(_entry.c.data, _entry.c.leaf_hash).where(_entry.c.index == bindparam("index"))


@dataclass(frozen=True)
class NoProvenance(Exception):
    """404: no such file in that release, or a file without attestations (``message`` is PyPI's text)."""

    message: str


def _same_version(text: str, stored: str) -> bool:
    try:
        return Version(text) == Version(stored)
    except InvalidVersion:
        return False


def provenance_document(engine: Engine, project: str, version: str, filename: str) -> bytes:
    """The provenance object of ``filename`` of release ``version`` of ``project`` (any
    spelling of the name and version that normalizes to the stored one), as canonical
    JSON bytes; :class:`NoProvenance` when there is none."""
    with engine.connect() as conn:
        row = conn.execute(_FILE, {"filename": filename}).first()
        if row is None or row.project != canonicalize_name(project) or not _same_version(version, row.version):
            raise NoProvenance(f"No file {filename} in release {version} of {project}")
        bodies = [bytes(b) for b in conn.execute(_ATTESTATIONS, {"index": row.log_index}).scalars()]
        if not bodies:
            raise NoProvenance(f"No provenance available for {filename}")
        upload = conn.execute(_UPLOAD, {"index": row.log_index}).first()
    if upload is None or tlog.leaf_hash(bytes(upload.data)) != bytes(upload.leaf_hash):
        raise EntryIntegrityError(
            f"upload entry {row.log_index} is missing or does not hash to its leaf hash; refusing to serve it "
            "(run `pubtrail audit`)"
        )
    identity = pep740.attestation_identity(json.loads(upload.data).get("publisher"))
    if identity is None:
        raise EntryIntegrityError(f"upload entry {row.log_index} has attestations but no attestation identity")
    return (
        b'{"attestation_bundles":[{"attestations":['
        + b",".join(bodies)
        + b'],"publisher":'
        + pep740.canonical(pep740.publisher_json(identity))
        + b'}],"version":1}'
    )
