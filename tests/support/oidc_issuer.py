"""A real local OIDC issuer over HTTP, for tests.

``LocalOIDCIssuer`` runs a threaded ``http.server`` on 127.0.0.1 (ephemeral
port) with real RSA-2048 and EC P-256 keys. It serves:

* ``GET /.well-known/openid-configuration`` (also under any path prefix,
  e.g. ``/api/v1/oauth/oidc/.well-known/openid-configuration``, whose
  ``issuer`` is then ``base_url + prefix``),
* ``GET /jwks`` - the published keys,
* ``GET /token?audience=...`` - the GitHub Actions ID-token endpoint as the
  ``id`` package calls it (``Authorization: bearer <request token>``, answer
  ``{"value": "<jwt>"}``).

Tokens claim the *real* issuer URL (``iss =
https://token.actions.githubusercontent.com`` by default); point pubtrail at
the local keys with ``issuer.jwks_overrides()`` =
``{issuer_url: "http://127.0.0.1:PORT/jwks"}``.

Typical use::

    with LocalOIDCIssuer() as issuer:
        token = issuer.sign(issuer.github_claims(now=NOW, audience="pubtrail"))
        cache = JWKSCache(httpx_fetcher(), overrides=issuer.jwks_overrides())

Keys can be added (``add_key``), unpublished (``unpublish``) at runtime to
exercise refresh-on-unknown-kid; ``request_counts[path]`` counts requests.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "GITHUB_ISSUER",
    "GITLAB_ISSUER",
    "GOOGLE_ISSUER",
    "ACTIVESTATE_ISSUER",
    "LocalOIDCIssuer",
    "github_claims",
    "gitlab_claims",
    "google_claims",
    "activestate_claims",
    "public_jwk",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
GOOGLE_ISSUER = "https://accounts.google.com"
ACTIVESTATE_ISSUER = "https://platform.activestate.com/api/v1/oauth/oidc"

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"

# Key generation (RSA especially) is the slow part; keep a small pool per
# process so each issuer instance starts in milliseconds. add_key() always
# makes a fresh key.
_POOL_LOCK = threading.Lock()
_KEY_POOL: dict[str, Any] = {}


def _pooled_key(name: str, kind: str) -> Any:
    with _POOL_LOCK:
        if name not in _KEY_POOL:
            _KEY_POOL[name] = _generate(kind)
        return _KEY_POOL[name]


def _generate(kind: str) -> Any:
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key: Any, kid: str) -> dict[str, str]:
    """public_jwk is the public JWK of an RSA or EC P-256 private key."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {
            "kty": "RSA",
            "kid": kid,
            "use": "sig",
            "alg": "RS256",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
    numbers = public.public_numbers()
    size = (public.curve.key_size + 7) // 8
    crv, alg = {"secp256r1": ("P-256", "ES256"), "secp384r1": ("P-384", "ES384")}[public.curve.name]
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "alg": alg,
        "crv": crv,
        "x": _b64(numbers.x.to_bytes(size, "big")),
        "y": _b64(numbers.y.to_bytes(size, "big")),
    }


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _base(iss: str, audience: str, now: float | None, lifetime: int, jti: bool) -> dict[str, Any]:
    t = _now(now)
    claims: dict[str, Any] = {"iss": iss, "aud": audience, "iat": t, "nbf": t, "exp": t + lifetime}
    if jti:
        claims["jti"] = str(uuid.uuid4())
    # iss=None / audience=None mean "leave the claim out".
    return {name: value for name, value in claims.items() if value is not None}


def github_claims(
    *,
    now: float | None = None,
    audience: str = "pubtrail",
    iss: str = GITHUB_ISSUER,
    lifetime: int = 300,
    repository: str | None = "octo-org/sampleproject",
    repository_owner_id: str | None = "65432",
    workflow: str = "release.yml",
    ref: str | None = "refs/tags/v1.0.0",
    sha: str | None = "a" * 40,
    environment: str | None = "pypi",
    event_name: str | None = "push",
    **overrides: Any,
) -> dict[str, Any]:
    """github_claims is a realistic GitHub Actions ID-token claim set.

    ``overrides`` replace or add claims; any claim given as ``None`` (named
    parameter or override) is left out, to test a missing claim.
    """
    named = {"repository": repository, "repository_owner_id": repository_owner_id, "ref": ref,
             "sha": sha, "event_name": event_name}
    removed = [name for name, value in named.items() if value is None]
    repository = repository or "octo-org/sampleproject"
    ref = "refs/tags/v1.0.0" if ref is None else ref
    owner = repository.split("/", 1)[0]
    workflow_path = f"{repository}/.github/workflows/{workflow}@{ref}"
    sub = f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"
    claims = _base(iss, audience, now, lifetime, jti=True)
    claims.update(
        {
            "sub": sub,
            "ref": ref,
            "sha": sha,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": repository_owner_id,
            "repository_visibility": "public",
            "repository_id": "123456789",
            "run_id": "9876543210",
            "run_number": "42",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "Release",
            "workflow_ref": workflow_path,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_path,
            "job_workflow_sha": sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": event_name,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "ref_protected": "false",
            "runner_environment": "github-hosted",
        }
    )
    if environment:
        claims["environment"] = environment
    return _apply(claims, {**dict.fromkeys(removed), **overrides})


def gitlab_claims(
    *,
    now: float | None = None,
    audience: str = "pubtrail",
    iss: str = GITLAB_ISSUER,
    lifetime: int = 300,
    namespace: str = "gl-group/sub",
    project: str = "sampleproject",
    workflow_filepath: str = ".gitlab-ci.yml",
    ref: str = "main",
    ref_type: str = "branch",
    sha: str | None = "b" * 40,
    environment: str | None = "production",
    namespace_id: str = "1111",
    project_id: str = "2222",
    **overrides: Any,
) -> dict[str, Any]:
    """gitlab_claims is a realistic GitLab CI ID-token claim set (gitlab.com)."""
    project_path = f"{namespace}/{project}"
    ref_path = f"refs/{'tags' if ref_type == 'tag' else 'heads'}/{ref}"
    claims = _base(iss, audience, now, lifetime, jti=True)
    claims.update(
        {
            "sub": f"project_path:{project_path}:ref_type:{ref_type}:ref:{ref}",
            "namespace_id": namespace_id,
            "namespace_path": namespace,
            "project_id": project_id,
            "project_path": project_path,
            "user_id": "3333",
            "user_login": "gl-user",
            "user_email": "gl-user@example.com",
            "user_access_level": "maintainer",
            "pipeline_id": "4444",
            "pipeline_source": "push",
            "job_id": "5555",
            "ref": ref,
            "ref_type": ref_type,
            "ref_path": ref_path,
            "ref_protected": "true",
            "runner_id": 6666,
            "runner_environment": "gitlab-hosted",
            "sha": sha,
            "project_visibility": "public",
            "ci_config_ref_uri": f"gitlab.com/{project_path}//{workflow_filepath}@{ref_path}",
            "ci_config_sha": sha,
        }
    )
    if environment:
        claims["environment"] = environment
        claims["environment_protected"] = "false"
        claims["deployment_tier"] = "production"
        claims["environment_action"] = "start"
    return _apply(claims, overrides)


def google_claims(
    *,
    now: float | None = None,
    audience: str = "pubtrail",
    iss: str = GOOGLE_ISSUER,
    lifetime: int = 3600,
    email: str = "publisher@example-project.iam.gserviceaccount.com",
    sub: str = "111122223333444455556",
    email_verified: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """google_claims is a realistic Google service-account ID-token claim set (no jti)."""
    claims = _base(iss, audience, now, lifetime, jti=False)
    del claims["nbf"]  # Google does not send nbf
    claims.update({"sub": sub, "email": email, "email_verified": email_verified, "azp": sub})
    return _apply(claims, overrides)


def activestate_claims(
    *,
    now: float | None = None,
    audience: str = "pubtrail",
    iss: str = ACTIVESTATE_ISSUER,
    lifetime: int = 300,
    organization: str = "as-org",
    project: str = "sampleproject",
    actor_id: str = "d0c4e5a1-0000-4000-8000-000000000001",
    actor: str = "as-user",
    builder: str = "pypi-publisher",
    **overrides: Any,
) -> dict[str, Any]:
    """activestate_claims is a realistic ActiveState platform ID-token claim set."""
    claims = _base(iss, audience, now, lifetime, jti=False)
    claims.update(
        {
            "sub": f"org:{organization}:project:{project}",
            "organization_id": "7e0c3a3b-0000-4000-8000-000000000002",
            "organization": organization,
            "project_id": "7e0c3a3b-0000-4000-8000-000000000003",
            "project": project,
            "project_path": f"{organization}/{project}",
            "project_visibility": "public",
            "actor_id": actor_id,
            "actor": actor,
            "builder": builder,
            "ingredient": "sampleproject",
            "artifact_id": "7e0c3a3b-0000-4000-8000-000000000004",
        }
    )
    return _apply(claims, overrides)


def _apply(claims: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    claims.update(overrides)
    # A claim given as None means "leave it out".
    return {name: value for name, value in claims.items() if value is not None}


class LocalOIDCIssuer:
    """LocalOIDCIssuer is a real HTTP OIDC issuer on 127.0.0.1 for tests.

    ``issuer`` is the ``iss`` its tokens claim (default: GitHub's real URL);
    the root discovery document names ``discovery_issuer`` (default: the
    server's own ``base_url``, so discovery-based lookup works end to end).
    """

    def __init__(
        self,
        issuer: str = GITHUB_ISSUER,
        *,
        audience: str = "pubtrail",
        request_token: str | None = None,
        discovery_issuer: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.request_token = request_token or secrets.token_urlsafe(24)
        self._discovery_issuer = discovery_issuer
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._published: list[str] = []
        self.request_counts: Counter[str] = Counter()
        #: (audience, authorization header) of each /token request.
        self.token_requests: list[tuple[str | None, str | None]] = []
        #: extra claims for tokens minted by the /token endpoint.
        self.token_claims: dict[str, Any] = {}
        self.token_alg = "RS256"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Several kids of both kinds from the per-process pool.
        for kid, kind in (("rsa-1", "RSA"), ("rsa-2", "RSA"), ("ec-1", "EC")):
            self._keys[kid] = _pooled_key(kid, kind)
            self._published.append(kid)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> LocalOIDCIssuer:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalOIDCIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalOIDCIssuer is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}{DISCOVERY_SUFFIX}"

    @property
    def discovery_issuer(self) -> str:
        return self._discovery_issuer or self.base_url

    @discovery_issuer.setter
    def discovery_issuer(self, value: str | None) -> None:
        self._discovery_issuer = value

    def issuer_url(self, path: str = "") -> str:
        """issuer_url is a local issuer URL (base_url + path) whose discovery this server answers."""
        return f"{self.base_url}{path}"

    @property
    def token_request_url(self) -> str:
        # Like GitHub's, the URL already carries a query string.
        return f"{self.base_url}/token?api-version=2.0"

    def jwks_overrides(self, *issuers: str) -> dict[str, str]:
        """jwks_overrides maps issuer URLs (default: this issuer's) to the local JWKS."""
        return {iss: self.jwks_url for iss in (issuers or (self.issuer,))}

    def github_actions_env(self) -> dict[str, str]:
        """github_actions_env is what ``id.detect_credential`` needs to reach /token."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.token_request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    # -- keys --------------------------------------------------------------

    @property
    def kids(self) -> list[str]:
        with self._lock:
            return list(self._keys)

    @property
    def published_kids(self) -> list[str]:
        with self._lock:
            return list(self._published)

    def private_key(self, kid: str) -> Any:
        with self._lock:
            return self._keys[kid]

    def add_key(self, kind: str = "RSA", kid: str | None = None, *, publish: bool = True) -> str:
        """add_key makes a fresh key (published in /jwks unless publish=False)."""
        kid = kid or f"{kind.lower()}-{uuid.uuid4().hex[:8]}"
        key = _generate(kind)
        with self._lock:
            self._keys[kid] = key
            if publish and kid not in self._published:
                self._published.append(kid)
        return kid

    def publish(self, kid: str) -> None:
        with self._lock:
            if kid not in self._keys:
                raise KeyError(kid)
            if kid not in self._published:
                self._published.append(kid)

    def unpublish(self, kid: str) -> None:
        with self._lock:
            if kid in self._published:
                self._published.remove(kid)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [public_jwk(self._keys[kid], kid) for kid in self._published]}

    def discovery_document(self, issuer: str | None = None) -> dict[str, Any]:
        return {
            "issuer": issuer or self.discovery_issuer,
            "jwks_uri": self.jwks_url,
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "repository"],
            "scopes_supported": ["openid"],
        }

    def reset_counts(self) -> None:
        with self._lock:
            self.request_counts.clear()

    # -- signing -----------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, Any],
        alg: str = "RS256",
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """sign makes a JWT of ``claims``; ``kid`` defaults to the first key fitting ``alg``.

        ``headers`` are merged last, so a test can lie about ``kid`` or ``alg``.
        """
        if kid is None:
            kid = "ec-1" if alg.startswith("ES") else "rsa-1"
        key = self.private_key(kid)
        header = {"kid": kid, "typ": "JWT"}
        header.update(headers or {})
        return jwt.encode(dict(claims), key, algorithm=alg, headers=header)

    def github_claims(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("iss", self.issuer)
        kwargs.setdefault("audience", self.audience)
        return github_claims(**kwargs)

    def gitlab_claims(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("audience", self.audience)
        return gitlab_claims(**kwargs)

    def google_claims(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("audience", self.audience)
        return google_claims(**kwargs)

    def activestate_claims(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("audience", self.audience)
        return activestate_claims(**kwargs)

    # -- HTTP --------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet

            def _send_json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                path = parts.path
                with issuer._lock:
                    issuer.request_counts[path] += 1
                if path == "/jwks":
                    self._send_json(200, issuer.jwks())
                elif path.endswith(DISCOVERY_SUFFIX):
                    prefix = path[: -len(DISCOVERY_SUFFIX)]
                    name = issuer.base_url + prefix if prefix else None
                    self._send_json(200, issuer.discovery_document(name))
                elif path == "/token":
                    self._token(parse_qs(parts.query))
                else:
                    self._send_json(404, {"message": "Not Found"})

            def _token(self, query: dict[str, list[str]]) -> None:
                auth = self.headers.get("Authorization")
                audience = query.get("audience", [None])[0]
                with issuer._lock:
                    issuer.token_requests.append((audience, auth))
                scheme, _, token = (auth or "").partition(" ")
                if scheme.lower() != "bearer" or not secrets.compare_digest(token, issuer.request_token):
                    self._send_json(401, {"message": "Bad credentials"})
                    return
                claims = issuer.github_claims(**({"audience": audience} if audience else {}))
                claims.update(issuer.token_claims)
                self._send_json(200, {"count": 1, "value": issuer.sign(claims, alg=issuer.token_alg)})

        return Handler
