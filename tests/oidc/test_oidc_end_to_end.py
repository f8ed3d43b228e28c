"""End to end: the `id` package fetches a token from the local GitHub-Actions-style
endpoint; TokenVerifier and a GitHubPublisher accept it. Also the dev issuer,
the registry and the error codes."""

from __future__ import annotations

import json
import time

import id as oidc_id
import pytest

from app.oidc import errors
from app.oidc.dev_issuer import DevIssuer, github_claims
from app.oidc.jwks import JWKSCache, httpx_fetcher
from app.oidc.providers import GITHUB, IssuerRegistry, identity_claims
from app.oidc.publishers import GitHubPublisher
from app.oidc.verifier import TokenVerifier
from tests.oidc.conftest import AUDIENCE, NOW, run
from tests.support.oidc_issuer import GITHUB_ISSUER


def test_id_package_end_to_end(issuer, make_verifier, monkeypatch):
    for name, value in issuer.github_actions_env().items():
        monkeypatch.setenv(name, value)
    issuer.token_alg = "ES256"

    token = oidc_id.detect_credential(audience=AUDIENCE)

    assert token is not None
    ((audience, auth),) = issuer.token_requests
    assert audience == AUDIENCE and auth == f"bearer {issuer.request_token}"
    verifier, _ = make_verifier()
    verified = run(verifier.verify(token, time.time()))
    assert (verified.issuer, verified.provider, verified.alg) == (GITHUB_ISSUER, "github", "ES256")
    GitHubPublisher("octo-org/sampleproject", "65432", "release.yml", "pypi").check(verified.claims)


def test_id_package_wrong_request_token(issuer, monkeypatch):
    env = issuer.github_actions_env()
    env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(oidc_id.IdentityError, match="401"):
        oidc_id.detect_credential(audience=AUDIENCE)


def test_dev_issuer_mints_verifiable_tokens(tmp_path):
    dev = DevIssuer("http://localhost:8000/_/dev-oidc")
    again = DevIssuer("http://localhost:8000/_/dev-oidc", key_pem=dev.key_pem)
    assert again.kid == dev.kid and again.jwks() == dev.jwks()
    assert dev.discovery_document()["issuer"] == dev.issuer_url

    jwks_file = tmp_path / "dev-jwks.json"
    jwks_file.write_text(json.dumps(dev.jwks()))
    registry = IssuerRegistry.default().with_issuer(dev.issuer_url, "github")
    cache = JWKSCache(httpx_fetcher(), overrides={dev.issuer_url: jwks_file.as_uri()})
    verifier = TokenVerifier(registry, cache, AUDIENCE)

    claims = github_claims("dev-org/demo", "4242", "release.yml", environment="pypi")
    token = dev.mint(claims, AUDIENCE, now=NOW)
    verified = run(verifier.verify(token, NOW + 1))
    assert verified.provider == "github" and verified.alg == "ES256" and verified.jti
    assert verified.expires_at == NOW + 300
    GitHubPublisher("dev-org/demo", "4242", "release.yml", "pypi").check(verified.claims)
    with pytest.raises(errors.InvalidToken, match="expired"):
        run(verifier.verify(token, NOW + 400))


def test_dev_issuer_refuses_non_p256_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        DevIssuer("https://dev.example", key_pem=pem)


def test_error_codes_and_hierarchy():
    expected = {
        errors.InvalidPayload: "invalid-payload",
        errors.InvalidToken: "invalid-token",
        errors.JWKSUnavailable: "invalid-token",
        errors.ReusedToken: "invalid-reuse-token",
        errors.InvalidPublisher: "invalid-publisher",
        errors.NotEnabled: "not-enabled",
    }
    for cls, code in expected.items():
        err = cls("why") if cls is not errors.ReusedToken else cls()
        assert issubclass(cls, errors.OIDCError) and err.code == code and err.description
        assert code in str(err)


def test_registry_rules():
    registry = IssuerRegistry.default()
    assert registry.resolve(GITHUB_ISSUER) is GITHUB
    with pytest.raises(errors.InvalidPayload):
        registry.resolve("https://example.com")
    with pytest.raises(errors.InvalidPayload):
        registry.resolve(None)
    off = IssuerRegistry({"https://gitlab.com": "gitlab"})
    with pytest.raises(errors.NotEnabled, match="github"):
        off.resolve(GITHUB_ISSUER)
    with pytest.raises(ValueError):
        IssuerRegistry({"https://x.example": "bitbucket"})


def test_identity_claims_keeps_only_present_scalars():
    claims = {"sub": "repo:a/b", "repository": "a/b", "run_attempt": "1", "environment": None,
              "groups": ["x"], "unrelated": "y", "email_verified": True}
    assert identity_claims("github", claims) == {"sub": "repo:a/b", "repository": "a/b", "run_attempt": "1"}
    assert identity_claims("google", claims) == {"sub": "repo:a/b", "email_verified": True}
