"""JWKSCache.refresh_ahead: the periodic job keeps each known issuer's keys fresh,
so an exchange finds new keys cached and withdrawn keys gone without a fetch."""

from __future__ import annotations

import pytest

from app.oidc.errors import InvalidToken
from app.oidc.jwks import JWKSCache, httpx_fetcher
from app.oidc.providers import IssuerRegistry
from app.oidc.verifier import TokenVerifier
from tests.oidc.conftest import AUDIENCE, NOW, run
from tests.support.oidc_issuer import GITHUB_ISSUER


def _verifier(issuer, clock, fetch=None):
    cache = JWKSCache(
        fetch or httpx_fetcher(), overrides=issuer.jwks_overrides(GITHUB_ISSUER), refresh_cooldown=60, clock=clock
    )
    return TokenVerifier(IssuerRegistry.default(), cache, AUDIENCE), cache


def test_configured_issuer_is_fetched_before_the_first_token(issuer, clock):
    verifier, cache = _verifier(issuer, clock)
    assert run(cache.refresh_ahead(1800)) == {GITHUB_ISSUER: None}
    assert issuer.request_counts["/jwks"] == 1
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))
    assert issuer.request_counts["/jwks"] == 1  # the exchange did not wait on a fetch


def test_keys_are_refreshed_once_they_are_old(issuer, clock):
    verifier, cache = _verifier(issuer, clock)
    run(cache.refresh_ahead(1800))
    clock.advance(1799)
    assert run(cache.refresh_ahead(1800)) == {}  # still fresh: nothing fetched
    assert issuer.request_counts["/jwks"] == 1

    rotated = issuer.add_key("EC")
    issuer.unpublish("rsa-1")
    clock.advance(1)
    assert run(cache.refresh_ahead(1800)) == {GITHUB_ISSUER: None}
    assert issuer.request_counts["/jwks"] == 2
    assert rotated in cache.cached_kids(GITHUB_ISSUER) and "rsa-1" not in cache.cached_kids(GITHUB_ISSUER)
    clock.advance(5)  # inside the unknown-kid cool-down: only the refreshed cache can answer
    assert run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW), alg="ES256", kid=rotated), NOW)).kid == rotated
    with pytest.raises(InvalidToken, match="unknown signing key"):
        run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW), kid="rsa-1"), NOW))
    assert issuer.request_counts["/jwks"] == 2


def test_a_failed_refresh_keeps_the_keys_held_and_is_retried(issuer, clock):
    down = {"now": False}
    real = httpx_fetcher()

    async def fetch(url: str) -> bytes:
        if down["now"]:
            raise OSError("issuer unreachable")
        return await real(url)

    verifier, cache = _verifier(issuer, clock, fetch)
    run(cache.refresh_ahead(1800))
    held = cache.cached_kids(GITHUB_ISSUER)
    down["now"] = True
    clock.advance(1800)
    outcome = run(cache.refresh_ahead(1800))
    assert "issuer unreachable" in outcome[GITHUB_ISSUER]
    assert cache.cached_kids(GITHUB_ISSUER) == held
    run(verifier.verify(issuer.sign(issuer.github_claims(now=NOW)), NOW))  # still verifies
    down["now"] = False
    clock.advance(1)  # a failure is retried at the next round, not an interval later
    assert run(cache.refresh_ahead(1800)) == {GITHUB_ISSUER: None}
