"""Trusted publishers: per-provider claim rules, as PyPI applies them.

A publisher is a frozen dataclass holding what a project owner configured
(e.g. GitHub ``repository``, ``repository_owner_id``, ``workflow``,
``environment``). Its claim rules are a declarative table of
:class:`ClaimRule`; :meth:`Publisher.check` applies it to verified claims and
raises :class:`~app.oidc.errors.InvalidPublisher` naming the claim that did
not match. Rules fail closed: a required claim that is absent (or null)
fails before any comparison.

Finding candidates: :func:`lookup_keys` derives from a token's claims the
index keys (``github:owner/repo`` lower-cased, ...) under which matching
publishers are stored (:attr:`Publisher.lookup_key`), so storage needs one
indexed query; :func:`select_publisher` then checks the candidates, most
specific (environment / sub configured) first, as PyPI does.

Rules follow pypi/warehouse ``warehouse/oidc/models``:

* GitHub: ``sub`` is ``repo:OWNER/REPO:...``; ``repository`` and
  ``repository_owner`` compare case-insensitively; ``repository_owner_id``
  exactly (defeats a re-registered owner name); ``job_workflow_ref`` must be
  ``OWNER/REPO/.github/workflows/FILE@REF`` of *this* repository (owner/repo
  case-insensitive, file exact) with ``REF`` the token's ``ref`` or ``sha``
  - so a reusable workflow from another repository does not match, as on
  PyPI; ``ref`` and ``sha`` must be present; a configured ``environment``
  must match case-insensitively. Additionally (pubtrail policy, not PyPI)
  ``event_name == "pull_request_target"`` is refused.
* GitLab: ``sub`` is ``project_path:NS/PROJECT:...``; ``project_path``
  case-insensitive; ``ci_config_ref_uri`` is
  ``gitlab.com/NS/PROJECT//PATH@REF`` with ``REF`` the ``ref_path`` or
  ``sha`` (both required); ``environment`` exact (GitLab environments are
  case-sensitive). ``namespace_id`` / ``project_id``, when configured, must
  be present and equal (PyPI does not check them yet; we fail closed).
* Google: ``email`` exact, ``email_verified`` must be ``true``, ``sub``
  exact when configured.
* ActiveState: ``sub`` starts ``org:ORG:project:PROJECT``; ``organization``,
  ``project``, ``actor_id`` exact; ``builder`` must be ``pypi-publisher``.

Failure reasons name the claim and never echo the configured values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

from app.identity import workflow_filename_from_ref, workflow_filepath_from_ref_uri
from app.oidc.errors import InvalidPublisher

__all__ = [
    "PublisherConfigError",
    "ClaimRule",
    "Publisher",
    "GitHubPublisher",
    "GitLabPublisher",
    "GooglePublisher",
    "ActiveStatePublisher",
    "PUBLISHER_TYPES",
    "publisher_from_config",
    "lookup_keys",
    "select_publisher",
    "identity_summary",
    "workflow_filename_from_ref",
    "workflow_filepath_from_ref_uri",
]


class PublisherConfigError(ValueError):
    """A trusted-publisher configuration is invalid; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# A rule's check returns None when the claim is acceptable, else the reason.
CheckFn = Callable[[Any, Any, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class ClaimRule:
    """ClaimRule checks one claim; ``required`` claims must be present first."""

    claim: str
    check: CheckFn
    required: bool = True


P = TypeVar("P", bound="Publisher")


def _present(value: Any) -> bool:
    return value is not None


def _as_id(value: Any) -> str | None:
    """Numeric ids arrive as strings (GitHub, GitLab) but accept ints too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return None


@dataclass(frozen=True)
class Publisher:
    """Publisher is the base of the four trusted-publisher kinds."""

    provider: ClassVar[str] = ""
    #: claims that must be present although no rule compares them
    present_claims: ClassVar[tuple[str, ...]] = ()
    rules: ClassVar[tuple[ClaimRule, ...]] = ()

    # -- config ------------------------------------------------------------

    @classmethod
    def from_config(cls: type[P], config: Mapping[str, Any]) -> P:
        """from_config validates a configuration dict and builds the publisher."""
        if not isinstance(config, Mapping):
            raise PublisherConfigError("config", "must be an object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise PublisherConfigError(unknown[0], f"unknown field for a {cls.provider} publisher")
        values = {name: cls._validate(name, config.get(name)) for name in sorted(names)}
        return cls(**values)

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """to_config is the configuration dict; from_config(to_config()) == self."""
        return asdict(self)

    # -- matching ----------------------------------------------------------

    @property
    def lookup_key(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def specificity(self) -> int:
        """specificity ranks candidates: more optional constraints come first."""
        return 0

    def check(self, claims: Mapping[str, Any]) -> None:
        """check raises InvalidPublisher unless ``claims`` satisfy every rule."""
        if not self.rules:  # defensive: no rules must never mean "anything goes"
            raise InvalidPublisher("the trusted publisher has no claim rules")
        required = [*self.present_claims, *(r.claim for r in self.rules if r.required)]
        for name in required:
            if not _present(claims.get(name)):
                raise InvalidPublisher(f"the OIDC token lacks the required claim {name!r}")
        for rule in self.rules:
            reason = rule.check(self, claims.get(rule.claim), claims)
            if reason is not None:
                raise InvalidPublisher(reason)

    def matches(self, claims: Mapping[str, Any]) -> bool:
        try:
            self.check(claims)
        except InvalidPublisher:
            return False
        return True


# -- shared validators ---------------------------------------------------------


def _require_str(name: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise PublisherConfigError(name, "is required")
    if not isinstance(value, str) or not value:
        raise PublisherConfigError(name, "must be a non-empty string")
    if value != value.strip() or any(ord(c) < 0x20 for c in value):
        raise PublisherConfigError(name, "must not contain surrounding whitespace or control characters")
    if len(value) > 255:
        raise PublisherConfigError(name, "is too long (255 characters at most)")
    return value


def _require_digits(name: str, value: Any, *, optional: bool = False) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    text = _require_str(name, value, optional=optional)
    if text is not None and not (text.isascii() and text.isdigit()):
        raise PublisherConfigError(name, "must be a numeric id (digits only)")
    return text


def _equal(name: str, *, casefold: bool = False, attr: str | None = None) -> CheckFn:
    """_equal builds a rule: the claim equals the publisher's attribute."""

    def check(publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
        expected = getattr(publisher, attr or name)
        got = _as_id(value)
        if got is None:
            return f"the {name} claim is not a string"
        if casefold:
            ok = got.lower() == expected.lower()
        else:
            ok = got == expected
        return None if ok else f"the {name} claim does not match the trusted publisher"

    return check


def _sub_prefix(prefix_parts: int, expected: Callable[[Any], str], casefold: bool, label: str) -> CheckFn:
    """_sub_prefix: the first ``prefix_parts`` colon-separated parts of sub equal ``expected``."""

    def check(publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
        if not isinstance(value, str) or not value:
            return "the sub claim is empty"
        parts = value.split(":")
        if len(parts) < prefix_parts or not all(parts[:prefix_parts]):
            return f"the sub claim is not of the form {label}"
        got = ":".join(parts[:prefix_parts])
        want = expected(publisher)
        ok = got.lower() == want.lower() if casefold else got == want
        return None if ok else "the sub claim does not match the trusted publisher"

    return check


# -- GitHub --------------------------------------------------------------------

_GITHUB_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_GITHUB_REPO = r"[A-Za-z0-9._-]{1,100}"
_GITHUB_REPOSITORY_RE = re.compile(rf"^{_GITHUB_OWNER}/{_GITHUB_REPO}$")
_WORKFLOW_FILENAME_RE = re.compile(r"^[^/\\\s@]*[^/\\\s@.][^/\\\s@]*\.(?:yml|yaml)$")

_PULL_REQUEST_TARGET = "pull_request_target"


def _check_job_workflow_ref(publisher: GitHubPublisher, value: Any, claims: Mapping[str, Any]) -> str | None:
    # Expected: OWNER/REPO/.github/workflows/FILE@REF, REF = the ref or sha claim
    # (a deployment-triggered run has an empty ref and uses the sha).
    if not isinstance(value, str) or not value:
        return "the job_workflow_ref claim is empty"
    refs = [r for r in (claims.get("ref"), claims.get("sha")) if isinstance(r, str) and r]
    if not refs:
        return "the ref and sha claims are empty"
    for ref in refs:
        suffix = f"/.github/workflows/{publisher.workflow}@{ref}"
        if value.endswith(suffix):
            if value[: -len(suffix)].lower() == publisher.repository.lower():
                return None
            return (
                "the job_workflow_ref claim names a workflow in another repository "
                "(reusable workflows from other repositories are not supported)"
            )
    if not value.lower().startswith(publisher.repository.lower() + "/.github/workflows/"):
        return (
            "the job_workflow_ref claim names a workflow in another repository "
            "(reusable workflows from other repositories are not supported)"
        )
    return "the job_workflow_ref claim does not name the trusted publisher's workflow at this run's ref or sha"


def _check_github_environment(publisher: GitHubPublisher, value: Any, _claims: Mapping[str, Any]) -> str | None:
    if publisher.environment is None:
        return None
    if not isinstance(value, str) or not value:
        return "the trusted publisher requires a GitHub environment, but the token has no environment claim"
    if value.lower() != publisher.environment.lower():
        return "the environment claim does not match the trusted publisher"
    return None


def _check_event_name(_publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
    if value == _PULL_REQUEST_TARGET:
        return "tokens from workflows triggered by pull_request_target are refused"
    return None


@dataclass(frozen=True)
class GitHubPublisher(Publisher):
    """GitHubPublisher: a GitHub Actions workflow in one repository.

    ``repository`` is ``owner/repo``; ``repository_owner_id`` the owner's
    numeric id; ``workflow`` the workflow file name (``release.yml``);
    ``environment`` an optional GitHub deployment environment.
    """

    repository: str
    repository_owner_id: str
    workflow: str
    environment: str | None = None

    provider: ClassVar[str] = "github"
    present_claims: ClassVar[tuple[str, ...]] = ("ref", "sha")
    rules: ClassVar[tuple[ClaimRule, ...]] = (
        ClaimRule("sub", _sub_prefix(2, lambda p: f"repo:{p.repository}", True, "repo:OWNER/REPO:...")),
        ClaimRule("repository", _equal("repository", casefold=True)),
        ClaimRule("repository_owner", _equal("repository_owner", casefold=True, attr="repository_owner")),
        ClaimRule("repository_owner_id", _equal("repository_owner_id")),
        ClaimRule("job_workflow_ref", _check_job_workflow_ref),
        ClaimRule("event_name", _check_event_name, required=False),
        ClaimRule("environment", _check_github_environment, required=False),
    )

    @property
    def repository_owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name == "repository":
            text = _require_str(name, value)
            if not _GITHUB_REPOSITORY_RE.match(text) or text.split("/")[1] in (".", ".."):
                raise PublisherConfigError(name, "must be OWNER/REPO (a GitHub repository)")
            return text
        if name == "repository_owner_id":
            return _require_digits(name, value)
        if name == "workflow":
            text = _require_str(name, value)
            if not _WORKFLOW_FILENAME_RE.match(text):
                raise PublisherConfigError(
                    name, "must be a workflow file name ending .yml or .yaml, without directories"
                )
            return text
        if name == "environment":
            return _require_str(name, value, optional=True)
        raise PublisherConfigError(name, "unknown field")  # pragma: no cover

    @property
    def lookup_key(self) -> str:
        return "github:" + self.repository.lower()

    @property
    def specificity(self) -> int:
        return 1 if self.environment else 0


# -- GitLab --------------------------------------------------------------------

_GITLAB_SEGMENT = r"[A-Za-z0-9_.][A-Za-z0-9_.+-]*"
_GITLAB_NAMESPACE_RE = re.compile(rf"^{_GITLAB_SEGMENT}(?:/{_GITLAB_SEGMENT})*$")
_GITLAB_PROJECT_RE = re.compile(rf"^{_GITLAB_SEGMENT}$")


def _check_ci_config_ref_uri(publisher: GitLabPublisher, value: Any, claims: Mapping[str, Any]) -> str | None:
    # Expected: gitlab.com/NS/PROJECT//PATH@REF, REF = ref_path or sha.
    if not isinstance(value, str) or not value:
        return "the ci_config_ref_uri claim is empty"
    ref_path, sha = claims.get("ref_path"), claims.get("sha")
    if not (isinstance(ref_path, str) and ref_path and isinstance(sha, str) and sha):
        return "the ref_path and sha claims are empty"
    for ref in (ref_path, sha):
        suffix = f"//{publisher.workflow_filepath}@{ref}"
        if value.endswith(suffix) and value[: -len(suffix)].lower() == f"gitlab.com/{publisher.project_path}".lower():
            return None
    return "the ci_config_ref_uri claim does not name the trusted publisher's pipeline file at this run's ref or sha"


def _check_gitlab_environment(publisher: GitLabPublisher, value: Any, _claims: Mapping[str, Any]) -> str | None:
    if publisher.environment is None:
        return None
    if not isinstance(value, str) or not value:
        return "the trusted publisher requires a GitLab environment, but the token has no environment claim"
    if value != publisher.environment:  # GitLab environment names are case-sensitive
        return "the environment claim does not match the trusted publisher"
    return None


def _optional_id(name: str) -> CheckFn:
    def check(publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
        expected = getattr(publisher, name)
        if expected is None:
            return None
        got = _as_id(value)
        if got is None:
            return f"the trusted publisher pins {name}, but the token has no {name} claim"
        return None if got == expected else f"the {name} claim does not match the trusted publisher"

    return check


@dataclass(frozen=True)
class GitLabPublisher(Publisher):
    """GitLabPublisher: a gitlab.com CI pipeline file in one project.

    ``namespace`` may contain subgroups (``group/sub``); ``workflow_filepath``
    is the pipeline file's path in the repository (``.gitlab-ci.yml``).
    """

    namespace: str
    project: str
    workflow_filepath: str
    environment: str | None = None
    namespace_id: str | None = None
    project_id: str | None = None

    provider: ClassVar[str] = "gitlab"
    present_claims: ClassVar[tuple[str, ...]] = ("ref_path", "sha")
    rules: ClassVar[tuple[ClaimRule, ...]] = (
        ClaimRule("sub", _sub_prefix(2, lambda p: f"project_path:{p.project_path}", True, "project_path:NS/PROJECT:...")),
        ClaimRule("project_path", _equal("project_path", casefold=True)),
        ClaimRule("ci_config_ref_uri", _check_ci_config_ref_uri),
        ClaimRule("environment", _check_gitlab_environment, required=False),
        ClaimRule("namespace_id", _optional_id("namespace_id"), required=False),
        ClaimRule("project_id", _optional_id("project_id"), required=False),
    )

    @property
    def project_path(self) -> str:
        return f"{self.namespace}/{self.project}"

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name == "namespace":
            text = _require_str(name, value)
            if not _GITLAB_NAMESPACE_RE.match(text):
                raise PublisherConfigError(name, "must be a GitLab namespace path (group or group/subgroup)")
            return text
        if name == "project":
            text = _require_str(name, value)
            if not _GITLAB_PROJECT_RE.match(text):
                raise PublisherConfigError(name, "must be a GitLab project name without slashes")
            return text
        if name == "workflow_filepath":
            text = _require_str(name, value)
            segments = text.split("/")
            if (
                not text.endswith((".yml", ".yaml"))
                or text.startswith("/")
                or "" in segments
                or ".." in segments
                or "." in segments
                or any(c in text for c in "\\@")
                or segments[-1] in (".yml", ".yaml")
            ):
                raise PublisherConfigError(
                    name, "must be a relative path to a .yml/.yaml file inside the repository"
                )
            return text
        if name == "environment":
            return _require_str(name, value, optional=True)
        if name in ("namespace_id", "project_id"):
            return _require_digits(name, value, optional=True)
        raise PublisherConfigError(name, "unknown field")  # pragma: no cover

    @property
    def lookup_key(self) -> str:
        return "gitlab:" + self.project_path.lower()

    @property
    def specificity(self) -> int:
        return 1 if self.environment else 0


# -- Google --------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_email_verified(_publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
    return None if value is True else "the email_verified claim is not true"


def _check_google_sub(publisher: GooglePublisher, value: Any, _claims: Mapping[str, Any]) -> str | None:
    if publisher.sub is None:
        return None
    if not isinstance(value, str) or not value:
        return "the trusted publisher pins sub, but the token has no sub claim"
    return None if value == publisher.sub else "the sub claim does not match the trusted publisher"


@dataclass(frozen=True)
class GooglePublisher(Publisher):
    """GooglePublisher: a Google service account by email (and optionally sub)."""

    email: str
    sub: str | None = None

    provider: ClassVar[str] = "google"
    rules: ClassVar[tuple[ClaimRule, ...]] = (
        ClaimRule("email", _equal("email")),
        ClaimRule("email_verified", _check_email_verified),
        ClaimRule("sub", _check_google_sub, required=False),
    )

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name == "email":
            text = _require_str(name, value)
            if not _EMAIL_RE.match(text):
                raise PublisherConfigError(name, "must be an email address")
            return text
        if name == "sub":
            return _require_str(name, value, optional=True)
        raise PublisherConfigError(name, "unknown field")  # pragma: no cover

    @property
    def lookup_key(self) -> str:
        return "google:" + self.email.lower()

    @property
    def specificity(self) -> int:
        return 1 if self.sub else 0


# -- ActiveState -----------------------------------------------------------------

ACTIVESTATE_BUILDER = "pypi-publisher"
_ACTIVESTATE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_builder(_publisher: Any, value: Any, _claims: Mapping[str, Any]) -> str | None:
    return None if value == ACTIVESTATE_BUILDER else f"the builder claim is not {ACTIVESTATE_BUILDER!r}"


@dataclass(frozen=True)
class ActiveStatePublisher(Publisher):
    """ActiveStatePublisher: an ActiveState platform project and the actor allowed to publish."""

    organization: str
    project: str
    actor_id: str

    provider: ClassVar[str] = "activestate"
    rules: ClassVar[tuple[ClaimRule, ...]] = (
        ClaimRule(
            "sub",
            _sub_prefix(4, lambda p: f"org:{p.organization}:project:{p.project}", False, "org:ORG:project:PROJECT"),
        ),
        ClaimRule("organization", _equal("organization")),
        ClaimRule("project", _equal("project")),
        ClaimRule("actor_id", _equal("actor_id")),
        ClaimRule("builder", _check_builder),
    )

    @classmethod
    def _validate(cls, name: str, value: Any) -> Any:
        if name in ("organization", "project"):
            text = _require_str(name, value)
            if not _ACTIVESTATE_NAME_RE.match(text):
                raise PublisherConfigError(name, "must be an ActiveState name (letters, digits, . _ -)")
            return text
        if name == "actor_id":
            text = _require_str(name, value)
            if ":" in text or any(c.isspace() for c in text):
                raise PublisherConfigError(name, "must be an ActiveState actor id (no colons or spaces)")
            return text
        raise PublisherConfigError(name, "unknown field")  # pragma: no cover

    @property
    def lookup_key(self) -> str:
        return f"activestate:{self.organization.lower()}/{self.project.lower()}"


# -- module functions ------------------------------------------------------------

PUBLISHER_TYPES: Mapping[str, type[Publisher]] = {
    cls.provider: cls for cls in (GitHubPublisher, GitLabPublisher, GooglePublisher, ActiveStatePublisher)
}


def publisher_from_config(provider: str, config: Mapping[str, Any]) -> Publisher:
    """publisher_from_config builds the publisher of ``provider`` from its config dict."""
    try:
        cls = PUBLISHER_TYPES[provider]
    except KeyError:
        raise PublisherConfigError("provider", f"unknown provider {provider!r}") from None
    return cls.from_config(config)


def _claim_str(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidPublisher(f"the OIDC token lacks the required claim {name!r}")
    return value


def lookup_keys(provider: str, claims: Mapping[str, Any]) -> list[str]:
    """lookup_keys gives the index keys under which publishers matching ``claims`` are stored.

    Equal to :attr:`Publisher.lookup_key` of every publisher that could
    accept the token; a missing claim fails closed with InvalidPublisher.
    """
    if provider == "github":
        return ["github:" + _claim_str(claims, "repository").lower()]
    if provider == "gitlab":
        return ["gitlab:" + _claim_str(claims, "project_path").lower()]
    if provider == "google":
        return ["google:" + _claim_str(claims, "email").lower()]
    if provider == "activestate":
        org = _claim_str(claims, "organization").lower()
        project = _claim_str(claims, "project").lower()
        return [f"activestate:{org}/{project}"]
    raise InvalidPublisher(f"no trusted publishers exist for provider {provider!r}")


def select_publisher(candidates: Iterable[P], claims: Mapping[str, Any]) -> P:
    """select_publisher returns the most specific candidate whose rules accept ``claims``.

    A publisher pinned to an environment (GitHub/GitLab) or a sub (Google) is
    preferred over an unpinned one, as on PyPI. With no candidates, or none
    accepting, raises InvalidPublisher; the reason given is that of the most
    specific candidate.
    """
    ordered: Sequence[P] = sorted(candidates, key=lambda p: -p.specificity)
    if not ordered:
        raise InvalidPublisher("no trusted publisher is configured for this identity")
    first_error: InvalidPublisher | None = None
    for publisher in ordered:
        try:
            publisher.check(claims)
        except InvalidPublisher as exc:
            first_error = first_error or exc
            continue
        return publisher
    assert first_error is not None
    raise InvalidPublisher(f"no trusted publisher matches this token: {first_error.description}")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def identity_summary(issuer: str, provider: str, claims: Mapping[str, Any]) -> dict[str, str | None]:
    """identity_summary is the publisher identity an upload log entry copies.

    Keys are always ``issuer, provider, repository, workflow, ref, sha,
    environment`` (None where the provider has no such notion); Google adds
    ``email``. GitHub: workflow from ``job_workflow_ref``; GitLab: repository
    is ``project_path``, workflow from ``ci_config_ref_uri``, ref is
    ``ref_path``; ActiveState: repository is ``organization/project``.
    """
    summary: dict[str, str | None] = {
        "issuer": issuer,
        "provider": provider,
        "repository": None,
        "workflow": None,
        "ref": None,
        "sha": None,
        "environment": None,
    }
    if provider == "github":
        job_workflow_ref = _str_or_none(claims.get("job_workflow_ref"))
        summary.update(
            repository=_str_or_none(claims.get("repository")),
            workflow=workflow_filename_from_ref(job_workflow_ref) if job_workflow_ref else None,
            ref=_str_or_none(claims.get("ref")),
            sha=_str_or_none(claims.get("sha")),
            environment=_str_or_none(claims.get("environment")),
        )
    elif provider == "gitlab":
        uri = _str_or_none(claims.get("ci_config_ref_uri"))
        summary.update(
            repository=_str_or_none(claims.get("project_path")),
            workflow=workflow_filepath_from_ref_uri(uri) if uri else None,
            ref=_str_or_none(claims.get("ref_path")),
            sha=_str_or_none(claims.get("sha")),
            environment=_str_or_none(claims.get("environment")),
        )
    elif provider == "google":
        summary["email"] = _str_or_none(claims.get("email"))
    elif provider == "activestate":
        org, project = _str_or_none(claims.get("organization")), _str_or_none(claims.get("project"))
        summary["repository"] = f"{org}/{project}" if org and project else None
    return summary
