"""A built-in OIDC issuer for development mode.

:class:`DevIssuer` holds one EC P-256 key and mints GitHub-shaped ID tokens,
so a developer can exercise the whole trusted-publishing flow without a CI
provider. Register its URL in the :class:`~app.oidc.providers.IssuerRegistry`
with the ``github`` provider shape and serve :meth:`DevIssuer.discovery_document`
and :meth:`DevIssuer.jwks` (or point the JWKS override at them).

The key is generated when ``key_pem`` is None; persist :attr:`DevIssuer.key_pem`
to keep tokens verifiable across restarts (in the data folder, as
:data:`KEY_FILE_NAME`). The ``kid`` is the RFC 7638 JWK thumbprint of the public key, so
it is stable for a given key.

The issuer's name (``iss``) is the URL of the server that serves it; the
same key can be named after any URL, so a process that only has the key file
(``pubtrail dev token``) learns the name from the server's discovery document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["DEV_ISSUER_PATH", "DevIssuer", "KEY_FILE_NAME", "github_claims"]

DEV_ISSUER_PATH = "/_/dev/oidc"
"""Where pubtrail serves the development issuer: its name is the public URL followed by this."""
KEY_FILE_NAME = "dev-oidc.pem"
"""The development issuer's key file, in the data folder."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DevIssuer:
    """DevIssuer mints ES256 tokens for ``issuer_url`` with its own key."""

    def __init__(self, issuer_url: str, key_pem: bytes | None = None) -> None:
        if not issuer_url.startswith(("https://", "http://")):
            raise ValueError("issuer_url must be an http(s) URL")
        self.issuer_url = issuer_url.rstrip("/")
        if key_pem is None:
            self._key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = serialization.load_pem_private_key(key_pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError("the development issuer key must be an EC P-256 private key")
            self._key = key
        numbers = self._key.public_key().public_numbers()
        self._public_jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638: members in lexicographic order, no whitespace.
        canonical = json.dumps(
            {k: self._public_jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
        )
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())

    @property
    def key_pem(self) -> bytes:
        """key_pem is the private key (PKCS#8 PEM, unencrypted) for persisting."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer_url}/.well-known/jwks.json"

    def discovery_document(self) -> dict[str, Any]:
        """discovery_document is the OpenID Provider metadata to serve."""
        return {
            "issuer": self.issuer_url,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "repository"],
        }

    def jwks(self) -> dict[str, Any]:
        """jwks is the public key set to serve at :attr:`jwks_uri`."""
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def mint(self, claims: dict[str, Any], audience: str, now: float, lifetime: int = 300) -> str:
        """mint signs ``claims`` as a token valid from ``now`` for ``lifetime`` seconds.

        Fills ``iss``, ``aud``, ``iat``, ``nbf``, ``exp`` (overriding any given)
        and ``jti`` (a random UUID unless the caller supplied one).
        """
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        issued = int(now)
        payload = dict(claims)
        payload.update(
            iss=self.issuer_url, aud=audience, iat=issued, nbf=issued, exp=issued + lifetime
        )
        payload.setdefault("jti", str(uuid.uuid4()))
        return jwt.encode(payload, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})


def github_claims(
    repository: str,
    repository_owner_id: str,
    workflow: str,
    ref: str = "refs/heads/main",
    sha: str | None = None,
    environment: str | None = None,
    *,
    event_name: str = "push",
    actor: str = "dev",
    actor_id: str = "1",
    repository_id: str = "1",
    run_id: str = "1",
    run_attempt: str = "1",
    run_number: str = "1",
) -> dict[str, Any]:
    """github_claims is a realistic GitHub Actions claim set (without iss/aud/times).

    ``workflow`` is the workflow file name; ``sha`` defaults to random hex.
    """
    if "/" not in repository:
        raise ValueError("repository must be OWNER/REPO")
    sha = sha or secrets.token_hex(20)
    workflow_ref = f"{repository}/.github/workflows/{workflow}@{ref}"
    if environment:
        sub = f"repo:{repository}:environment:{environment}"
    elif ref.startswith("refs/"):
        sub = f"repo:{repository}:ref:{ref}"
    else:
        sub = f"repo:{repository}"
    claims: dict[str, Any] = {
        "sub": sub,
        "ref": ref,
        "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
        "sha": sha,
        "repository": repository,
        "repository_id": repository_id,
        "repository_owner": repository.split("/", 1)[0],
        "repository_owner_id": repository_owner_id,
        "repository_visibility": "public",
        "actor": actor,
        "actor_id": actor_id,
        "workflow": workflow.rsplit(".", 1)[0],
        "workflow_ref": workflow_ref,
        "workflow_sha": sha,
        "job_workflow_ref": workflow_ref,
        "job_workflow_sha": sha,
        "event_name": event_name,
        "run_id": run_id,
        "run_attempt": run_attempt,
        "run_number": run_number,
        "runner_environment": "self-hosted",
    }
    if environment:
        claims["environment"] = environment
    return claims
