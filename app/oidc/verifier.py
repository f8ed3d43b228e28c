"""OIDC token verification: signature, algorithm, issuer, audience, time.

:class:`TokenVerifier` turns a raw JWT into a :class:`VerifiedToken` or raises
an :mod:`app.oidc.errors` error. It checks, in order:

1. the token parses (header + payload JSON)          -> InvalidPayload
2. ``iss`` names an enabled issuer                    -> InvalidPayload / NotEnabled
3. ``alg`` is RS256 or ES256 (never ``none``, HS*)    -> InvalidToken
4. ``kid`` names a key in the issuer's JWKS           -> InvalidToken
5. signature, exact ``iss``, a single ``aud`` equal to
   ours, required claims present                      -> InvalidToken
6. ``exp``, ``iat`` (required) and ``nbf`` (if present)
   are numbers in range; checked against the injected
   ``now`` with ``leeway``; the token lives at most
   ``MAX_TOKEN_LIFETIME`` and expires at most that far
   ahead of ``now``                                   -> InvalidToken
7. ``jti`` present where the provider sends one       -> InvalidToken

The verifier never reads the clock: ``now`` (unix seconds) is an argument.
Single use of ``jti`` is not checked here; the exchange service owns that
store and uses ``VerifiedToken.jti`` and ``expires_at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jwt

from app.oidc.errors import InvalidPayload, InvalidToken
from app.oidc.jwks import JWKSCache
from app.oidc.providers import IssuerRegistry

__all__ = ["ALLOWED_ALGORITHMS", "VerifiedToken", "TokenVerifier"]

#: The only JWS algorithms accepted, with the JWK key type each needs.
ALLOWED_ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}

#: Tokens are short strings; anything far larger is refused unparsed.
MAX_TOKEN_LENGTH = 16 * 1024

#: Longest accepted token lifetime (``exp - iat``), and farthest ``exp`` ahead
#: of ``now`` (plus leeway). The CI providers issue tokens for minutes (GitHub
#: Actions: 5 minutes) up to an hour (Google); GitLab's last as long as the
#: job's timeout, one hour by default. A day leaves room for long GitLab jobs
#: while refusing tokens that are not short-lived at all, and it bounds how
#: long a token's ``jti`` must be remembered to refuse its replay.
MAX_TOKEN_LIFETIME = 24 * 3600

#: Time claims outside [0, this] (9999-12-31T23:59:59Z) are refused outright,
#: before any arithmetic: they are not dates of a token issued today, and
#: larger values overflow the 64-bit integers they are stored as.
MAX_NUMERIC_DATE = 253_402_300_799


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and standard claims were checked.

    ``provider`` is the provider name (``github``...), ``claims`` the full
    verified payload, ``jti`` None only for providers that do not send one.
    """

    issuer: str
    provider: str
    kid: str
    alg: str
    claims: dict[str, Any]
    jti: str | None
    expires_at: int
    issued_at: int


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    """The claim as a finite number of seconds in [0, MAX_NUMERIC_DATE]; else InvalidToken."""
    value = claims[name]
    # bool is an int subclass; RFC 7519 NumericDate is a JSON number.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidToken(f"the {name} claim is not a number")
    if not 0 <= value <= MAX_NUMERIC_DATE:
        raise InvalidToken(f"the {name} claim is not a plausible date")
    return float(value)


class TokenVerifier:
    """TokenVerifier verifies OIDC tokens from the registry's enabled issuers."""

    def __init__(
        self,
        registry: IssuerRegistry,
        jwks: JWKSCache,
        audience: str,
        leeway: float = 30,
    ) -> None:
        if not audience:
            raise ValueError("audience must be a non-empty string")
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        self._registry = registry
        self._jwks = jwks
        self._audience = audience
        self._leeway = leeway

    @property
    def audience(self) -> str:
        return self._audience

    @property
    def jwks(self) -> JWKSCache:
        """The issuers' key cache (its refresh-ahead job runs in every process)."""
        return self._jwks

    async def verify(self, raw_token: str, now: float) -> VerifiedToken:
        """verify checks ``raw_token`` at unix time ``now`` and returns its claims."""
        if not isinstance(raw_token, str) or not raw_token:
            raise InvalidPayload("no OIDC token was supplied")
        if len(raw_token) > MAX_TOKEN_LENGTH or raw_token.count(".") != 2 or not raw_token.isascii():
            raise InvalidPayload("the OIDC token is not a well-formed JWT")

        # 1. Parse without trusting anything, only to pick issuer and key.
        try:
            parsed = jwt.decode_complete(raw_token, options={"verify_signature": False})
            header, unverified = parsed["header"], parsed["payload"]
        except jwt.PyJWTError as exc:
            raise InvalidPayload("the OIDC token is not a well-formed JWT") from exc
        if not isinstance(unverified, dict):
            raise InvalidPayload("the OIDC token payload is not a JSON object")

        # 2. The issuer decides provider and key set.
        issuer = unverified.get("iss")
        provider = self._registry.resolve(issuer)
        assert isinstance(issuer, str)  # resolve() refuses anything else

        # 3. Algorithm: an allow-list, checked before any key is looked up.
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken(
                f"the OIDC token uses algorithm {str(alg)[:20]!r}; only RS256 and ES256 are accepted"
            )

        # 4. Key by kid (refreshing the issuer's JWKS once if unknown).
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the OIDC token header has no key id (kid)")
        jwk = await self._jwks.get_key(issuer, kid)
        if jwk.key_type != ALLOWED_ALGORITHMS[alg]:
            raise InvalidToken(
                f"the OIDC token's algorithm {alg} does not match its signing key (kid {kid[:100]!r})"
            )

        # 5. Signature and standard claims.
        required = ["iss", "aud", "exp", "iat"]
        if provider.requires_jti:
            required.append("jti")
        try:
            # NOTE: most of these are PyJWT's defaults; they are set explicitly
            # to assert the intended verification behaviour.
            claims = jwt.decode(
                raw_token,
                key=jwk.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=issuer,
                options={
                    "verify_signature": True,
                    # "require" checks presence only; validity is checked by
                    # the matching verify_* option or, for times, below.
                    "require": required,
                    "verify_iss": True,
                    "verify_aud": True,
                    # We must be the ONLY audience: a string equal to ours.
                    "strict_aud": True,
                    # Time claims are checked below against the injected
                    # `now`; PyJWT would read the wall clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_sub": True,
                    "verify_jti": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("the OIDC token's signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the OIDC token lacks the required claim {exc.claim!r}") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken(
                f"the OIDC token's audience (aud) must be exactly {self._audience!r}"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("the OIDC token's issuer (iss) is invalid") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the OIDC token is invalid: {exc}") from exc

        # 6. Time, against the injected clock.
        expires_at = _numeric_date(claims, "exp")
        issued_at = _numeric_date(claims, "iat")
        not_before = _numeric_date(claims, "nbf") if claims.get("nbf") is not None else None
        if expires_at <= now - self._leeway:
            raise InvalidToken("the OIDC token has expired")
        if issued_at > now + self._leeway:
            raise InvalidToken("the OIDC token was issued in the future (iat)")
        if expires_at <= issued_at:
            raise InvalidToken("the OIDC token expires before it was issued")
        if expires_at - issued_at > MAX_TOKEN_LIFETIME or expires_at > now + self._leeway + MAX_TOKEN_LIFETIME:
            raise InvalidToken(
                f"the OIDC token lives too long: at most {MAX_TOKEN_LIFETIME // 3600} hours "
                "are accepted (exp, iat)"
            )
        if not_before is not None and not_before > now + self._leeway:
            raise InvalidToken("the OIDC token is not valid yet (nbf)")

        # 7. jti: required (and a non-empty string) where the provider sends it.
        jti = claims.get("jti")
        if jti is not None and (not isinstance(jti, str) or not jti):
            raise InvalidToken("the OIDC token's jti claim is not a non-empty string")
        if provider.requires_jti and jti is None:
            raise InvalidToken("the OIDC token lacks the required claim 'jti'")

        return VerifiedToken(
            issuer=issuer,
            provider=provider.name,
            kid=kid,
            alg=alg,
            claims=dict(claims),
            jti=jti,
            expires_at=int(expires_at),
            issued_at=int(issued_at),
        )
