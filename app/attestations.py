"""PEP 740 attestations: PyPI's upload rules, offline Sigstore verification, the
publisher identity an attestation must carry, and the digest the log records.

Pure: no web or database code, so the server (upload checks, the Integrity API)
and the verifying client (`pubtrail verify`) use the same rules. It imports
``pypi_attestations`` (hence pydantic and sigstore), so clients import it only
when a file has attestations.

- :func:`parse_attestations` reads the ``attestations`` form field as PyPI does
  (warehouse ``_extract_attestations_from_request``): a JSON list of attestation
  objects, not empty, at most one per supported predicate type. Each refusal is
  an :class:`AttestationRefused` whose text is PyPI's.
- :func:`attestation_identity` is the identity an attestation must have been
  signed by, from the publisher identity an upload entry records (the claims of
  the exchange that authorised the upload): GitHub repository, workflow file and
  environment; GitLab project path, pipeline file and environment; Google service
  account email. ActiveState publishers have none (PyPI does not support them).
- :func:`verify` checks one attestation against that identity and the uploaded
  file (its filename and the SHA-256 of the single in-toto subject) with a
  :class:`sigstore.verify.Verifier` built from a trust root held locally
  (:func:`verifier`): nothing is fetched, so verification works offline and
  keeps working after the signing certificate expired (Sigstore checks it at the
  log's integration time).
- :func:`digest` is the SHA-256 (hex) of an attestation's RFC 8785 canonical
  JSON, the bytes stored and served: an upload entry records it per attestation.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import rfc8785
import sigstore.errors
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion
from pydantic import TypeAdapter, ValidationError
from pypi_attestations import (
    Attestation,
    AttestationType,
    GitHubPublisher,
    GitLabPublisher,
    GooglePublisher,
    VerificationError,
)
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

__all__ = [
    "PUBLISH_V1",
    "SLSA_PROVENANCE_V1",
    "SUPPORTED_PREDICATE_TYPES",
    "AttestationRefused",
    "ParsedAttestation",
    "TrustRootError",
    "attestation_identity",
    "canonical",
    "check_statement",
    "digest",
    "load_trusted_root",
    "parse_attestations",
    "provider_label",
    "publisher_json",
    "verifier",
    "verify",
    "verify_all",
]

PUBLISH_V1 = AttestationType.PYPI_PUBLISH_V1.value
SLSA_PROVENANCE_V1 = AttestationType.SLSA_PROVENANCE_V1.value
#: the predicate types PyPI accepts, at most one attestation of each per file
SUPPORTED_PREDICATE_TYPES = (PUBLISH_V1, SLSA_PROVENANCE_V1)
_IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: the Sigstore production trust root as the installed `sigstore` ships it
_EMBEDDED_PRODUCTION_ROOT = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")
_ATTESTATION_LIST = TypeAdapter(list[Attestation])


class AttestationRefused(ValueError):
    """An upload's attestations are refused; ``str()`` is PyPI's text after
    "Invalid attestations supplied during upload: "."""


class TrustRootError(ValueError):
    """The Sigstore trust root file cannot be read or is not a trusted root."""


@dataclass(frozen=True)
class ParsedAttestation:
    """One uploaded attestation: the model, and its canonical JSON as sent
    (every member the uploader sent, RFC 8785), the bytes stored and served."""

    model: Attestation
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a JSON value."""
    return rfc8785.dumps(value)


def digest(attestation: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of an attestation object's canonical JSON: what the log records."""
    return hashlib.sha256(canonical(attestation)).hexdigest()


# --- the form field ------------------------------------------------------------------


def parse_attestations(text: str) -> list[ParsedAttestation]:
    """The ``attestations`` form field as PyPI reads it.

    Raises :class:`AttestationRefused` with PyPI's text: malformed (not a JSON list
    of attestation objects), empty, or more attestations than supported predicate
    types. Repeated or unsupported predicate types are found by :func:`verify_all`,
    after each signature is checked, as PyPI does.
    """
    try:
        models = _ATTESTATION_LIST.validate_json(text)
    except ValidationError as exc:
        raise AttestationRefused(f"Malformed attestations: {exc}") from None
    if not models:
        raise AttestationRefused("Malformed attestations: an empty attestation set is not permitted")
    if len(models) > len(SUPPORTED_PREDICATE_TYPES):
        raise AttestationRefused(
            f"A maximum of {len(SUPPORTED_PREDICATE_TYPES)} attestations per file are supported"
        )
    raw = json.loads(text)  # valid: pydantic parsed it
    try:
        return [ParsedAttestation(model, canonical(item)) for model, item in zip(models, raw, strict=True)]
    except (rfc8785.CanonicalizationError, ValueError) as exc:
        raise AttestationRefused(f"Malformed attestations: not representable as RFC 8785 JSON ({exc})") from None


# --- identity ------------------------------------------------------------------------


def attestation_identity(publisher: Mapping[str, Any] | None):
    """The identity (a ``pypi_attestations`` publisher) attestations must be signed by,
    from an upload entry's ``publisher`` object; None when the provider has none
    (ActiveState), the upload had no publisher (API token), or a field is missing."""
    if not publisher:
        return None
    provider = publisher.get("provider")
    environment = publisher.get("environment") or None
    if provider == "github" and publisher.get("repository") and publisher.get("workflow"):
        return GitHubPublisher(
            repository=publisher["repository"], workflow=publisher["workflow"], environment=environment
        )
    if provider == "gitlab" and publisher.get("repository") and publisher.get("workflow"):
        return GitLabPublisher(
            repository=publisher["repository"], workflow_filepath=publisher["workflow"], environment=environment
        )
    if provider == "google" and publisher.get("email"):
        return GooglePublisher(email=publisher["email"])
    return None


def publisher_json(identity) -> dict[str, Any]:
    """The identity as the Integrity API's ``publisher`` object (PyPI's shape:
    ``kind`` plus the publisher's fields)."""
    return identity.model_dump(mode="json")


def provider_label(provider: str | None) -> str:
    """The provider as PyPI names it in "Attestations are not currently supported with X publishers"."""
    return {"activestate": "ActiveState", "github": "GitHub", "gitlab": "GitLab", "google": "Google"}.get(
        provider or "", str(provider)
    )


# --- the trust root ------------------------------------------------------------------


def load_trusted_root(path: Path | None) -> TrustedRoot:
    """The Sigstore trust root in ``path`` (a ``trusted_root.json``), or, for None, the
    production root embedded in the installed ``sigstore``. Never fetched."""
    try:
        if path is None:
            resource = importlib.resources.files("sigstore").joinpath(*_EMBEDDED_PRODUCTION_ROOT)
            with importlib.resources.as_file(resource) as embedded:
                return TrustedRoot.from_file(str(embedded))
        return TrustedRoot.from_file(str(path))
    except (OSError, ValueError, sigstore.errors.Error) as exc:
        where = str(path) if path is not None else "the root embedded in sigstore"
        raise TrustRootError(f"cannot read the Sigstore trust root from {where}: {exc}") from exc


_verifiers: dict[Path | None, Verifier] = {}
_verifiers_lock = threading.Lock()


def verifier(path: Path | None = None) -> Verifier:
    """A Sigstore verifier over :func:`load_trusted_root` (``path``), built once per path."""
    with _verifiers_lock:
        found = _verifiers.get(path)
        if found is None:
            found = _verifiers[path] = Verifier(trusted_root=load_trusted_root(path))
        return found


# --- verification --------------------------------------------------------------------


def _dist_name(filename: str):
    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)
    if filename.endswith((".tar.gz", ".zip")):
        return parse_sdist_filename(filename)
    raise ValueError(f"unknown distribution format: {filename}")


def check_statement(payload_type: str, payload: bytes, filename: str, sha256: str) -> str:
    """The predicate type of a verified DSSE payload that attests exactly the file
    ``filename`` with this SHA-256 (hex); :class:`VerificationError` otherwise, with
    ``pypi_attestations``' texts."""
    if payload_type != _IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"expected JSON envelope, got {payload_type}")
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"invalid statement: {exc}") from None
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != _IN_TOTO_STATEMENT_V1
        or not isinstance(statement.get("subject"), list)
        or not isinstance(statement.get("predicateType"), str)
    ):
        raise VerificationError("invalid statement: not an in-toto v1 statement")
    subjects = statement["subject"]
    if len(subjects) != 1:
        raise VerificationError("too many subjects in statement (must be exactly one)")
    subject = subjects[0]
    name = subject.get("name") if isinstance(subject, dict) else None
    digests = subject.get("digest") if isinstance(subject, dict) else None
    if not isinstance(name, str) or not name:
        raise VerificationError("invalid subject: missing name")
    try:
        subject_dist = _dist_name(name)
    except (ValueError, InvalidSdistFilename, InvalidWheelFilename, InvalidVersion) as exc:
        raise VerificationError(f"invalid subject: {exc}") from None
    try:
        file_dist = _dist_name(filename)
    except (ValueError, InvalidSdistFilename, InvalidWheelFilename, InvalidVersion) as exc:
        raise VerificationError(f"the file name cannot be attested: {exc}") from None
    if subject_dist != file_dist:
        raise VerificationError(f"subject does not match distribution name: {name} != {filename}")
    if not isinstance(digests, dict) or digests.get("sha256") != sha256:
        raise VerificationError("subject does not match distribution digest")
    predicate_type = statement["predicateType"]
    if predicate_type not in SUPPORTED_PREDICATE_TYPES:
        raise VerificationError(f"unknown attestation type: {predicate_type}")
    return predicate_type


def verify(attestation: Attestation, identity, filename: str, sha256: str, sigstore_verifier: Verifier) -> str:
    """Verify one attestation: Sigstore (certificate chain to the trust root, the
    transparency log entry, the DSSE signature), the certificate's identity against
    ``identity`` (:func:`attestation_identity`), and the statement against the file.
    Returns its predicate type; raises :class:`VerificationError`, or
    ``pypi_attestations.ConversionError`` for material that is not a Sigstore bundle."""
    bundle = attestation.to_bundle()
    try:
        payload_type, payload = sigstore_verifier.verify_dsse(bundle, identity._as_policy())
    except sigstore.errors.VerificationError as exc:
        raise VerificationError(str(exc)) from exc
    return check_statement(payload_type, payload, filename, sha256)


def verify_all(
    attestations: list[ParsedAttestation], identity, filename: str, sha256: str, sigstore_verifier: Verifier
) -> list[str]:
    """Verify every attestation of an upload in order, as PyPI does; their predicate
    types. :class:`AttestationRefused` with PyPI's text for the first that fails or
    repeats a predicate type."""
    seen: list[str] = []
    for item in attestations:
        try:
            predicate_type = verify(item.model, identity, filename, sha256, sigstore_verifier)
        except VerificationError as exc:
            raise AttestationRefused(
                f"Could not verify the uploaded artifact using the included attestation: {exc}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - PyPI's catch-all: a malformed bundle is the uploader's fault
            raise AttestationRefused(
                f"Unknown error while trying to verify included attestations: {exc}"
            ) from None
        if predicate_type in seen:
            raise AttestationRefused(
                f"Multiple attestations for the same file with the same predicate type ({predicate_type}) "
                "are not supported"
            )
        seen.append(predicate_type)
    return seen
