"""Pure view logic of the explorer: search routing, charts, forge links and page models.

Nothing here reads the database or the network; the routes (`app.web.routes`)
feed it answers of the provenance and blast-radius services and render the
result with the templates. Everything is testable without a browser.
"""

from __future__ import annotations

import re
from html import escape
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, NamedTuple, Sequence
from urllib.parse import quote, urlencode

__all__ = [
    "Bar",
    "Chart",
    "SearchTarget",
    "bucket_chart",
    "classify",
    "commit_url",
    "project_table",
    "forge_url",
    "human_age",
    "timeline",
]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_INDEX = re.compile(r"(?:0|[1-9][0-9]{0,17})")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+")
_PROJECT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_DISTRIBUTION_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg")


@dataclass(frozen=True)
class SearchTarget:
    """What a search box query names: `kind` is sha256, index, filename, repository or
    project (value normalized where the log normalizes), or invalid (value = the reason)."""

    kind: str
    value: str


def classify(query: str) -> SearchTarget:
    """Decide what one search-box query names, from its shape alone.

    - 64 hex digits: a file's SHA-256 (lower-cased);
    - decimal digits: a log index (a project named only by digits is found by its page's URL);
    - a name ending in a distribution suffix (``.whl``, ``.tar.gz``, ...): a filename;
    - ``owner/repo`` (slashes, no spaces): a forge repository (GitLab groups nest);
    - a PEP 508 project name: that project, PEP 503 normalized;
    - anything else (empty, spaces, control characters, too long): invalid.
    """
    text = query.strip()
    if not text:
        return SearchTarget("invalid", "type a SHA-256, a filename, a project, owner/repo or a log index")
    if len(text) > 300:
        return SearchTarget("invalid", "the query is longer than 300 characters")
    if _HEX64.fullmatch(text):
        return SearchTarget("sha256", text.lower())
    if text.isascii() and text.isdigit():
        if _INDEX.fullmatch(text):
            return SearchTarget("index", text)
        return SearchTarget("invalid", f"{text} is not a log index (no leading zeros, at most 18 digits)")
    if text.lower().endswith(_DISTRIBUTION_SUFFIXES) and "/" not in text and " " not in text:
        return SearchTarget("filename", text)
    if _REPOSITORY.fullmatch(text):
        return SearchTarget("repository", text)
    if _PROJECT.fullmatch(text):
        return SearchTarget("project", re.sub(r"[-_.]+", "-", text).lower())
    return SearchTarget("invalid", f"{text!r} is not a SHA-256, filename, project name, owner/repo or log index")


def search_location(target: SearchTarget) -> str | None:
    """The page a search target goes to without asking the database (None for a filename,
    which must be looked up, and for an invalid query)."""
    if target.kind == "sha256":
        return f"/file/{target.value}"
    if target.kind == "index":
        return f"/entry/{target.value}"
    if target.kind == "repository":
        return "/blast-radius?" + urlencode({"repository": target.value})
    if target.kind == "project":
        return f"/project/{quote(target.value)}"
    return None


# --- forge links ----------------------------------------------------------------

_FORGES = {"github": "https://github.com/", "gitlab": "https://gitlab.com/"}
_SAFE_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_SHA = re.compile(r"[0-9a-fA-F]{7,64}")


def forge_url(provider: str | None, repository: str | None) -> str | None:
    """The repository's page on its forge (GitHub, GitLab), or None for other providers
    or a name that is not a plain path (never a link built from arbitrary text)."""
    base = _FORGES.get(provider or "")
    if base is None or not repository or not _SAFE_PATH.fullmatch(repository):
        return None
    if any(set(segment) == {"."} for segment in repository.split("/")):
        return None
    return base + repository


def commit_url(provider: str | None, repository: str | None, sha: str | None) -> str | None:
    """The commit's page on its forge, or None."""
    repo = forge_url(provider, repository)
    if repo is None or not sha or not _SHA.fullmatch(sha):
        return None
    return f"{repo}/-/commit/{sha}" if provider == "gitlab" else f"{repo}/commit/{sha}"


# --- time -------------------------------------------------------------------------


def human_age(seconds: float) -> str:
    """A duration as people say it: "12 s", "3 min", "5 h", "2 d" (negative: "in the future")."""
    if seconds < 0:
        return "in the future (clocks disagree)"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def utc(unix: int | float) -> str:
    """RFC 3339 UTC, whole seconds."""
    return datetime.fromtimestamp(int(unix), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- charts -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    """An inline SVG bar chart of two series per time bucket, in SVG user units."""

    width: int
    height: int
    start: str
    end: str
    maximum: int
    series: tuple[tuple[str, tuple[Bar, ...]], ...]
    totals: tuple[tuple[str, int], ...]

    @property
    def empty(self) -> bool:
        return self.maximum == 0


CHART_WIDTH = 600
CHART_HEIGHT = 160


def bucket_chart(
    start: int, width: int, buckets: int, counts: Mapping[str, Mapping[int, int]]
) -> Chart:
    """Bars for `counts` (series name -> bucket number -> count), `buckets` buckets of
    `width` seconds from `start`; each series gets one bar per bucket, side by side."""
    names = list(counts)
    maximum = max((n for series in counts.values() for n in series.values()), default=0)
    slot = CHART_WIDTH / max(buckets, 1)
    bar_width = slot / (len(names) + 1)
    series = []
    for position, name in enumerate(names):
        bars = []
        for bucket in range(buckets):
            n = counts[name].get(bucket, 0)
            height = 0.0 if maximum == 0 else round(n / maximum * (CHART_HEIGHT - 20), 1)
            label = f"{n} {name} from {utc(start + bucket * width)} to {utc(start + (bucket + 1) * width)}"
            bars.append(Bar(round(bucket * slot + position * bar_width, 1), round(CHART_HEIGHT - height, 1),
                            height, label))
        series.append((name, tuple(bars)))
    return Chart(
        CHART_WIDTH,
        CHART_HEIGHT,
        utc(start),
        utc(start + buckets * width),
        maximum,
        tuple(series),
        tuple((name, sum(counts[name].values())) for name in names),
    )


def chart_window(first: int | None, last: int | None, buckets: int = 30) -> tuple[int, int]:
    """(start, bucket width in seconds) covering [first, last] in `buckets` whole buckets
    of at least a minute."""
    if first is None or last is None:
        return 0, 60
    span = max(last - first + 1, 60)
    width = -(-span // buckets)
    return first, width


TIMELINE_LEFT = 130  # room for the project names on the left


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    label: str
    href: str


def timeline(items: Sequence[Mapping[str, Any]], rows: Sequence[str]) -> tuple[list[Dot], str | None, str | None]:
    """Dots of items (each `{time, index, <row key>}` with `time` RFC 3339) on a time axis,
    one row per distinct project (`rows` gives the order); returns the dots and the axis's
    first and last times."""
    if not items:
        return [], None, None
    times = [_parse(item["time"]) for item in items]
    low, high = min(times), max(times)
    span = max(high - low, 1)
    row_of = {name: position for position, name in enumerate(rows)}
    dots = []
    for item, at in zip(items, times):
        x = TIMELINE_LEFT + (at - low) / span * (CHART_WIDTH - TIMELINE_LEFT - 10)
        y = 15 + row_of.get(item["project"], 0) * 20
        dots.append(Dot(round(x, 1), y, f"{item['project']} {item['version']} {item['filename']} at {item['time']}",
                        f"/entry/{item['index']}"))
    return dots, utc(low), utc(high)


def _parse(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


# --- project page -----------------------------------------------------------------


class FileRow(NamedTuple):
    """One file of a project page, as short as the page needs it (a page lists 1,000s;
    a tuple builds several times faster than a frozen dataclass)."""

    version: str  # "" when the same as the row above
    filename: str
    sha256: str
    size: int
    uploaded_at: str
    identity: int | None  # number in the page's identity legend; None for an API-token upload
    ref: str
    commit: str  # the first 12 hex digits
    exchange: int | None
    changed: bool  # the publisher identity differs from the previous release's
    incident: bool
    attested: bool | None


def project_table(releases: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[FileRow]]:
    """A project answer's releases as (identity legend, file rows newest release first).

    The legend holds each distinct publisher identity (provider, repository, workflow,
    environment: the fields identity continuity compares) once, numbered from 1, with
    the number of files it published; each row names its identity by number and adds
    what differs per run (ref, commit, the exchange entry)."""
    legend: dict[tuple, dict[str, Any]] = {}
    rows: list[FileRow] = []
    for release in reversed(releases):
        first = True
        for file in release["files"]:
            publisher = file.get("publisher")
            number = None
            if publisher:
                key = tuple((publisher.get(name) or "").lower() if name == "repository" else publisher.get(name)
                            for name in ("provider", "repository", "workflow", "environment"))
                known = legend.get(key)
                if known is None:
                    known = legend[key] = {"number": len(legend) + 1, "publisher": publisher, "files": 0}
                known["files"] += 1
                number = known["number"]
            exchange = file.get("exchange") or {}
            continuity_answer = file.get("identity_continuity") or {}
            rows.append(
                FileRow(
                    version=release["version"] if first else "",
                    filename=file["filename"],
                    sha256=file["sha256"],
                    size=file["size"],
                    uploaded_at=file["uploaded_at"],
                    identity=number,
                    ref=(publisher or {}).get("ref") or "",
                    commit=((publisher or {}).get("sha") or "")[:12],
                    exchange=exchange.get("index"),
                    changed=bool(continuity_answer.get("changed")),
                    incident=bool(file.get("incidents")),
                    attested=file.get("attested"),
                )
            )
            first = False
    return list(legend.values()), rows


_ROW = (
    '<tr{first}><td>{version}<td><a href="/file/{sha256}">{filename}</a>{flags}<td>{size}<td>{uploaded_at}'
    "<td>{by}<td>{ref}<td>{commit}<td>{exchange}\n"
)


def file_rows_html(rows: Iterable[FileRow]) -> str:
    """The rows of the project page's file table as HTML (every value escaped).

    Built with one format string rather than in the template: a project of 1,000 files
    renders in a few milliseconds instead of tens (the page's server-time budget)."""
    out = []
    for row in rows:
        flags = ""
        if row.changed:
            flags += ' <b class="warning" title="publisher identity changed">⚠ identity</b>'
        if row.incident:
            flags += ' <b class="warning">⚠ incident</b>'
        if row.attested:
            flags += " <small>attested</small>"
        out.append(
            _ROW.format(
                first=' class="first"' if row.version else "",
                version=escape(row.version),
                sha256=escape(row.sha256),
                filename=escape(row.filename),
                flags=flags,
                size=int(row.size),
                uploaded_at=escape(row.uploaded_at),
                by=row.identity if row.identity is not None else "API token",
                ref=escape(row.ref),
                commit=escape(row.commit),
                exchange="" if row.exchange is None else f'<a href="/entry/{int(row.exchange)}">{int(row.exchange)}</a>',
            )
        )
    return "".join(out)


def incidents_of(files: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The distinct incidents covering any of `files`, in order of first appearance."""
    seen: dict[str, Mapping[str, Any]] = {}
    for file in files:
        for incident in file.get("incidents") or ():
            seen.setdefault(incident.get("id"), incident)
    return list(seen.values())


def blast_query(criteria: Mapping[str, Any], **extra: str) -> str:
    """The query string of a blast-radius answer's criteria (plus `extra`)."""
    items = [(name, str(value)) for name, value in criteria.items() if value is not None]
    items += [(name, value) for name, value in extra.items() if value is not None]
    return urlencode(items)
