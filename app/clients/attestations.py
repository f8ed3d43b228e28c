"""The PEP 740 attestations of a verified file, checked offline (``pubtrail verify``).

Given a verified provenance answer (:mod:`app.clients.provenance`) whose upload
entry logged attestations, :func:`fetch_and_verify_attestations` fetches the
provenance object from the server's Integrity API and checks, each failure an
:class:`AttestationError`:

- every bundle's ``publisher`` is the identity the log recorded for the upload
  (:func:`app.attestations.attestation_identity` of the upload entry's
  ``publisher``, copied from the exchange that authorised it);
- the attestations, in order, hash (SHA-256 of their RFC 8785 JSON) to the
  digests the upload entry logged, no more and no fewer;
- each verifies offline, with the Sigstore trust root held locally (default: the
  production root embedded in ``sigstore``), against that identity and the local
  file (its name and SHA-256), and has the predicate type the entry logged.

The server is trusted for bytes only: the digests come from a proven entry.
``app.attestations`` (hence ``pypi_attestations``, pydantic and sigstore) is
imported only when a file has attestations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NotFoundAnswer, VerificationError
from .http import Server
from .provenance import LocalFile, Provenance


class AttestationError(VerificationError):
    check = "attestations"


@dataclass(frozen=True)
class VerifiedAttestations:
    """The attestations of a file, verified: their predicate types (logged order) and
    the publisher identity they were verified against (Integrity API shape)."""

    predicate_types: list[str]
    publisher: dict[str, Any]


def fetch_and_verify_attestations(
    server: Server, provenance: Provenance, file: LocalFile, *, trust_root: Path | None = None
) -> VerifiedAttestations | None:
    """Check the attestations of ``file`` whose provenance was verified (None when its
    upload logged none); ``trust_root`` is a Sigstore ``trusted_root.json`` (None: the
    production root embedded in ``sigstore``)."""
    upload = provenance.upload
    logged = list(upload.attestations or []) if upload is not None else []
    if not logged:
        return None
    assert provenance.provenance_url is not None  # verify_provenance requires it when attestations are logged
    from app import attestations as pep740

    identity = pep740.attestation_identity(upload.publisher)
    if identity is None:
        raise AttestationError(
            f"the upload logged attestations, but its publisher {upload.publisher} has no attestation identity"
        )
    expected_publisher = pep740.publisher_json(identity)
    try:
        document = server.get_json(provenance.provenance_url)
    except NotFoundAnswer as exc:
        raise AttestationError(
            f"the upload entry logged {len(logged)} attestations, but the server does not serve them "
            f"({provenance.provenance_url}: {exc.detail})"
        ) from None
    attestations = _attestations_of(document, expected_publisher)
    digests = [pep740.digest(item) for item in attestations]
    logged_digests = [item["sha256"] for item in logged]
    if digests != logged_digests:
        raise AttestationError(
            f"the server's attestations hash to {digests}, the upload entry logged {logged_digests}"
        )
    try:
        verifier = pep740.verifier(trust_root)
    except pep740.TrustRootError as exc:
        raise AttestationError(str(exc)) from None
    types = []
    for position, (item, entry) in enumerate(zip(attestations, logged, strict=True)):
        try:
            model = pep740.Attestation.model_validate(item)
            predicate_type = pep740.verify(model, identity, file.filename, file.sha256, verifier)
        except Exception as exc:  # noqa: BLE001 - every failure of this attestation is reported as one
            raise AttestationError(f"attestation {position} does not verify for {file.filename}: {exc}") from None
        if predicate_type != entry["predicate_type"]:
            raise AttestationError(
                f"attestation {position} is a {predicate_type} attestation, the entry logged {entry['predicate_type']}"
            )
        types.append(predicate_type)
    return VerifiedAttestations(types, expected_publisher)


def _attestations_of(document: Any, expected_publisher: dict[str, Any]) -> list[Any]:
    if not isinstance(document, dict) or document.get("version") != 1:
        raise AttestationError("the Integrity API answer is not a version 1 provenance object")
    bundles = document.get("attestation_bundles")
    if not isinstance(bundles, list) or not bundles:
        raise AttestationError("the provenance object has no attestation bundles")
    out: list[Any] = []
    for position, bundle in enumerate(bundles):
        if not isinstance(bundle, dict) or not isinstance(bundle.get("attestations"), list):
            raise AttestationError(f"attestation bundle {position} is not a bundle")
        if bundle.get("publisher") != expected_publisher:
            raise AttestationError(
                f"attestation bundle {position} names publisher {bundle.get('publisher')}, "
                f"the log recorded {expected_publisher}"
            )
        out.extend(bundle["attestations"])
    return out
