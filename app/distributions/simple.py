"""The simple repository API: PEP 503 HTML, PEP 691 JSON (with PEP 700's
``versions``/``size``/``upload-time``, api-version 1.1), and PEP 691
content negotiation. Pure rendering: plain values in, ``str`` out.

File links point at ``{files_prefix}/{sha256}/{filename}#sha256={sha256}``
(content-addressed, so cacheable forever).

PEP 740: a file with attestations carries the URL of its provenance object
(``/integrity/{project}/{version}/{filename}/provenance``, :func:`integrity_path`)
as ``provenance`` in JSON (``null`` for a file without) and as
``data-provenance`` in HTML; hence api-version 1.3.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

__all__ = [
    "API_VERSION",
    "HTML_V1",
    "JSON_V1",
    "TEXT_HTML",
    "NotAcceptable",
    "SimpleFile",
    "choose_simple_format",
    "integrity_path",
    "negotiate",
    "render_index",
    "render_project",
]

API_VERSION = "1.3"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

# Server preference when the client is indifferent (e.g. ``*/*`` or no
# Accept header): HTML, as PEP 691 recommends for compatibility.
_PREFERENCE = (TEXT_HTML, HTML_V1, JSON_V1)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}


class NotAcceptable(Exception):
    """No format the client accepts is available: answer 406."""


@dataclass(frozen=True)
class SimpleFile:
    """One distribution file of a project, as the index lists it."""

    filename: str
    sha256: str
    size: int
    requires_python: str | None = None
    upload_time: datetime | None = None
    #: the URL of its PEP 740 provenance object, None when it has no attestations
    provenance: str | None = None


def integrity_path(project: str, version: str, filename: str) -> str:
    """The Integrity API URL (PyPI's) of a file's provenance object: ``project`` normalized."""
    return f"/integrity/{quote(project, safe='')}/{quote(version, safe='')}/{quote(filename, safe='')}/provenance"


def _parse_accept(accept: str) -> list[tuple[str, float, int]]:
    """(media range, q, position) for each entry of an Accept header."""
    ranges = []
    for position, item in enumerate(accept.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media or "/" not in media:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                q = min(max(q, 0.0), 1.0)
        ranges.append((_ALIASES.get(media, media), q, position))
    return ranges


def _specificity(media_range: str, candidate: str) -> int:
    """3 exact, 2 ``type/*``, 1 ``*/*``, 0 no match."""
    if media_range == candidate:
        return 3
    main, _, sub = media_range.partition("/")
    if sub == "*" and main == "*":
        return 1
    if sub == "*" and candidate.partition("/")[0] == main:
        return 2
    return 0


def choose_simple_format(accept: str | None) -> str:
    """Pick the response type for ``/simple/`` pages from an Accept header.

    Returns :data:`JSON_V1`, :data:`HTML_V1` or :data:`TEXT_HTML` (use it as
    the response Content-Type). Per candidate, the most specific matching
    range sets its q (RFC 9110 section 12.5.1); the highest q wins, then the
    more specific match, then the range listed first, then HTML. ``latest``
    aliases mean v1. No header: ``text/html``. Nothing acceptable (all q=0
    or no match): raises :class:`NotAcceptable` (406).
    """
    if accept is None or not accept.strip():
        return TEXT_HTML
    return negotiate(accept, _PREFERENCE)


def negotiate(accept: str, offers: Sequence[str]) -> str:
    """The one of ``offers`` (server preference first) an Accept header chooses, by the
    rules of :func:`choose_simple_format`; :class:`NotAcceptable` when none is acceptable."""
    ranges = _parse_accept(accept)
    best: tuple | None = None
    for preference, candidate in enumerate(offers):
        matches = [(spec, q, pos) for media, q, pos in ranges if (spec := _specificity(media, candidate))]
        if not matches:
            continue
        spec, q, pos = max(matches, key=lambda m: (m[0], -m[2]))
        if q <= 0:
            continue
        key = (q, spec, -pos, -preference)
        if best is None or key > best[0]:
            best = (key, candidate)
    if best is None:
        raise NotAcceptable(accept)
    return best[1]


def _file_url(files_prefix: str, file: SimpleFile) -> str:
    return f"{files_prefix}/{file.sha256}/{quote(file.filename)}#sha256={file.sha256}"


def _iso(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def render_project(
    name: str,
    files: Sequence[SimpleFile],
    fmt: str,
    *,
    versions: Iterable[str] | None = None,
    files_prefix: str = "/files",
) -> str:
    """Render ``/simple/{project}/`` in ``fmt`` (a value returned by
    :func:`choose_simple_format`). ``versions`` (PEP 700) defaults to the
    versions parsed from the filenames."""
    normalized = canonicalize_name(name)
    if fmt == JSON_V1:
        if versions is None:
            versions = {v for f in files if (v := _version_of(f.filename))}
        entries = []
        for f in files:
            entry: dict[str, object] = {
                "filename": f.filename,
                "url": _file_url(files_prefix, f),
                "hashes": {"sha256": f.sha256},
                "requires-python": f.requires_python,
                "size": f.size,
                "yanked": False,
                "provenance": f.provenance,
            }
            if f.upload_time is not None:
                entry["upload-time"] = _iso(f.upload_time)
            entries.append(entry)
        document = {
            "meta": {"api-version": API_VERSION},
            "name": normalized,
            "versions": sorted(set(versions)),
            "files": entries,
        }
        return json.dumps(document, separators=(",", ":"))
    title = html.escape(f"Links for {normalized}")
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>{title}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>{title}</h1>",
    ]
    for f in files:
        attrs = f'href="{html.escape(_file_url(files_prefix, f))}"'
        if f.requires_python:
            attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
        if f.provenance:
            attrs += f' data-provenance="{html.escape(f.provenance)}"'
        lines.append(f"    <a {attrs}>{html.escape(f.filename)}</a><br />")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)


def render_index(project_names: Iterable[str], fmt: str) -> str:
    """Render ``/simple/``: every project, linked by normalized name."""
    names = sorted({canonicalize_name(n) for n in project_names})
    if fmt == JSON_V1:
        return json.dumps(
            {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]},
            separators=(",", ":"),
        )
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    lines += [f'    <a href="/simple/{quote(n)}/">{html.escape(n)}</a><br />' for n in names]
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines)
