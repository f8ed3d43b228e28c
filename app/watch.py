"""Watch rules: which log entries someone wants to hear about.

A pure module (standard library, :mod:`app.entries` and :mod:`app.identity`
only): `pubtrail monitor --watch RULES.toml` reads rules from TOML, and the
server's `/api/v1/monitors` takes the same fields as a JSON `match` object,
so both decide with this one function.

The TOML shape (`tomllib`)::

    [[rule]]
    name = "anything uploaded to demo-project"
    kind = "upload"
    project = "demo-project"

    [[rule]]
    name = "demo-project published by anyone but its release workflow"
    project = "demo-project"
    unexpected_publisher = [
      { repository = "me/demo", workflow = "release.yml" },
      { repository = "me/demo", workflow = "hotfix.yml", environment = "pypi" },
    ]

    [[rule]]
    name = "tokens minted by this signing key"
    kid = ["key-1", "key-2"]          # a list means any of these values

A rule is a table with a `name` (a non-empty string) and at least one
criterion. Criteria combine with AND; a criterion whose value is a list
matches any of its values. The criteria:

    kind                  the entry kind: exchange, upload, publisher, revocation, incident,
                          api_token, project_settings
    auth                  how an upload was authorised: trusted_publishing or api_token
                          (uploads only; a v1 upload entry is trusted_publishing)
    event                 an event the caller derived for the entry from log state
                          (`EVENTS`): api_token_on_trusted_project, an upload made
                          with an API token while a trusted publisher was
                          registered for its project (PyPI emails owners about it)
    project               an index project (PEP 503 normalized before comparing): an
                          upload's project, one of an exchange's projects, a
                          publisher, api_token or project_settings entry's project
    issuer, repository, repository_owner_id, workflow, environment, kid
                          the publisher identity behind an exchange or an upload
    unexpected_publisher  a list of allowed publishers, each a table of identity
                          fields (issuer, provider, repository,
                          repository_owner_id, workflow, ref, environment) that
                          must all be equal; the rule matches an upload (only
                          uploads) whose identity is none of them. It needs
                          `project` (an allow-list is per project).

Where identity comes from. An `exchange` entry: `app.identity.identity_fields`
of its issuer, provider and claims, and its own `kid`. An `upload` entry: its
own `publisher` field, which stands alone; the fields an upload does not
carry (`repository_owner_id`, `kid`) come from the exchange entry that minted
its token when the caller passes it (`matches(entry, exchange)`), and match
nothing otherwise. Other entry kinds have no identity: identity criteria
never match them. Repository and workflow refs compare case-insensitively
(`app.identity.CASE_INSENSITIVE`), everything else exactly.

`parse_rule(mapping)` and `parse_rules(toml_text)` raise `WatchRuleError`
(a ValueError naming the rule and the field) for anything else: an unknown
field, an empty or non-string value, an unknown kind.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.entries import KINDS, ApiTokenEntry, Entry, ExchangeEntry, ProjectSettingsEntry, PublisherEntry, UploadEntry
from app.identity import identity_fields

#: criteria read from the publisher identity of an exchange or upload
IDENTITY_CRITERIA = ("issuer", "repository", "repository_owner_id", "workflow", "environment", "kid")
#: events a caller derives for an entry from the log's state (see `events_of`)
API_TOKEN_ON_TRUSTED_PROJECT = "api_token_on_trusted_project"
EVENTS = (API_TOKEN_ON_TRUSTED_PROJECT,)
AUTHS = ("trusted_publishing", "api_token")
#: every criterion a rule may name, besides `name`
CRITERIA = ("kind", "project", "auth", "event", *IDENTITY_CRITERIA, "unexpected_publisher")
#: fields an allowed publisher of `unexpected_publisher` may name
PUBLISHER_FIELDS = ("issuer", "provider", "repository", "repository_owner_id", "workflow", "ref", "environment")
_CASE_INSENSITIVE = frozenset({"repository", "workflow_ref", "job_workflow_ref"})
MAX_VALUE = 1000
MAX_VALUES = 100


class WatchRuleError(ValueError):
    """A watch rule that cannot be used; the message names the rule and the field."""


def normalize_project(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _key(field: str, value: str) -> str:
    if field == "project":
        return normalize_project(value)
    return value.lower() if field in _CASE_INSENSITIVE else value


@dataclass(frozen=True)
class Rule:
    """A parsed rule: `criteria` maps each criterion to the set of accepted
    (normalized) values; `allowed` is the `unexpected_publisher` list, or None."""

    name: str
    criteria: Mapping[str, frozenset[str]]
    allowed: tuple[Mapping[str, str], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON object (`name` plus its criteria), parseable by `parse_rule`."""
        out: dict[str, Any] = {"name": self.name}
        for field in CRITERIA:
            values = self.criteria.get(field)
            if values is not None:
                out[field] = next(iter(values)) if len(values) == 1 else sorted(values)
        if self.allowed is not None:
            out["unexpected_publisher"] = [dict(p) for p in self.allowed]
        return out

    def matches(
        self, entry: Entry, exchange: ExchangeEntry | None = None, events: frozenset[str] | set[str] = frozenset()
    ) -> bool:
        """True when `entry` meets every criterion. `exchange` is, for an upload,
        the exchange entry that minted its token (or None when unknown); `events`
        the events the caller derived for the entry (`events_of`)."""
        kinds = self.criteria.get("kind")
        if kinds is not None and entry.kind not in kinds:
            return False
        auths = self.criteria.get("auth")
        if auths is not None and not (isinstance(entry, UploadEntry) and entry.auth in auths):
            return False
        wanted_events = self.criteria.get("event")
        if wanted_events is not None and not (wanted_events & frozenset(events)):
            return False
        projects = self.criteria.get("project")
        if projects is not None and not (projects & _projects(entry)):
            return False
        identity: dict[str, str | None] | None = None
        for field in IDENTITY_CRITERIA:
            wanted = self.criteria.get(field)
            if wanted is None:
                continue
            if identity is None:
                identity = entry_identity(entry, exchange)
            value = identity.get(field)
            if value is None or _key(field, value) not in wanted:
                return False
        if self.allowed is not None:
            if not isinstance(entry, UploadEntry):
                return False
            if identity is None:
                identity = entry_identity(entry, exchange)
            if any(_publisher_matches(allowed, identity) for allowed in self.allowed):
                return False
        return True


def entry_identity(entry: Entry, exchange: ExchangeEntry | None = None) -> dict[str, str | None]:
    """The publisher identity a rule sees for `entry` (see the module docstring);
    an empty mapping for kinds without one."""
    if isinstance(entry, ExchangeEntry):
        identity = identity_fields(entry.issuer, entry.provider, entry.claims)
        identity["kid"] = entry.kid
        return identity
    if isinstance(entry, UploadEntry):
        # an API-token upload has no publisher: identity criteria never match it
        identity = {k: v if isinstance(v, str) else None for k, v in (entry.publisher or {}).items()}
        identity["repository_owner_id"] = None
        identity["kid"] = None
        if exchange is not None:
            identity["repository_owner_id"] = identity_fields(
                exchange.issuer, exchange.provider, exchange.claims
            )["repository_owner_id"]
            identity["kid"] = exchange.kid
        return identity
    return {}


def events_of(entry: Entry, trusted_project: bool) -> frozenset[str]:
    """The events of `entry`, given whether a trusted publisher was registered for its
    project when it was logged (the caller reads that from its own view of the log)."""
    if isinstance(entry, UploadEntry) and entry.auth == "api_token" and trusted_project:
        return frozenset({API_TOKEN_ON_TRUSTED_PROJECT})
    return frozenset()


def _projects(entry: Entry) -> frozenset[str]:
    if isinstance(entry, UploadEntry | PublisherEntry | ApiTokenEntry | ProjectSettingsEntry):
        return frozenset({normalize_project(entry.project)})
    if isinstance(entry, ExchangeEntry):
        return frozenset(normalize_project(p) for p in entry.projects)
    return frozenset()


def _publisher_matches(allowed: Mapping[str, str], identity: Mapping[str, str | None]) -> bool:
    for field, value in allowed.items():
        have = identity.get(field)
        if have is None or _key(field, have) != _key(field, value):
            return False
    return True


def _string(rule: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE or not value.isprintable():
        raise WatchRuleError(
            f"rule {rule!r}: {field} must be a non-empty printable string of at most {MAX_VALUE} characters"
        )
    return value


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A `Rule` from a TOML table or JSON object; WatchRuleError if it is not one."""
    if not isinstance(raw, Mapping):
        raise WatchRuleError("a rule must be a table (JSON object)")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_VALUE:
        raise WatchRuleError("every rule needs a name (a non-empty string)")
    unknown = sorted(set(raw) - {"name", *CRITERIA})
    if unknown:
        raise WatchRuleError(f"rule {name!r}: unknown field {unknown[0]!r}; known: name, {', '.join(CRITERIA)}")
    criteria: dict[str, frozenset[str]] = {}
    for field in ("kind", "project", "auth", "event", *IDENTITY_CRITERIA):
        if field not in raw:
            continue
        value = raw[field]
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_VALUES:
            raise WatchRuleError(f"rule {name!r}: {field} must list 1 to {MAX_VALUES} values")
        texts = [_string(name, field, v) for v in values]
        if field == "kind":
            for kind in texts:
                if kind not in KINDS:
                    raise WatchRuleError(f"rule {name!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
        known = {"auth": AUTHS, "event": EVENTS}.get(field)
        if known is not None:
            for text in texts:
                if text not in known:
                    raise WatchRuleError(f"rule {name!r}: unknown {field} {text!r}; known: {', '.join(known)}")
        criteria[field] = frozenset(_key(field, t) for t in texts)
    allowed: tuple[Mapping[str, str], ...] | None = None
    if "unexpected_publisher" in raw:
        listed = raw["unexpected_publisher"]
        if isinstance(listed, Mapping):
            listed = [listed]
        if not isinstance(listed, list) or not listed or len(listed) > MAX_VALUES:
            raise WatchRuleError(
                f"rule {name!r}: unexpected_publisher must list 1 to {MAX_VALUES} allowed publishers"
            )
        if "project" not in criteria:
            raise WatchRuleError(f"rule {name!r}: unexpected_publisher needs a project")
        parsed = []
        for publisher in listed:
            if not isinstance(publisher, Mapping) or not publisher:
                raise WatchRuleError(f"rule {name!r}: each allowed publisher must be a non-empty table")
            bad = sorted(set(publisher) - set(PUBLISHER_FIELDS))
            if bad:
                raise WatchRuleError(
                    f"rule {name!r}: unknown publisher field {bad[0]!r}; known: {', '.join(PUBLISHER_FIELDS)}"
                )
            parsed.append({f: _string(name, f"unexpected_publisher.{f}", v) for f, v in sorted(publisher.items())})
        allowed = tuple(parsed)
    if not criteria and allowed is None:
        raise WatchRuleError(f"rule {name!r} names no criterion; known: {', '.join(CRITERIA)}")
    return Rule(name=name, criteria=criteria, allowed=allowed)


def parse_rules(text: str) -> list[Rule]:
    """The `[[rule]]` tables of a TOML document; WatchRuleError on bad TOML or a bad rule."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WatchRuleError(f"watch rules are not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - {"rule"})
    if unknown:
        raise WatchRuleError(f"unknown top-level key {unknown[0]!r}: rules are [[rule]] tables")
    rules = document.get("rule", [])
    if not isinstance(rules, list):
        raise WatchRuleError("rules are [[rule]] tables")
    parsed = [parse_rule(r) for r in rules]
    names = [r.name for r in parsed]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise WatchRuleError(f"two rules are named {duplicate!r}")
    return parsed
