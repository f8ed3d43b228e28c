"""JWKSCache: discovery, overrides, file://, refresh on unknown kid, cool-down, coalescing."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.oidc.errors import InvalidToken, JWKSUnavailable
from app.oidc.jwks import JWKSCache, httpx_fetcher, parse_jwks
from app.oidc.providers import IssuerRegistry
from app.oidc.verifier import TokenVerifier
from tests.oidc.conftest import AUDIENCE, NOW, run
from tests.support.oidc_issuer import GITHUB_ISSUER, public_jwk


def test_unknown_kid_triggers_refresh_then_found(issuer, make_verifier, clock):
    verifier, cache = make_verifier()
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))
    assert issuer.request_counts["/jwks"] == 1
    assert cache.cached_kids(GITHUB_ISSUER) == {"rsa-1", "rsa-2", "ec-1"}

    rotated = issuer.add_key("EC")  # the issuer rotates in a new key
    clock.advance(60)  # after the cool-down of the first fetch
    result = run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW), alg="ES256", kid=rotated), NOW))
    assert result.kid == rotated
    assert issuer.request_counts["/jwks"] == 2


def test_first_fetch_is_not_held_back_by_cooldown(issuer, make_verifier):
    verifier, _ = make_verifier(cooldown=3600)
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))
    assert issuer.request_counts["/jwks"] == 1


def test_unknown_kid_twice_within_cooldown_fetches_once(issuer, make_verifier, clock):
    verifier, cache = make_verifier(cooldown=60)
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))  # initial fetch
    assert issuer.request_counts["/jwks"] == 1
    clock.advance(61)

    # Still unknown after the first refresh: both attempts fail, one fetch.
    for invented in ("nope-1", "nope-2"):
        token = issuer.sign(issuer.github_claims(now=NOW), headers={"kid": invented})
        with pytest.raises(InvalidToken, match="unknown signing key") as info:
            run(verifier.verify(token, NOW))
        assert info.value.code == "invalid-token"
        clock.advance(10)
    assert issuer.request_counts["/jwks"] == 2

    # A new real key inside the cool-down is not fetched yet ...
    rotated = issuer.add_key("RSA")
    token = issuer.sign(issuer.github_claims(now=NOW), kid=rotated)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        run(verifier.verify(token, NOW))
    assert issuer.request_counts["/jwks"] == 2
    # ... but once the cool-down has passed it is.
    clock.advance(60)
    assert run(verifier.verify(token, NOW)).kid == rotated
    assert issuer.request_counts["/jwks"] == 3
    assert cache.fetch_count(GITHUB_ISSUER) == 3


def test_known_kids_never_refetch(issuer, make_verifier, clock):
    verifier, _ = make_verifier()
    for _ in range(5):
        clock.advance(1000)
        run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))
    assert issuer.request_counts["/jwks"] == 1


def test_removed_key_is_dropped_on_refresh(issuer, make_verifier, clock):
    verifier, cache = make_verifier()
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))
    issuer.unpublish("rsa-2")
    clock.advance(61)
    assert run(cache.refresh(GITHUB_ISSUER)) is True
    assert "rsa-2" not in cache.cached_kids(GITHUB_ISSUER)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW), kid="rsa-2"), NOW))


def test_concurrent_refreshes_coalesce(issuer, make_verifier):
    verifier, _ = make_verifier()
    rotated = issuer.add_key("EC")
    tokens = [issuer.sign(issuer.github_claims(now=NOW), alg="ES256", kid=rotated) for _ in range(20)]

    async def all_at_once():
        return await asyncio.gather(*(verifier.verify(t, NOW) for t in tokens))

    results = run(all_at_once())
    assert {r.kid for r in results} == {rotated}
    assert issuer.request_counts["/jwks"] == 1


def test_discovery_document_is_followed(issuer, clock):
    # Without an override, the JWKS URL comes from <issuer>/.well-known/openid-configuration.
    local_issuer = issuer.base_url
    cache = JWKSCache(httpx_fetcher(), clock=clock)
    verifier = TokenVerifier(IssuerRegistry({local_issuer: "github"}), cache, AUDIENCE)
    token = issuer.sign(issuer.github_claims(now=NOW, iss=local_issuer))
    assert run(verifier.verify(token, NOW)).issuer == local_issuer
    assert issuer.request_counts["/.well-known/openid-configuration"] == 1
    assert issuer.request_counts["/jwks"] == 1


def test_discovery_under_a_path_prefix(issuer, clock):
    local_issuer = issuer.issuer_url("/api/v1/oauth/oidc")
    cache = JWKSCache(httpx_fetcher(), clock=clock)
    verifier = TokenVerifier(IssuerRegistry({local_issuer: "activestate"}), cache, AUDIENCE)
    token = issuer.sign(issuer.activestate_claims(now=NOW, iss=local_issuer))
    assert run(verifier.verify(token, NOW)).provider == "activestate"
    assert issuer.request_counts["/api/v1/oauth/oidc/.well-known/openid-configuration"] == 1


def test_discovery_naming_another_issuer_is_refused(issuer, clock):
    issuer.discovery_issuer = "https://somewhere-else.example"
    cache = JWKSCache(httpx_fetcher(), clock=clock)
    with pytest.raises(JWKSUnavailable, match="discovery document names issuer"):
        run(cache.get_key(issuer.base_url, "rsa-1"))


def test_file_url_override(issuer, tmp_path, clock):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks()))
    cache = JWKSCache(httpx_fetcher(), overrides={GITHUB_ISSUER: path.as_uri()}, clock=clock)
    verifier = TokenVerifier(IssuerRegistry.default(), cache, AUDIENCE)
    result = run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW), alg="ES256"), NOW))
    assert result.kid == "ec-1"
    assert issuer.request_counts["/jwks"] == 0


def test_fetch_failure_is_typed_and_cooled_down(tmp_path, clock):
    calls: list[str] = []

    async def failing(url: str) -> bytes:
        calls.append(url)
        raise OSError("connection refused")

    cache = JWKSCache(failing, overrides={GITHUB_ISSUER: "https://keys.invalid/jwks"}, clock=clock)
    with pytest.raises(JWKSUnavailable, match=f"could not fetch JWKS for issuer {GITHUB_ISSUER}") as info:
        run(cache.get_key(GITHUB_ISSUER, "k"))
    assert info.value.code == "invalid-token" and isinstance(info.value, InvalidToken)
    with pytest.raises(JWKSUnavailable):
        run(cache.get_key(GITHUB_ISSUER, "k"))
    assert len(calls) == 1  # the failure started the cool-down


def test_missing_file_and_http_error_are_typed(issuer, tmp_path, clock):
    cache = JWKSCache(
        httpx_fetcher(),
        overrides={
            GITHUB_ISSUER: (tmp_path / "absent.json").as_uri(),
            "https://gitlab.com": issuer.base_url + "/no-such-path",
        },
        clock=clock,
    )
    with pytest.raises(JWKSUnavailable, match="FileNotFoundError"):
        run(cache.get_key(GITHUB_ISSUER, "rsa-1"))
    with pytest.raises(JWKSUnavailable, match="404"):
        run(cache.get_key("https://gitlab.com", "rsa-1"))


def test_failed_refresh_keeps_cached_keys(issuer, clock):
    documents = [json.dumps(issuer.jwks()).encode(), b"<html>oops</html>"]

    async def fetch(url: str) -> bytes:
        return documents.pop(0)

    cache = JWKSCache(fetch, overrides={GITHUB_ISSUER: "https://x/jwks"}, clock=clock)
    assert run(cache.get_key(GITHUB_ISSUER, "rsa-1"))
    clock.advance(61)
    with pytest.raises(JWKSUnavailable):
        run(cache.get_key(GITHUB_ISSUER, "unknown"))
    assert run(cache.get_key(GITHUB_ISSUER, "rsa-1"))  # still cached


def test_parse_jwks_accepts_only_rsa_and_p256(issuer):
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = public_jwk(ec.generate_private_key(ec.SECP384R1()), "p384")
    keys = [
        public_jwk(issuer.private_key("rsa-1"), "rsa"),
        public_jwk(issuer.private_key("ec-1"), "ec"),
        p384,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**public_jwk(issuer.private_key("rsa-2"), "enc"), "use": "enc"},
        {**public_jwk(issuer.private_key("rsa-2"), "wrong-alg"), "alg": "RS512"},
        {**public_jwk(issuer.private_key("ec-1"), "")},
        "not a key",
    ]
    assert set(parse_jwks({"keys": keys})) == {"rsa", "ec"}
    with pytest.raises(ValueError):
        parse_jwks({"no": "keys"})
