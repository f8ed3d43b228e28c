"""Typed errors of the OIDC layer, each carrying PyPI's error code.

Every failure to turn an OIDC token into a trusted-publisher identity raises
a subclass of :class:`OIDCError`. ``code`` is the machine-readable code PyPI's
``/_/oidc/mint-token`` answers with; ``description`` is the human text that
twine and ``pypa/gh-action-pypi-publish`` print to the user. The HTTP layer
maps the whole tree to one status (PyPI uses 422) in one place.

::

    OIDCError                      (abstract; never raised itself)
     +-- InvalidPayload            "invalid-payload"
     |                             not JSON, no token, malformed JWT,
     |                             missing ``iss``, unknown issuer
     +-- NotEnabled                "not-enabled"
     |                             the issuer is known but switched off
     +-- InvalidToken              "invalid-token"
     |    |                        algorithm, signature, unknown signing key,
     |    |                        audience, expiry, iat/nbf, missing claims
     |    +-- JWKSUnavailable      (same code) the issuer's discovery
     |                             document / JWKS could not be fetched or
     |                             parsed; a subclass so an operator can
     |                             alert on it separately
     +-- ReusedToken               "invalid-reuse-token"
     |                             the token's ``jti`` was already used
     |                             (raised by the exchange service, which owns
     |                             the single-use store)
     +-- InvalidPublisher          "invalid-publisher"
                                   a valid token, but no trusted publisher
                                   matches it; the description says which
                                   claim failed

Descriptions name the failing claim or rule; they never echo configured
publisher values, so a caller cannot probe a project's configuration.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "OIDCError",
    "InvalidPayload",
    "NotEnabled",
    "InvalidToken",
    "JWKSUnavailable",
    "ReusedToken",
    "InvalidPublisher",
]


class OIDCError(Exception):
    """Base of every OIDC failure: ``code`` (PyPI's) and ``description``."""

    code: ClassVar[str] = "oidc-error"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidPayload(OIDCError):
    """The request or token cannot even be parsed, or names an unknown issuer."""

    code = "invalid-payload"


class NotEnabled(OIDCError):
    """The token's issuer is known but disabled by the operator."""

    code = "not-enabled"


class InvalidToken(OIDCError):
    """The token failed a cryptographic or standard-claim check."""

    code = "invalid-token"


class JWKSUnavailable(InvalidToken):
    """The issuer's keys could not be fetched; the token cannot be checked.

    Kept under :class:`InvalidToken` (code ``invalid-token``) because, to the
    caller, the token was not verified; the distinct type lets the service log
    or alert on an unreachable issuer.
    """


class ReusedToken(OIDCError):
    """The token's ``jti`` has been seen before (single use)."""

    code = "invalid-reuse-token"

    def __init__(self, description: str = "the OIDC token has already been used") -> None:
        super().__init__(description)


class InvalidPublisher(OIDCError):
    """A valid token that no configured trusted publisher accepts."""

    code = "invalid-publisher"
