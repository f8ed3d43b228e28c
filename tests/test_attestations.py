"""app.attestations without a server: PyPI's texts, the statement checks, identities, trust roots.

The statement checks run on payloads written here (a real Sigstore signature over
an unknown predicate type or two subjects cannot be made in a test); the Sigstore
part runs on the real attestations in tests/testdata/pep740.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypi_attestations import GitHubPublisher, GitLabPublisher, GooglePublisher, VerificationError

from app import attestations as pep740

ASSETS = Path(__file__).resolve().parent / "testdata" / "pep740"
SDIST = "pypi_attestations-0.0.19.tar.gz"
SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _statement(name: str = SDIST, sha256: str = SHA256, predicate_type: str = pep740.PUBLISH_V1, **changes) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": sha256}}],
        "predicateType": predicate_type,
        "predicate": None,
    }
    statement.update(changes)
    return json.dumps(statement).encode()


def test_a_statement_about_the_file_gives_its_predicate_type() -> None:
    assert pep740.check_statement(PAYLOAD_TYPE, _statement(), SDIST, SHA256) == pep740.PUBLISH_V1
    slsa = _statement(predicate_type=pep740.SLSA_PROVENANCE_V1)
    assert pep740.check_statement(PAYLOAD_TYPE, slsa, SDIST, SHA256) == pep740.SLSA_PROVENANCE_V1
    # the subject names the same distribution in another spelling (pypi-attestations' rule)
    same = _statement(name="PyPI_Attestations-0.0.19.tar.gz")
    assert pep740.check_statement(PAYLOAD_TYPE, same, SDIST, SHA256) == pep740.PUBLISH_V1


@pytest.mark.parametrize(
    "payload_type, payload, text",
    [
        ("text/plain", _statement(), "expected JSON envelope, got text/plain"),
        (PAYLOAD_TYPE, b"{", "invalid statement: "),
        (PAYLOAD_TYPE, _statement(_type="https://in-toto.io/Statement/v0.1"), "invalid statement: "),
        (PAYLOAD_TYPE, _statement(subject=[]), "too many subjects in statement (must be exactly one)"),
        (PAYLOAD_TYPE, _statement(subject=[{"name": SDIST, "digest": {"sha256": SHA256}}] * 2),
         "too many subjects in statement (must be exactly one)"),
        (PAYLOAD_TYPE, _statement(name=""), "invalid subject: missing name"),
        (PAYLOAD_TYPE, _statement(name="not-a-dist.txt"), "invalid subject: unknown distribution format"),
        (PAYLOAD_TYPE, _statement(name="pypi_attestations-0.0.20.tar.gz"),
         f"subject does not match distribution name: pypi_attestations-0.0.20.tar.gz != {SDIST}"),
        (PAYLOAD_TYPE, _statement(sha256="0" * 64), "subject does not match distribution digest"),
        (PAYLOAD_TYPE, _statement(predicate_type="https://example.com/other/v1"),
         "unknown attestation type: https://example.com/other/v1"),
    ],
)
def test_a_statement_about_anything_else_is_refused(payload_type, payload, text) -> None:
    with pytest.raises(VerificationError) as caught:
        pep740.check_statement(payload_type, payload, SDIST, SHA256)
    assert str(caught.value).startswith("Verification failed: " + text), str(caught.value)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "Malformed attestations: 1 validation error for list[Attestation]"),
        ("null", "Malformed attestations: 1 validation error for list[Attestation]"),
        ("[]", "Malformed attestations: an empty attestation set is not permitted"),
        ("[1, 2, 3]", "Malformed attestations: 3 validation errors for list[Attestation]"),
    ],
)
def test_parse_refuses_with_pypis_texts(text, reason) -> None:
    with pytest.raises(pep740.AttestationRefused) as caught:
        pep740.parse_attestations(text)
    assert str(caught.value).startswith(reason), str(caught.value)


def test_parse_keeps_each_attestation_as_sent_in_canonical_form() -> None:
    raw = (ASSETS / f"{SDIST}.publish.attestation").read_text()
    with_extra = json.loads(raw) | {"extra": "kept"}
    (parsed,) = pep740.parse_attestations(json.dumps([with_extra], indent=2))
    assert json.loads(parsed.body) == with_extra
    assert parsed.sha256 == pep740.digest(with_extra)
    assert parsed.model.version == 1
    three = "[" + ",".join([raw] * 3) + "]"
    with pytest.raises(pep740.AttestationRefused, match="^A maximum of 2 attestations per file are supported$"):
        pep740.parse_attestations(three)


def test_the_real_attestations_verify_offline_and_other_files_or_identities_do_not() -> None:
    texts = [(ASSETS / f"{SDIST}.{kind}.attestation").read_text() for kind in ("publish", "slsa")]
    parsed = pep740.parse_attestations("[" + ",".join(texts) + "]")
    identity = GitHubPublisher(repository="trailofbits/pypi-attestations", workflow="release.yml")
    verifier = pep740.verifier()
    assert pep740.verify_all(parsed, identity, SDIST, SHA256, verifier) == [
        pep740.PUBLISH_V1, pep740.SLSA_PROVENANCE_V1,
    ]
    with pytest.raises(pep740.AttestationRefused, match="^Multiple attestations for the same file"):
        pep740.verify_all([parsed[0], parsed[0]], identity, SDIST, SHA256, verifier)
    for other in (
        GitHubPublisher(repository="trailofbits/pypi-attestations", workflow="other.yml"),
        GitHubPublisher(repository="trailofbits/other", workflow="release.yml"),
        GitLabPublisher(repository="trailofbits/pypi-attestations", workflow_filepath="release.yml"),
        GooglePublisher(email="release@example.iam.gserviceaccount.com"),
    ):
        with pytest.raises(pep740.AttestationRefused, match="^Could not verify the uploaded artifact"):
            pep740.verify_all(parsed[:1], other, SDIST, SHA256, verifier)


def test_the_identity_comes_from_the_logged_publisher() -> None:
    github = {"issuer": "https://token.actions.githubusercontent.com", "provider": "github",
              "repository": "o/r", "workflow": "release.yml", "ref": "refs/tags/v1", "sha": "a" * 40,
              "environment": "pypi"}
    assert pep740.publisher_json(pep740.attestation_identity(github)) == {
        "kind": "GitHub", "repository": "o/r", "workflow": "release.yml", "environment": "pypi",
    }
    gitlab = {**github, "provider": "gitlab", "repository": "g/sub/p", "workflow": "ci/release.yml",
              "environment": None}
    assert pep740.publisher_json(pep740.attestation_identity(gitlab)) == {
        "kind": "GitLab", "repository": "g/sub/p", "workflow_filepath": "ci/release.yml", "environment": None,
    }
    google = {**github, "provider": "google", "repository": None, "workflow": None, "email": "a@p.iam.example.com"}
    assert pep740.publisher_json(pep740.attestation_identity(google)) == {"kind": "Google", "email": "a@p.iam.example.com"}
    assert pep740.attestation_identity({**github, "provider": "activestate"}) is None
    assert pep740.attestation_identity(None) is None  # an API-token upload
    assert pep740.provider_label("activestate") == "ActiveState"


def test_trust_roots_come_from_a_file_or_the_embedded_production_root(tmp_path) -> None:
    assert pep740.load_trusted_root(None).get_fulcio_certs()
    for content, path in (("{}", tmp_path / "empty.json"), (None, tmp_path / "missing.json")):
        if content is not None:
            path.write_text(content)
        with pytest.raises(pep740.TrustRootError, match=f"cannot read the Sigstore trust root from {path}"):
            pep740.load_trusted_root(path)
