"""The explorer's pure parts, without a browser or a server: search routing, links, charts."""

from __future__ import annotations

import pytest

from app.web import views
from app.web.views import SearchTarget, classify, search_location

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("query", "kind", "value"),
    [
        (SHA, "sha256", SHA),
        (SHA.upper(), "sha256", SHA),
        (f"  {SHA}\n", "sha256", SHA),
        ("0", "index", "0"),
        ("12345", "index", "12345"),
        ("sampleproject-1.0.0-py3-none-any.whl", "filename", "sampleproject-1.0.0-py3-none-any.whl"),
        ("sampleproject-1.0.0.tar.gz", "filename", "sampleproject-1.0.0.tar.gz"),
        ("octo-org/sampleproject", "repository", "octo-org/sampleproject"),
        ("group/sub/project", "repository", "group/sub/project"),
        ("Sample_Project", "project", "sample-project"),
        ("a.b--c", "project", "a-b-c"),
        ("x", "project", "x"),
    ],
)
def test_classify(query, kind, value):
    assert classify(query) == SearchTarget(kind, value)


@pytest.mark.parametrize("query", ["", "   ", "two words", "-leading", "trailing-", "a" * 301, "a\x00b", "<script>",
                                   "0123", "a/b c", "99999999999999999999"])
def test_classify_refuses_what_names_nothing(query):
    target = classify(query)
    assert target.kind == "invalid" and target.value
    assert search_location(target) is None


def test_search_locations():
    assert search_location(SearchTarget("sha256", SHA)) == f"/file/{SHA}"
    assert search_location(SearchTarget("index", "7")) == "/entry/7"
    assert search_location(SearchTarget("project", "demo")) == "/project/demo"
    assert search_location(SearchTarget("repository", "octo-org/app")) == "/blast-radius?repository=octo-org%2Fapp"
    assert search_location(SearchTarget("filename", "x.whl")) is None  # looked up in the database


def test_forge_links_only_for_plain_names():
    assert views.forge_url("github", "octo-org/app") == "https://github.com/octo-org/app"
    assert views.forge_url("gitlab", "group/sub/p") == "https://gitlab.com/group/sub/p"
    assert views.forge_url("google", "octo-org/app") is None
    assert views.forge_url("github", None) is None
    for hostile in ("javascript:alert(1)", "../../evil", "a/b?x=1", "a b/c", "//evil.example/x"):
        assert views.forge_url("github", hostile) is None, hostile
    assert views.commit_url("github", "o/r", "a" * 40) == "https://github.com/o/r/commit/" + "a" * 40
    assert views.commit_url("gitlab", "g/p", "abc1234") == "https://gitlab.com/g/p/-/commit/abc1234"
    assert views.commit_url("github", "o/r", "not-a-sha") is None


def test_human_age():
    assert views.human_age(5) == "5 s"
    assert views.human_age(61) == "1 min"
    assert views.human_age(7200) == "2 h"
    assert views.human_age(3 * 86400 + 5) == "3 d"
    assert views.human_age(-3).startswith("in the future")


def test_chart_window_and_bars():
    assert views.chart_window(None, None) == (0, 60)
    start, width = views.chart_window(1000, 1000 + 2999, 30)
    assert (start, width) == (1000, 100)
    assert views.chart_window(1000, 1010, 30) == (1000, 2)  # at least a minute in all
    chart = views.bucket_chart(start, width, 30, {"exchanges": {0: 4, 29: 2}, "uploads": {0: 1}})
    assert chart.maximum == 4 and not chart.empty
    assert chart.totals == (("exchanges", 6), ("uploads", 1))
    exchanges = dict(chart.series)["exchanges"]
    uploads = dict(chart.series)["uploads"]
    assert len(exchanges) == len(uploads) == 30
    assert exchanges[0].height == chart.height - 20 and exchanges[29].height == (chart.height - 20) / 2
    assert exchanges[1].height == 0 and uploads[0].height == (chart.height - 20) / 4
    assert exchanges[0].y + exchanges[0].height == chart.height  # bars stand on the axis
    assert uploads[0].x > exchanges[0].x  # side by side
    assert exchanges[0].label.startswith("4 exchanges from 1970-01-01T00:16:40Z")
    assert views.bucket_chart(0, 60, 30, {"exchanges": {}, "uploads": {}}).empty


def test_timeline_places_each_upload_by_time_and_project():
    items = [
        {"time": "2026-09-21T00:00:00Z", "index": 3, "project": "a", "version": "1", "filename": "a-1.whl"},
        {"time": "2026-09-21T01:00:00Z", "index": 9, "project": "b", "version": "2", "filename": "b-2.whl"},
        {"time": "2026-09-21T00:30:00Z", "index": 5, "project": "a", "version": "1.1", "filename": "a-1.1.whl"},
    ]
    dots, first, last = views.timeline(items, ["a", "b"])
    assert (first, last) == ("2026-09-21T00:00:00Z", "2026-09-21T01:00:00Z")
    assert [d.href for d in dots] == ["/entry/3", "/entry/9", "/entry/5"]
    assert dots[0].x < dots[2].x < dots[1].x
    assert dots[0].y == dots[2].y != dots[1].y
    assert views.timeline([], []) == ([], None, None)


def _file(name, version, exchange, publisher, *, changed=False, incidents=()):
    return {"filename": name, "version": version, "sha256": name * 2, "size": 10, "uploaded_at": "t",
            "exchange": {"index": exchange, "leaf_hash": "00"} if exchange is not None else None,
            "publisher": publisher, "identity_continuity": {"changed": changed}, "incidents": list(incidents)}


def test_project_table_numbers_identities_and_lists_newest_first():
    ci = {"provider": "github", "repository": "Octo/App", "workflow": "release.yml", "environment": "pypi",
          "ref": "refs/tags/v1", "sha": "a" * 40}
    same_other_run = {**ci, "repository": "octo/app", "ref": "refs/tags/v2", "sha": "b" * 40}
    moved = {**ci, "repository": "evil/app"}
    releases = [
        {"version": "1.0", "files": [_file("a", "1.0", 1, ci), _file("b", "1.0", 1, ci)]},
        {"version": "2.0", "files": [_file("c", "2.0", 4, same_other_run)]},
        {"version": "3.0", "files": [_file("d", "3.0", 7, moved, changed=True, incidents=[{"id": "i"}]),
                                     _file("e", "3.0", None, None)]},
    ]
    legend, rows = views.project_table(releases)
    assert [(item["number"], item["publisher"]["repository"], item["files"]) for item in legend] == [
        (1, "evil/app", 1), (2, "octo/app", 3)]  # repositories compare case-insensitively
    assert [(r.version, r.filename, r.identity, r.exchange) for r in rows] == [
        ("3.0", "d", 1, 7), ("", "e", None, None), ("2.0", "c", 2, 4), ("1.0", "a", 2, 1), ("", "b", 2, 1)]
    assert rows[0].changed and rows[0].incident and not rows[2].changed
    assert rows[2].ref == "refs/tags/v2" and rows[2].commit == "b" * 12
    html = views.file_rows_html(rows)
    assert html.count("<tr") == 5 and html.count('<tr class="first">') == 3
    assert "⚠ identity" in html and "⚠ incident" in html and "<td>API token<td>" in html
    assert "attested" not in html
    attested = views.FileRow("1", "a.whl", "ab", 1, "t", 1, "r", "c", 3, False, False, True)
    assert "<small>attested</small>" in views.file_rows_html([attested])
    hostile = views.file_rows_html([views.FileRow("1<2", "<script>x</script>.whl", "ab", 1, "t", 1, "r&f", "c",
                                                  None, False, False, None)])
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile and "r&amp;f" in hostile and "1&lt;2" in hostile


def test_incidents_of_lists_each_once():
    files = [_file("c", "1", 4, None, incidents=[{"id": "inc1"}]),
             _file("d", "1", 4, None, incidents=[{"id": "inc1"}, {"id": "inc2"}])]
    assert views.incidents_of(files) == [{"id": "inc1"}, {"id": "inc2"}]


def test_blast_query_keeps_criteria_and_paging():
    assert views.blast_query({"repository": "o/r", "since": "2026-09-21T00:00:00Z"}, cursor=None) == (
        "repository=o%2Fr&since=2026-09-21T00%3A00%3A00Z")
    assert views.blast_query({"project": "p"}, cursor="abc", limit="100") == "project=p&cursor=abc&limit=100"
