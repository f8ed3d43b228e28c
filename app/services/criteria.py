"""Blast-radius criteria: what a responder asks about, parsed and checked once.

The same criteria select a blast radius (`GET /api/v1/blast-radius` query
parameters) and are logged in an `incident` entry (a JSON object), so they
have one canonical JSON form (`Criteria.to_json`): only the criteria given,
times as RFC 3339 UTC whole seconds.

    exchange criteria   issuer, provider, repository, repository_owner_id,
                        workflow (a file name, or a full workflow_ref when it
                        contains '@'), job_workflow_ref, ref, sha, environment,
                        actor, publisher_id, kid
    upload criteria     token_id (an upload token's or an API token's id), project,
                        auth (trusted_publishing or api_token: how uploads were authorised)
    window              since (inclusive), until (exclusive), RFC 3339

At least one exchange or upload criterion is required: a window alone would
ask for the whole log in that window, which is not a question about a
publisher. Anything else (an unknown name, a repeated or empty value, a
malformed time, since >= until) is a `BadRequest`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

import rfc8785

from app.entries import rfc3339
from app.errors import BadRequest
from app.services.publishers import project_name

#: criteria matched against the exchange's publisher identity (`exchange_identity`)
IDENTITY_CRITERIA = (
    "provider",
    "repository",
    "repository_owner_id",
    "workflow",
    "job_workflow_ref",
    "ref",
    "sha",
    "environment",
    "actor",
)
#: criteria matched against the `exchange` row itself
EXCHANGE_CRITERIA = ("issuer", "publisher_id", "kid")
#: criteria that select uploads directly
UPLOAD_CRITERIA = ("token_id", "project", "auth")
#: the values of `auth` (`UploadEntry.auth`)
AUTHS = ("trusted_publishing", "api_token")
WINDOW = ("since", "until")
NAMES = (*EXCHANGE_CRITERIA, *IDENTITY_CRITERIA, *UPLOAD_CRITERIA, *WINDOW)
MAX_VALUE = 1000

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class Criteria:
    """Validated criteria. `values` holds the exchange and upload criteria as
    given (projects normalized); `since`/`until` are Unix seconds or None."""

    values: Mapping[str, str] = field(default_factory=dict)
    since: int | None = None
    until: int | None = None

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    @property
    def exchange_criteria(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k in EXCHANGE_CRITERIA or k in IDENTITY_CRITERIA}

    @property
    def selects_exchanges(self) -> bool:
        """True when exchanges are chosen by identity (the window then applies to
        exchange time); False when only upload criteria were given (the window
        applies to upload time)."""
        return bool(self.exchange_criteria)

    def to_json(self) -> dict[str, str]:
        """The canonical JSON object: the criteria given, nothing else."""
        out = dict(self.values)
        if self.since is not None:
            out["since"] = rfc3339(self.since)
        if self.until is not None:
            out["until"] = rfc3339(self.until)
        return dict(sorted(out.items()))

    def digest(self) -> str:
        """A short fingerprint of the canonical form (binds paging cursors to their query)."""
        return hashlib.sha256(rfc8785.dumps(self.to_json())).hexdigest()[:16]


def parse_time(name: str, text: str) -> int:
    """Unix seconds of an RFC 3339 time with an explicit offset; BadRequest otherwise.

    Fractions round up to the next whole second: entry times are whole
    seconds, so `since` (inclusive) and `until` (exclusive) select the same
    entries as the exact instant would.
    """
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise BadRequest(f"{name} must be an RFC 3339 time such as 2026-09-21T12:00:00Z, not {text!r:.80}")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid time: {exc}") from exc
    return math.ceil(moment.timestamp())


def from_mapping(raw: Mapping[str, Any]) -> Criteria:
    """Criteria from a JSON object (an incident's `criteria`): string values only."""
    if not isinstance(raw, Mapping):
        raise BadRequest("criteria must be a JSON object")
    for name, value in raw.items():
        if not isinstance(value, str):
            raise BadRequest(f"criterion {name!r:.80} must be a string")
    return _build(raw.items())


def from_query(items: Iterable[tuple[str, str]], *, ignore: Iterable[str] = ()) -> Criteria:
    """Criteria from query parameters; names in `ignore` (paging, format) are skipped."""
    skip = set(ignore)
    return _build((name, value) for name, value in items if name not in skip)


def _build(items: Iterable[tuple[str, str]]) -> Criteria:
    values: dict[str, str] = {}
    times: dict[str, int] = {}
    seen: set[str] = set()
    for name, value in items:
        if name not in NAMES:
            raise BadRequest(f"unknown criterion {name!r:.80}; known: {', '.join(NAMES)}")
        if name in seen:
            raise BadRequest(f"{name} is given more than once")
        seen.add(name)
        if not value or len(value) > MAX_VALUE or not value.isprintable():
            raise BadRequest(f"{name} must be a non-empty printable string of at most {MAX_VALUE} characters")
        if name in WINDOW:
            times[name] = parse_time(name, value)
        elif name == "project":
            values[name] = project_name(value)
        elif name == "auth":
            if value not in AUTHS:
                raise BadRequest(f"auth must be one of {', '.join(AUTHS)}, not {value!r:.80}")
            values[name] = value
        else:
            values[name] = value
    if not values:
        raise BadRequest(
            "name at least one criterion besides the time window: " + ", ".join(n for n in NAMES if n not in WINDOW)
        )
    since, until = times.get("since"), times.get("until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until")
    return Criteria(values=dict(sorted(values.items())), since=since, until=until)
