"""Simple API rendering (PEP 503 / 691 / 700) and content negotiation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.distributions.simple import (
    HTML_V1,
    JSON_V1,
    TEXT_HTML,
    NotAcceptable,
    SimpleFile,
    choose_simple_format,
    integrity_path,
    negotiate,
    render_index,
    render_project,
)

SHA = "ab" * 32
FILES = [
    SimpleFile("demo_pkg-1.0.tar.gz", SHA, 1234, ">=3.8,<4", datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)),
    SimpleFile("demo_pkg-1.1-py3-none-any.whl", "cd" * 32, 99, None, None,
               provenance="/integrity/demo-pkg/1.1/demo_pkg-1.1-py3-none-any.whl/provenance"),
]


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        (None, TEXT_HTML),
        ("", TEXT_HTML),
        ("*/*", TEXT_HTML),
        ("text/html", TEXT_HTML),
        (JSON_V1, JSON_V1),
        (HTML_V1, HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.latest+html", HTML_V1),
        # what pip sends
        (f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01", JSON_V1),
        (f"{JSON_V1}; q=0.2, {HTML_V1}; q=0.5", HTML_V1),
        (f"{JSON_V1}, {HTML_V1}", JSON_V1),  # tie: first listed wins
        (f"{HTML_V1}, {JSON_V1}", HTML_V1),
        ("application/*", HTML_V1),
        ("text/*;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4", TEXT_HTML),
        ("*/*;q=0.1, application/vnd.pypi.simple.v1+json", JSON_V1),
        ("text/html;q=0, */*", HTML_V1),  # the specific q=0 excludes text/html only
    ],
)
def test_negotiation(accept, want) -> None:
    assert choose_simple_format(accept) == want


@pytest.mark.parametrize("accept", ["application/json", "text/plain", "*/*;q=0", "application/vnd.pypi.simple.v2+json", "garbage"])
def test_not_acceptable(accept) -> None:
    with pytest.raises(NotAcceptable):
        choose_simple_format(accept)


def test_project_html() -> None:
    page = render_project("Demo.Pkg", FILES, TEXT_HTML)
    assert page.startswith("<!DOCTYPE html>\n")
    assert "<title>Links for demo-pkg</title>" in page
    assert (f'<a href="/files/{SHA}/demo_pkg-1.0.tar.gz#sha256={SHA}" '
            'data-requires-python="&gt;=3.8,&lt;4">demo_pkg-1.0.tar.gz</a><br />') in page
    assert ('<a href="/files/' + "cd" * 32 + '/demo_pkg-1.1-py3-none-any.whl#sha256=' + "cd" * 32
            + '" data-provenance="/integrity/demo-pkg/1.1/demo_pkg-1.1-py3-none-any.whl/provenance"'
            + '>demo_pkg-1.1-py3-none-any.whl</a>') in page
    assert '<meta name="pypi:repository-version" content="1.3">' in page
    assert render_project("Demo.Pkg", FILES, HTML_V1) == page


def test_project_html_escapes() -> None:
    page = render_project("x", [SimpleFile('a"<b>.tar.gz', SHA, 1, '">x<', None)], TEXT_HTML)
    assert "<b>" not in page and '">x<' not in page
    assert "a%22%3Cb%3E.tar.gz" in page


def test_project_json() -> None:
    doc = json.loads(render_project("Demo.Pkg", FILES, JSON_V1))
    assert doc["meta"] == {"api-version": "1.3"}
    assert doc["name"] == "demo-pkg"
    assert doc["versions"] == ["1.0", "1.1"]
    first, second = doc["files"]
    assert first == {
        "filename": "demo_pkg-1.0.tar.gz",
        "url": f"/files/{SHA}/demo_pkg-1.0.tar.gz#sha256={SHA}",
        "hashes": {"sha256": SHA},
        "requires-python": ">=3.8,<4",
        "size": 1234,
        "yanked": False,
        "upload-time": "2024-05-01T12:00:00.000000Z",
        "provenance": None,  # PEP 740: no attestations
    }
    assert second["requires-python"] is None and "upload-time" not in second
    assert second["provenance"] == "/integrity/demo-pkg/1.1/demo_pkg-1.1-py3-none-any.whl/provenance"


def test_upload_time_converted_to_utc() -> None:
    ts = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    doc = json.loads(render_project("d", [SimpleFile("d-1.tar.gz", SHA, 1, None, ts)], JSON_V1))
    assert doc["files"][0]["upload-time"] == "2024-05-01T12:00:00.000000Z"


def test_index() -> None:
    page = render_index(["Demo.Pkg", "other_thing", "demo-pkg"], TEXT_HTML)
    assert page.count("<a ") == 2
    assert '<a href="/simple/demo-pkg/">demo-pkg</a>' in page
    doc = json.loads(render_index(["B", "a"], JSON_V1))
    assert doc == {"meta": {"api-version": "1.3"}, "projects": [{"name": "a"}, {"name": "b"}]}


def test_integrity_path_quotes_each_segment() -> None:
    assert integrity_path("demo-pkg", "1.0+local", "demo_pkg-1.0+local.tar.gz") == (
        "/integrity/demo-pkg/1.0%2Blocal/demo_pkg-1.0%2Blocal.tar.gz/provenance"
    )


def test_negotiate_picks_among_any_offers() -> None:
    offers = ("application/vnd.pypi.integrity.v1+json", "application/json")
    assert negotiate("*/*", offers) == offers[0]
    assert negotiate("application/json", offers) == "application/json"
    assert negotiate("application/json;q=0.5, application/*;q=0.9", offers) == offers[0]
    with pytest.raises(NotAcceptable):
        negotiate("text/html", offers)
