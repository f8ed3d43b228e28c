"""The publisher identity behind an exchange, in the same fields for every provider.

A pure module (standard library only): the server's query tables and
provenance answers, and the clients that check those answers against the
logged entries (`app.clients`), compute identities with this one function.
`app.oidc.identity` re-exports it for server code.

`identity_fields(issuer, provider, claims)` maps a provider's logged identity
claims onto one vocabulary, so that queries ("what did this repository /
workflow / ref / actor publish?") and provenance answers read alike for
GitHub, GitLab, Google and ActiveState. It reads only the claims an
`exchange` entry keeps, so it can be re-run on any logged entry: the query
table built from it is a projection of the log.

    field                GitHub                 GitLab                    Google   ActiveState
    repository           repository             project_path              -        organization/project
    repository_owner_id  repository_owner_id    namespace_id              -        organization_id
    workflow             file of job_workflow_ref  file path of ci_config_ref_uri  -  -
    workflow_ref         workflow_ref           ci_config_ref_uri         -        -
    job_workflow_ref     job_workflow_ref       ci_config_ref_uri         -        -
    ref                  ref                    ref_path                  -        -
    sha                  sha                    sha                       -        -
    environment          environment            environment               -        -
    run_id               run_id                 pipeline_id               -        -
    run_attempt          run_attempt            -                         -        -
    actor                actor                  user_login                email    actor
    subject              sub                    sub                       sub      sub

Every field is a string or None; absent claims give None.

Repository names are case-insensitive on GitHub and GitLab, so a query must
not miss `Octo-Org/App` when the token said `octo-org/app`: the fields in
`CASE_INSENSITIVE` are stored and compared lower-cased (`query_key`). A
blast-radius answer that errs this way only widens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The workflow filename inside a workflow ref: the last path segment ending
# .yml/.yaml right before the "@" that starts the ref (warehouse's pattern).
_WORKFLOW_IN_REF_RE = re.compile(r"([^/]+\.(?:yml|yaml))(?=@)")


def workflow_filename_from_ref(workflow_ref: str) -> str | None:
    """workflow_filename_from_ref extracts ``release.yml`` from ``o/r/.github/workflows/release.yml@refs/...``."""
    match = _WORKFLOW_IN_REF_RE.search(workflow_ref)
    return match.group(1) if match else None


def workflow_filepath_from_ref_uri(ci_config_ref_uri: str) -> str | None:
    """workflow_filepath_from_ref_uri extracts ``ci/release.yml`` from ``gitlab.com/ns/p//ci/release.yml@refs/...``."""
    _, sep, rest = ci_config_ref_uri.partition("//")
    if not sep:
        return None
    path, at, _ref = rest.rpartition("@")
    if not at or not path.endswith((".yml", ".yaml")):
        return None
    return path


FIELDS = (
    "issuer",
    "provider",
    "repository",
    "repository_owner_id",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "ref",
    "sha",
    "environment",
    "run_id",
    "run_attempt",
    "actor",
    "subject",
)


#: fields whose query column holds the lower-cased value
CASE_INSENSITIVE = frozenset({"repository", "workflow_ref", "job_workflow_ref"})


def query_key(field: str, value: str | None) -> str | None:
    """The value as the query table stores and compares it."""
    return value.lower() if value is not None and field in CASE_INSENSITIVE else value


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)) and value != "":
        return str(value)
    return None


def identity_fields(issuer: str, provider: str, claims: Mapping[str, Any]) -> dict[str, str | None]:
    """The identity of an exchange's token in pubtrail's provider-neutral fields (see the module table)."""
    def get(name: str) -> str | None:
        return _text(claims.get(name))

    out: dict[str, str | None] = dict.fromkeys(FIELDS)
    out.update(issuer=issuer, provider=provider, subject=get("sub"))
    if provider == "github":
        job_workflow_ref = get("job_workflow_ref")
        out.update(
            repository=get("repository"),
            repository_owner_id=get("repository_owner_id"),
            workflow=workflow_filename_from_ref(job_workflow_ref) if job_workflow_ref else None,
            workflow_ref=get("workflow_ref"),
            job_workflow_ref=job_workflow_ref,
            ref=get("ref"),
            sha=get("sha"),
            environment=get("environment"),
            run_id=get("run_id"),
            run_attempt=get("run_attempt"),
            actor=get("actor"),
        )
    elif provider == "gitlab":
        uri = get("ci_config_ref_uri")
        out.update(
            repository=get("project_path"),
            repository_owner_id=get("namespace_id"),
            workflow=workflow_filepath_from_ref_uri(uri) if uri else None,
            workflow_ref=uri,
            job_workflow_ref=uri,
            ref=get("ref_path"),
            sha=get("sha"),
            environment=get("environment"),
            run_id=get("pipeline_id"),
            actor=get("user_login"),
        )
    elif provider == "google":
        out.update(actor=get("email"))
    elif provider == "activestate":
        org, project = get("organization"), get("project")
        out.update(
            repository=f"{org}/{project}" if org and project else None,
            repository_owner_id=get("organization_id"),
            actor=get("actor"),
        )
    return out


def authorised_by(auth: str, publisher: Mapping[str, Any] | None, api_token: Mapping[str, Any] | None) -> str:
    """How an upload was authorised, in one plain sentence: ``auth`` is the upload entry's;
    ``publisher`` the identity of the exchange behind a trusted-publishing upload;
    ``api_token`` the `api_token` create entry (description, time) behind an API-token upload.
    The server, the mirror and the verifying client all phrase it with this function."""
    if auth == "api_token" and api_token is not None:
        return f"uploaded with API token {api_token['description']!r} created {str(api_token['time'])[:10]}"
    if auth == "api_token":
        return "uploaded with an API token"
    who = publisher or {}
    parts = [str(who.get("provider") or "unknown provider")]
    if who.get("repository"):
        parts.append(str(who["repository"]))
    if who.get("workflow"):
        parts.append(f"workflow {who['workflow']}")
    if who.get("environment"):
        parts.append(f"environment {who['environment']}")
    if who.get("provider") == "google" and who.get("actor"):
        parts.append(str(who["actor"]))
    return "uploaded through trusted publishing: " + ", ".join(parts)


#: what must stay the same from one release of a project to the next
CONTINUITY_FIELDS = ("provider", "repository", "workflow", "environment")


def continuity_key(identity: Mapping[str, Any]) -> tuple:
    """The CONTINUITY_FIELDS of a publisher identity as compared (repository case-insensitively)."""
    return tuple(query_key(name, identity.get(name)) for name in CONTINUITY_FIELDS)


def continuity(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """`{"changed", "current", "previous"}` for two publisher identities (any mapping with
    the CONTINUITY_FIELDS, such as an upload entry's `publisher`); `previous` None (a first
    release) is never a change. The server, the mirror and the verifying client all use it."""
    return {
        "changed": previous is not None and continuity_key(current) != continuity_key(previous),
        "current": {name: current.get(name) for name in CONTINUITY_FIELDS},
        "previous": None if previous is None else {name: previous.get(name) for name in CONTINUITY_FIELDS},
    }
