"""TokenVerifier against a real local HTTP issuer with real keys."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from app.oidc.errors import InvalidPayload, InvalidToken, NotEnabled, OIDCError
from app.oidc.providers import IssuerRegistry
from app.oidc.verifier import VerifiedToken
from tests.oidc.conftest import AUDIENCE, NOW, run
from tests.support.oidc_issuer import GITHUB_ISSUER, GITLAB_ISSUER


def verify(verifier, token, now=NOW) -> VerifiedToken:
    return run(verifier.verify(token, now))


def expect(error_type, verifier, token, now=NOW, match=None) -> OIDCError:
    with pytest.raises(error_type, match=match) as info:
        verify(verifier, token, now)
    assert type(info.value) is error_type  # not a broader or narrower class
    return info.value


# -- happy paths -----------------------------------------------------------------


@pytest.mark.parametrize("alg, kid", [("RS256", "rsa-1"), ("RS256", "rsa-2"), ("ES256", "ec-1")])
def test_valid_github_token(issuer, make_verifier, alg, kid):
    verifier, _ = make_verifier()
    claims = issuer.github_claims(now=NOW)
    result = verify(verifier, issuer.sign(claims, alg=alg, kid=kid))
    assert result.issuer == GITHUB_ISSUER
    assert result.provider == "github"
    assert (result.kid, result.alg) == (kid, alg)
    assert result.jti == claims["jti"]
    assert result.expires_at == NOW + 300 and result.issued_at == NOW
    assert result.claims["repository"] == "octo-org/sampleproject"


@pytest.mark.parametrize(
    "make_claims, provider, has_jti",
    [
        ("gitlab_claims", "gitlab", True),
        ("google_claims", "google", False),
        ("activestate_claims", "activestate", False),
    ],
)
def test_valid_tokens_of_other_providers(issuer, make_verifier, make_claims, provider, has_jti):
    verifier, _ = make_verifier()
    claims = getattr(issuer, make_claims)(now=NOW)
    result = verify(verifier, issuer.sign(claims))
    assert result.provider == provider
    assert (result.jti is not None) == has_jti


# -- InvalidPayload -----------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c", "e30.e30.", "....", "x" * 20000])
def test_malformed_tokens_are_invalid_payload(make_verifier, token):
    verifier, _ = make_verifier()
    err = expect(InvalidPayload, verifier, token)
    assert err.code == "invalid-payload"


def test_payload_not_json_object(make_verifier):
    verifier, _ = make_verifier()
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"rsa-1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b"[1,2]").rstrip(b"=").decode()
    expect(InvalidPayload, verifier, f"{header}.{body}.c2ln")


def test_non_string_token_is_invalid_payload(make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidPayload, verifier, None)  # type: ignore[arg-type]


def test_unknown_issuer(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, iss="https://evil.example.com"))
    err = expect(InvalidPayload, verifier, token, match="unknown OIDC token issuer")
    assert err.code == "invalid-payload"
    assert issuer.request_counts == {}  # nothing fetched for an unknown issuer


def test_missing_iss_is_invalid_payload(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidPayload, verifier, issuer.sign(issuer.github_claims(now=NOW, iss=None)))


def test_issuer_compared_exactly(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, iss=GITHUB_ISSUER + "/"))
    expect(InvalidPayload, verifier, token)


# -- NotEnabled -----------------------------------------------------------------------


def test_disabled_issuer(issuer, make_verifier):
    verifier, _ = make_verifier(registry=IssuerRegistry.without(["github"]))
    err = expect(NotEnabled, verifier, issuer.sign(issuer.github_claims(now=NOW)))
    assert err.code == "not-enabled"
    # GitLab still works with that registry.
    assert verify(verifier, issuer.sign(issuer.gitlab_claims(now=NOW))).provider == "gitlab"


# -- InvalidToken: algorithm and signature ----------------------------------------------


def _unsigned(claims: dict, header: dict) -> str:
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc(header)}.{enc(claims)}."


def test_alg_none_refused(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = _unsigned(issuer.github_claims(now=NOW), {"alg": "none", "kid": "rsa-1", "typ": "JWT"})
    err = expect(InvalidToken, verifier, token, match="only RS256 and ES256")
    assert err.code == "invalid-token"


def test_hs256_with_public_key_as_secret_refused(issuer, make_verifier):
    verifier, _ = make_verifier()
    public_pem = (
        issuer.private_key("rsa-1")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = _unsigned(issuer.github_claims(now=NOW), header)[:-1].encode()
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    expect(InvalidToken, verifier, token, match="only RS256 and ES256")


def test_rs384_refused(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW), alg="RS384"))


def test_alg_not_matching_key_type(issuer, make_verifier):
    verifier, _ = make_verifier()
    # Signed by the EC key but claims kid of an RSA key.
    token = issuer.sign(issuer.github_claims(now=NOW), alg="ES256", kid="ec-1", headers={"kid": "rsa-1"})
    expect(InvalidToken, verifier, token, match="does not match its signing key")


def test_signature_by_another_key(issuer, make_verifier):
    verifier, _ = make_verifier()
    # Signed with rsa-2 but claims rsa-1: a published kid, the wrong key.
    token = issuer.sign(issuer.github_claims(now=NOW), kid="rsa-2", headers={"kid": "rsa-1"})
    expect(InvalidToken, verifier, token, match="signature does not verify")


def test_signature_by_unpublished_key(issuer, make_verifier):
    verifier, _ = make_verifier()
    rogue = issuer.add_key("EC", publish=False)
    token = issuer.sign(issuer.github_claims(now=NOW), alg="ES256", kid=rogue)
    expect(InvalidToken, verifier, token, match="unknown signing key")


def test_tampered_payload(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["repository"] = "attacker/sampleproject"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    expect(InvalidToken, verifier, f"{header}.{forged}.{signature}", match="signature")


def test_missing_kid(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = jwt.encode(issuer.github_claims(now=NOW), issuer.private_key("rsa-1"), algorithm="RS256")
    expect(InvalidToken, verifier, token, match="no key id")


# -- InvalidToken: audience -----------------------------------------------------------------


def test_wrong_audience(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, audience="pypi")), match="audience")


def test_audience_list_with_ours_and_another(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, audience=[AUDIENCE, "pypi"]))
    expect(InvalidToken, verifier, token, match="audience")


def test_audience_single_element_list_refused_as_on_pypi(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, audience=[AUDIENCE]))
    expect(InvalidToken, verifier, token, match="audience")


def test_missing_audience(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, aud=None)), match="'aud'")


# -- InvalidToken: required claims and time --------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "jti"])
def test_missing_required_claim(issuer, make_verifier, claim):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, **{claim: None}))
    expect(InvalidToken, verifier, token, match=f"required claim '{claim}'")


def test_missing_jti_is_fine_for_google(issuer, make_verifier):
    verifier, _ = make_verifier()
    assert verify(verifier, issuer.sign(issuer.google_claims(now=NOW))).jti is None


def test_non_string_jti(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, jti=12)))


@pytest.mark.parametrize(
    "offset, ok",
    [
        (299, True),  # just before exp
        (300 + 29, True),  # past exp, within leeway
        (300 + 30, False),  # exp + leeway reached
        (10_000, False),
    ],
)
def test_expiry_with_leeway(issuer, make_verifier, offset, ok):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW))
    if ok:
        verify(verifier, token, now=NOW + offset)
    else:
        expect(InvalidToken, verifier, token, now=NOW + offset, match="expired")


def test_nbf_in_future(issuer, make_verifier):
    verifier, _ = make_verifier()
    token = issuer.sign(issuer.github_claims(now=NOW, nbf=NOW + 120))
    expect(InvalidToken, verifier, token, match="not valid yet")
    verify(verifier, token, now=NOW + 100)  # within leeway of nbf


def test_iat_in_future(issuer, make_verifier):
    verifier, _ = make_verifier()
    claims = issuer.github_claims(now=NOW + 60, nbf=None)
    expect(InvalidToken, verifier, issuer.sign(claims), match="issued in the future")
    verify(verifier, issuer.sign(claims), now=NOW + 31)


def test_time_claims_must_be_numbers(issuer, make_verifier):
    verifier, _ = make_verifier()
    for bad in ({"exp": "soon"}, {"iat": True}, {"nbf": "now"}):
        expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, **bad)))


DAY = 24 * 3600
YEAR = 365 * DAY


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": 10**19},  # past the 64-bit integers it is stored as
        {"exp": 1e300},
        {"exp": float("inf")},
        {"exp": -(10**19)},
        {"iat": -(10**19)},
        {"iat": -1},
        {"iat": 1e300},
        {"nbf": 10**19},
        {"nbf": -1e300},
        {"exp": True},
        {"iat": False},
        {"nbf": True},
        {"exp": "2030-01-01"},
        {"iat": "now"},
        {"exp": [NOW + 300]},
        {"exp": NOW + 10 * YEAR},  # a ten-year token issued now
        {"iat": NOW - 10 * YEAR, "nbf": NOW - 10 * YEAR},  # a ten-year token about to expire
        {"exp": NOW + DAY + 31, "iat": NOW + 30, "nbf": NOW + 30},  # a day, but expires too far ahead
        {"exp": NOW + DAY + 1},  # a day and a second
    ],
)
def test_time_claims_out_of_range_or_too_long_lived_are_invalid_token(issuer, make_verifier, bad):
    verifier, _ = make_verifier()
    err = expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, **bad)))
    assert err.code == "invalid-token"


@pytest.mark.parametrize(
    "claims, now",
    [
        ({"exp": NOW + DAY}, NOW),  # exactly the longest lifetime
        ({"exp": NOW + DAY, "iat": NOW, "nbf": None}, NOW - 30),  # issued within leeway of our clock
        ({"exp": NOW + 300.5, "iat": NOW + 0.25, "nbf": NOW + 0.25}, NOW),  # fractional seconds
    ],
)
def test_tokens_of_up_to_a_day_verify(issuer, make_verifier, claims, now):
    verifier, _ = make_verifier()
    result = verify(verifier, issuer.sign(issuer.github_claims(now=NOW, **claims)), now=now)
    assert result.expires_at == int(claims["exp"])


def test_long_lived_token_is_refused_with_frozen_wall_clock(issuer, make_verifier):
    verifier, _ = make_verifier()
    with freeze_time("2031-03-04 05:06:07"):
        token = issuer.sign(issuer.github_claims(now=time.time(), lifetime=10 * YEAR))
        expect(InvalidToken, verifier, token, now=time.time(), match="lives too long")


def test_expires_before_issued(issuer, make_verifier):
    verifier, _ = make_verifier()
    expect(InvalidToken, verifier, issuer.sign(issuer.github_claims(now=NOW, exp=NOW - 1)), now=NOW - 5)


def test_no_clock_is_read_a_2024_token_verifies_at_its_own_now(issuer, make_verifier):
    # NOW is long past on the wall clock; only the injected `now` counts.
    verifier, _ = make_verifier()
    assert time.time() > NOW + 300
    verify(verifier, issuer.sign(issuer.github_claims(now=NOW)), now=NOW + 10)


def test_with_frozen_wall_clock(issuer, make_verifier):
    verifier, _ = make_verifier()
    with freeze_time("2031-03-04 05:06:07"):
        now = time.time()
        token = issuer.sign(issuer.github_claims(now=now))
        assert verify(verifier, token, now=time.time()).issued_at == int(now)
        expect(InvalidToken, verifier, token, now=time.time() + 3600, match="expired")


# -- robustness -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()))
def test_garbage_only_raises_oidc_errors(garbage):
    from app.oidc.jwks import JWKSCache
    from app.oidc.verifier import TokenVerifier

    async def never_fetch(url: str) -> bytes:
        raise AssertionError("garbage must not reach the network")

    verifier = TokenVerifier(IssuerRegistry.default(), JWKSCache(never_fetch), AUDIENCE)
    with pytest.raises(OIDCError):
        run(verifier.verify(garbage, NOW))


def test_wrong_issuer_key_set_does_not_cross_issuers(issuer, make_verifier):
    # A GitLab-issued token is checked against GitLab's key set only.
    rogue = issuer.add_key("RSA", publish=False)
    overrides = {GITHUB_ISSUER: issuer.jwks_url}
    verifier, _ = make_verifier(overrides=overrides)
    token = issuer.sign(issuer.gitlab_claims(now=NOW), kid=rogue)
    with pytest.raises(InvalidToken):
        verify(verifier, token)
    assert GITLAB_ISSUER not in overrides


def test_https_issuer_keys_are_never_fetched_over_plain_http():
    """A discovery document of an https issuer pointing at an http jwks_uri is refused."""
    import asyncio
    import json as _json

    from app.oidc.errors import JWKSUnavailable
    from app.oidc.jwks import JWKSCache

    issuer = "https://token.actions.githubusercontent.com"
    fetched = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return _json.dumps({"issuer": issuer, "jwks_uri": "http://evil.example/jwks"}).encode()

    cache = JWKSCache(fetch)
    with pytest.raises(JWKSUnavailable, match="jwks_uri"):
        asyncio.run(cache.get_key(issuer, "kid-1"))
    assert fetched == [issuer + "/.well-known/openid-configuration"]
