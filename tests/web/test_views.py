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


def test_files_grouped_by_the_exchange_behind_them():
    def file(name, exchange, incidents=()):
        return {"filename": name, "exchange": {"index": exchange, "leaf_hash": "00"}, "publisher": {"x": exchange},
                "identity_continuity": None, "incidents": list(incidents)}

    groups = views.file_groups([file("a", 1), file("b", 1), file("c", 4, [{"id": "inc1"}]), file("d", 1)])
    assert [[f["filename"] for f in g["files"]] for g in groups] == [["a", "b", "d"], ["c"]]
    assert [g["exchange"]["index"] for g in groups] == [1, 4]
    api_token = views.file_groups([{"filename": "e", "exchange": None, "publisher": None}])
    assert api_token[0]["exchange"] is None and api_token[0]["publisher"] is None
    assert views.incidents_of([file("c", 4, [{"id": "inc1"}]), file("d", 4, [{"id": "inc1"}, {"id": "inc2"}])]) == [
        {"id": "inc1"}, {"id": "inc2"}]


def test_blast_query_keeps_criteria_and_paging():
    assert views.blast_query({"repository": "o/r", "since": "2026-09-21T00:00:00Z"}, cursor=None) == (
        "repository=o%2Fr&since=2026-09-21T00%3A00%3A00Z")
    assert views.blast_query({"project": "p"}, cursor="abc", limit="100") == "project=p&cursor=abc&limit=100"
