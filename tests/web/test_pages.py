"""The explorer's pages as HTTP answers (no browser): what each page holds, where search
sends a query, and that bad input is an HTML 4xx page, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.e2e.provenance_support import PROJECT, mint, upload

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def published(service, tmp_path):
    service.add_github_publisher(PROJECT)
    publisher = mint(service)
    first = upload(service, publisher, tmp_path / "a", "1.0.0")
    service.clock.value += 60
    second = upload(service, mint(service), tmp_path / "b", "1.1.0")
    return service, first, second


def get(service, path, **headers):
    return service.client.get(path, headers={**HTML, **headers}, follow_redirects=False)


def assert_page(response, status=200):
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # everything the page loads comes from this server
    for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", response.text):
        for url in re.findall(r"""(?:src|href)="([^"]*)\"""", tag):
            assert url.startswith("/") or url.startswith("data:"), tag
    return response.text


def test_status_page(published):
    service, first, second = published
    text = assert_page(get(service, "/"))
    size = service.log_size()
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    assert f"{size} entries" in text and key in text
    assert 'data-verify="checkpoint"' in text
    assert f'<a href="/entry/{second.index}">{second.index}</a>' in text  # recent entries, newest first
    assert text.index(f"/entry/{second.index}") < text.index(f"/entry/{first.index}\"")
    assert "token exchanges (2)" in text and "uploads (2)" in text  # the chart's legend counts
    assert text.count("<rect ") >= 2


def test_pages_are_gzipped_when_accepted(published):
    service, first, _ = published
    for path in ("/", f"/file/{first.sha256}", f"/project/{PROJECT}"):
        plain = get(service, path, **{"Accept-Encoding": "identity"})
        packed = service.client.get(path, headers={**HTML, "Accept-Encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip", path
        assert int(packed.headers["content-length"]) < len(plain.content)
        assert "Accept-Encoding" in packed.headers["vary"]
        head = service.client.head(path, headers=HTML)
        assert head.status_code == 200 and head.content == b""


def test_search_sends_each_query_to_its_page(published):
    service, first, _ = published
    for query, location in (
        (first.sha256.upper(), f"/file/{first.sha256}"),
        (first.path.name, f"/file/{first.sha256}"),
        (str(first.index), f"/entry/{first.index}"),
        ("SampleProject", "/project/sampleproject"),
        ("octo-org/sampleproject", "/blast-radius?repository=octo-org%2Fsampleproject"),
    ):
        response = service.client.get(
            "/search", params={"q": query}, headers=HTML, follow_redirects=False)
        assert response.status_code == 303, query
        assert response.headers["location"] == location, query
    missing = service.client.get("/search", params={"q": "nothing-1.0-py3-none-any.whl"}, headers=HTML)
    assert "no uploaded file is named" in assert_page(missing, 404)
    for bad in ("", "two words", "0012"):
        assert_page(service.client.get("/search", params={"q": bad}, headers=HTML), 400)


def test_file_page(published):
    service, first, second = published
    text = assert_page(get(service, f"/file/{second.sha256}"))
    assert f'data-sha256="{second.sha256}"' in text
    assert f'<span data-check="upload.filename">{second.path.name}</span>' in text
    assert 'href="https://github.com/octo-org/sampleproject"' in text
    assert "Same publisher" in text  # identity continuity with 1.0.0
    assert_page(get(service, "/file/" + "0" * 64), 404)
    assert_page(get(service, "/file/not-a-digest"), 400)


def test_project_page(published):
    service, first, second = published
    text = assert_page(get(service, f"/project/{PROJECT}"))
    assert text.index("<td>1.1.0<td>") < text.index("<td>1.0.0<td>")  # newest release first
    assert text.count('<tr class="first">') == 2
    assert '<ol class="legend" id="identities">' in text and "2 files</li>" in text  # one identity
    for file in (first, second):
        assert f'<a href="/file/{file.sha256}">{file.path.name}</a>' in text
    assert 'id="publisher-history"' in text and "add" in text
    assert_page(get(service, "/project/never-heard-of-it"), 404)
    assert_page(get(service, "/project/-x-"), 400)


def test_entry_page(published):
    service, first, _ = published
    text = assert_page(get(service, f"/entry/{first.index}"))
    entry = service.client.get(f"/api/v1/log/entries/{first.index}").json()
    assert entry["leaf_hash"] in text and entry["entry_bytes"] in text
    assert all(h in text for h in entry["inclusion_proof"]["hashes"])
    assert_page(get(service, "/entry/99999"), 404)
    for bad in ("abc", "-1", "1" * 19):
        assert_page(get(service, f"/entry/{bad}"), 400)


def test_blast_radius_page(published):
    service, first, second = published
    form = assert_page(get(service, "/blast-radius"))
    assert 'name="repository"' in form and 'id="results"' not in form
    text = assert_page(get(service, "/blast-radius?repository=Octo-Org/SampleProject&workflow=&since="))
    assert '<strong data-total="uploads">2</strong>' in text
    assert '<strong data-total="exchanges">2</strong>' in text
    assert 'href="/api/v1/blast-radius?repository=Octo-Org%2FSampleProject&amp;format=csv"' in text
    assert text.count("<circle ") == 2
    assert '<script type="application/json" id="criteria-json">{"repository": "Octo-Org/SampleProject"}</script>' in text
    refused = assert_page(get(service, "/blast-radius?since=2026-01-01T00:00:00Z"), 400)
    assert "name at least one criterion" in refused
    assert "must be an RFC 3339 time" in assert_page(get(service, "/blast-radius?repository=o/r&since=yesterday"), 400)
    assert "unknown criterion" in assert_page(get(service, "/blast-radius?colour=red"), 400)


def test_json_front_page_is_unchanged(published):
    service, _, _ = published
    answer = service.client.get("/", headers={"Accept": "application/json"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["size"] == service.log_size()


def test_static_assets_are_served(service):
    for asset in ("verify.js", "page.js", "style.css"):
        response = service.client.get(f"/_/static/web/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000, asset


def test_status_chart_counts_are_reused_for_a_minute(published):
    service, _, _ = published
    assert "token exchanges (2)" in get(service, "/").text
    mint(service)  # a third exchange
    again = get(service, "/").text
    assert f"{service.log_size()} entries" in again  # the size is always fresh
    assert "token exchanges (2)" in again
    service.clock.value += 61
    assert "token exchanges (3)" in get(service, "/").text
