"""OIDC providers as data, and the operator's registry of enabled issuers.

A :class:`Provider` describes one kind of CI identity (GitHub Actions, GitLab
CI, Google, ActiveState): its canonical issuer URL, whether its tokens carry a
``jti`` (then it is required), and which claims are copied into the
transparency log's ``exchange`` entry.

An :class:`IssuerRegistry` maps issuer URLs (compared exactly, no
normalisation) to providers. A known issuer missing from the registry is
*disabled* (:class:`~app.oidc.errors.NotEnabled`); an issuer nobody knows is
an :class:`~app.oidc.errors.InvalidPayload`. Development mode adds its own
issuer URL mapped to the ``github`` provider shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from app.oidc.errors import InvalidPayload, NotEnabled

__all__ = [
    "Provider",
    "GITHUB",
    "GITLAB",
    "GOOGLE",
    "ACTIVESTATE",
    "PROVIDERS",
    "KNOWN_ISSUERS",
    "get_provider",
    "identity_claims",
    "IssuerRegistry",
]

ClaimValue = str | bool | int


@dataclass(frozen=True)
class Provider:
    """One OIDC provider: name, canonical issuer, jti rule, logged claims."""

    name: str
    issuer: str
    requires_jti: bool
    identity_claims: tuple[str, ...]


GITHUB = Provider(
    name="github",
    issuer="https://token.actions.githubusercontent.com",
    requires_jti=True,
    identity_claims=(
        "sub",
        "repository",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "workflow_ref",
        "job_workflow_ref",
        "job_workflow_sha",
        "ref",
        "ref_type",
        "sha",
        "environment",
        "event_name",
        "run_id",
        "run_attempt",
        "run_number",
        "actor",
        "actor_id",
        "workflow",
        "repository_visibility",
        "runner_environment",
    ),
)

GITLAB = Provider(
    name="gitlab",
    issuer="https://gitlab.com",
    requires_jti=True,
    identity_claims=(
        "sub",
        "namespace_path",
        "namespace_id",
        "project_path",
        "project_id",
        "ci_config_ref_uri",
        "ci_config_sha",
        "ref",
        "ref_type",
        "ref_path",
        "ref_protected",
        "sha",
        "environment",
        "environment_protected",
        "deployment_tier",
        "pipeline_source",
        "pipeline_id",
        "job_id",
        "user_login",
        "user_id",
        "project_visibility",
        "runner_id",
        "runner_environment",
    ),
)

GOOGLE = Provider(
    name="google",
    issuer="https://accounts.google.com",
    requires_jti=False,
    identity_claims=("sub", "email", "email_verified", "azp"),
)

ACTIVESTATE = Provider(
    name="activestate",
    issuer="https://platform.activestate.com/api/v1/oauth/oidc",
    requires_jti=False,
    identity_claims=(
        "sub",
        "organization",
        "organization_id",
        "project",
        "project_id",
        "project_path",
        "project_visibility",
        "actor",
        "actor_id",
        "builder",
        "ingredient",
        "artifact_id",
    ),
)

PROVIDERS: Mapping[str, Provider] = MappingProxyType(
    {p.name: p for p in (GITHUB, GITLAB, GOOGLE, ACTIVESTATE)}
)

KNOWN_ISSUERS: Mapping[str, str] = MappingProxyType(
    {p.issuer: p.name for p in PROVIDERS.values()}
)


def get_provider(provider: Provider | str) -> Provider:
    """get_provider returns the Provider for a name (or the Provider itself)."""
    if isinstance(provider, Provider):
        return provider
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"unknown OIDC provider {provider!r}") from None


def identity_claims(provider: Provider | str, claims: Mapping[str, Any]) -> dict[str, ClaimValue]:
    """identity_claims picks the provider's logged claims present in ``claims``.

    Only scalar values (str, bool, int) are kept; absent or null claims and
    structured values are left out, so the result encodes canonically.
    Key order follows the provider's list.
    """
    out: dict[str, ClaimValue] = {}
    for name in get_provider(provider).identity_claims:
        value = claims.get(name)
        if isinstance(value, (str, bool, int)):
            out[name] = value
    return out


class IssuerRegistry:
    """IssuerRegistry maps enabled issuer URLs to providers.

    ``enabled`` maps an issuer URL to a provider name. The default enables the
    four public issuers. A public issuer left out is disabled; any other URL
    is unknown. URLs are compared exactly (``https://gitlab.com/`` with a
    trailing slash is not ``https://gitlab.com``), because ``iss`` must match
    exactly.
    """

    def __init__(self, enabled: Mapping[str, str] | None = None) -> None:
        if enabled is None:
            enabled = KNOWN_ISSUERS
        checked: dict[str, Provider] = {}
        for issuer, name in enabled.items():
            if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
                raise ValueError(f"issuer must be an http(s) URL, got {issuer!r}")
            checked[issuer] = get_provider(name)
        self._enabled: Mapping[str, Provider] = MappingProxyType(checked)

    @classmethod
    def default(cls) -> IssuerRegistry:
        """default enables GitHub, GitLab, Google and ActiveState."""
        return cls(dict(KNOWN_ISSUERS))

    @classmethod
    def without(cls, disabled: Iterable[str]) -> IssuerRegistry:
        """without enables every public issuer except the ones named (URL or provider name)."""
        off = set(disabled)
        return cls(
            {url: name for url, name in KNOWN_ISSUERS.items() if url not in off and name not in off}
        )

    def with_issuer(self, issuer: str, provider: str = "github") -> IssuerRegistry:
        """with_issuer returns a copy that also accepts ``issuer`` (e.g. dev mode)."""
        enabled = {url: p.name for url, p in self._enabled.items()}
        enabled[issuer] = provider
        return IssuerRegistry(enabled)

    @property
    def enabled(self) -> Mapping[str, str]:
        return MappingProxyType({url: p.name for url, p in self._enabled.items()})

    def resolve(self, issuer: object) -> Provider:
        """resolve returns the provider for an enabled issuer or raises.

        Raises InvalidPayload for a missing or unknown issuer and NotEnabled
        for a known public issuer the operator switched off.
        """
        if not isinstance(issuer, str) or not issuer:
            raise InvalidPayload("the OIDC token has no issuer (iss) claim")
        provider = self._enabled.get(issuer)
        if provider is not None:
            return provider
        if issuer in KNOWN_ISSUERS:
            raise NotEnabled(
                f"trusted publishing with {PROVIDERS[KNOWN_ISSUERS[issuer]].name} "
                "tokens is disabled on this index"
            )
        raise InvalidPayload(f"unknown OIDC token issuer {issuer[:200]!r}")

    def __contains__(self, issuer: object) -> bool:
        return issuer in self._enabled

    def __repr__(self) -> str:
        return f"IssuerRegistry({dict(self.enabled)!r})"
