"""GET /api/v1/blast-radius against ground truth the test computes from what it logged itself."""

from __future__ import annotations

import csv
import io

import pytest

from app.clients.blast_radius import verify_pages
from app.entries import rfc3339
from app.tlog import note
from tests.e2e.blast_corpus import (
    KIDS,
    TOKEN_LIFETIME,
    WINDOW_LENGTH,
    WINDOWS,
    Corpus,
    build_corpus,
    expected,
    mint,
    upload,
)

PATH = "/api/v1/blast-radius"


@pytest.fixture
def corpus_service(make_service, tmp_path):
    service = make_service(upload_token_lifetime=TOKEN_LIFETIME)
    corpus = build_corpus(service, tmp_path)
    return service, corpus


def all_pages(service, criteria: dict[str, str], limit: int) -> list[dict]:
    pages, params = [], {**criteria, "limit": limit}
    while True:
        response = service.client.get(PATH, params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if pages[-1]["next_cursor"] is None:
            return pages
        params["cursor"] = pages[-1]["next_cursor"]


def check(service, corpus: Corpus, criteria: dict[str, str], limit: int = 7) -> dict:
    pages = all_pages(service, criteria, limit)
    size = pages[0]["tree_size"]
    want_exchanges, want_uploads = expected(corpus, criteria, below=size)
    got_exchanges = [i["index"] for p in pages for i in p["exchanges"]]
    got_uploads = [i["index"] for p in pages for i in p["uploads"]]
    assert got_exchanges == want_exchanges, criteria
    assert got_uploads == want_uploads, criteria
    totals = pages[0]["totals"]
    uploads = [corpus.uploads[i] for i in want_uploads]
    assert totals["exchanges"] == len(want_exchanges)
    assert totals["uploads"] == len(want_uploads)
    assert totals["projects"] == len({u.project for u in uploads})
    assert totals["releases"] == len({(u.project, u.version) for u in uploads})
    now = int(service.clock())
    assert totals["tokens_valid"] == sum(corpus.exchanges[i].expires > now for i in want_exchanges)
    # every item proven against the signed checkpoint with the log's key alone (the client's checks)
    verifier = note.Verifier(service.client.get("/api/v1/log").json()["verifier_key"])
    verify_pages(pages, verifier, asked=criteria)
    return pages[0]


def window(n: int) -> dict[str, str]:
    return {"since": rfc3339(WINDOWS[n]), "until": rfc3339(WINDOWS[n] + WINDOW_LENGTH)}


def test_answers_match_ground_truth(corpus_service):
    service, corpus = corpus_service
    assert len(corpus.exchanges) >= 80 and len(corpus.uploads) >= 80
    service.clock.value = WINDOWS[0] + TOKEN_LIFETIME + WINDOW_LENGTH  # window 0's tokens have expired
    some = next(iter(corpus.exchanges.values()))
    carried_exchange, carried_upload = corpus.carried
    queries = [
        {"repository": "octo-org/app-1"},
        {"repository": "OCTO-ORG/App-1"},  # repository names match case-insensitively
        {"repository": "octo-org/app-0", "workflow": "nightly.yml"},
        {"workflow": "release.yml", "ref": "refs/heads/main"},
        {"environment": "testpypi", **window(1)},
        {"kid": KIDS[0]},
        {"kid": KIDS[1], **window(1)},
        {"workflow": some.workflow_ref.upper()},  # a full workflow_ref
        {"job_workflow_ref": some.workflow_ref},
        {"sha": some.sha},
        {"publisher_id": some.publisher_id, "since": rfc3339(WINDOWS[1])},
        {"repository": "other-org/lib-3", "project": "proj-3"},
        {"repository": "octo-org/app-2", "until": rfc3339(WINDOWS[1])},
        {"token_id": some.token_id},
        {"project": "Proj_1"},
        {"project": "proj-2", **window(2)},
        {"issuer": "https://token.actions.githubusercontent.com", **window(0)},
        {"repository": "nobody/nothing"},
    ]
    for criteria in queries:
        check(service, corpus, criteria)

    # the token minted inside window 1 and used in window 2 belongs to window 1's answer
    carried = corpus.exchanges[carried_exchange]
    check(service, corpus, {"repository": carried.repository, **window(1)})
    pages = all_pages(service, {"repository": carried.repository, **window(1)}, 1000)
    assert carried_exchange in [i["index"] for i in pages[0]["exchanges"]]
    assert carried_upload in [i["index"] for i in pages[0]["uploads"]]
    # ... but not to window 2's, whose window selects exchanges, not uploads
    pages = all_pages(service, {"repository": carried.repository, **window(2)}, 1000)
    assert carried_upload not in [i["index"] for i in pages[0]["uploads"]]
    # with only upload criteria the window applies to the uploads' time
    pages = all_pages(service, {"token_id": carried.token_id, **window(2)}, 1000)
    assert [i["index"] for i in pages[0]["uploads"]] == [carried_upload]
    assert [i["index"] for i in pages[0]["exchanges"]] == [carried_exchange]

    # token states at the answer's time: expired (window 0), valid, and revoked
    revoked = corpus.exchanges[max(corpus.exchanges)]
    assert service.client.post(f"/api/v1/tokens/{revoked.token_id}/revoke", headers=service.admin).status_code == 200
    answer = service.client.get(PATH, params={"token_id": revoked.token_id}).json()
    assert [i["token_state"] for i in answer["exchanges"]] == ["revoked"]
    assert answer["totals"]["tokens_valid"] == 0
    for n, state in ((0, "expired"), (2, "valid")):
        criteria = {"kid": KIDS[0] if n == 0 else KIDS[1], **window(n)}
        states = {i["index"]: i["token_state"] for i in service.client.get(
            PATH, params={**criteria, "limit": 1000}).json()["exchanges"]}
        assert set(states) == set(expected(corpus, criteria)[0])
        assert set(states.values()) == {state} | ({"revoked"} if revoked.index in states else set())


def test_pages_are_pinned_while_the_log_grows(corpus_service, tmp_path):
    service, corpus = corpus_service
    criteria = {"repository": "octo-org/app-1"}
    first = service.client.get(PATH, params={**criteria, "limit": 3}).json()
    size = first["tree_size"]
    # new matching publishes arrive between pages
    service.clock.value += 10
    newer = mint(service, corpus, "octo-org/app-1", "release.yml", "refs/tags/v1", "pypi", KIDS[0])
    upload(service, corpus, newer, tmp_path)
    pages, cursor = [first], first["next_cursor"]
    while cursor is not None:
        page = service.client.get(PATH, params={**criteria, "limit": 3, "cursor": cursor}).json()
        assert (page["tree_size"], page["checkpoint"]) == (size, first["checkpoint"])
        pages.append(page)
        cursor = page["next_cursor"]
    assert len(pages) > 2
    want_exchanges, want_uploads = expected(corpus, criteria, below=size)
    assert [i["index"] for p in pages for i in p["exchanges"]] == want_exchanges
    assert [i["index"] for p in pages for i in p["uploads"]] == want_uploads
    assert newer.index not in want_exchanges
    # a fresh query sees the new publish
    check(service, corpus, criteria)
    # a cursor only continues its own query
    response = service.client.get(PATH, params={"repository": "octo-org/app-2", "cursor": first["next_cursor"]})
    assert response.status_code == 400 and "other criteria" in response.json()["detail"]


def test_csv_has_one_row_per_matching_upload(corpus_service):
    service, corpus = corpus_service
    criteria = {"workflow": "release.yml"}
    response = service.client.get(PATH, params={**criteria, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    _, want = expected(corpus, criteria)
    assert [int(r["index"]) for r in rows] == want
    for row in rows:
        record = corpus.uploads[int(row["index"])]
        exchange = corpus.exchanges[record.exchange_index]
        assert (row["project"], row["version"], row["filename"], row["token_id"]) == (
            record.project, record.version, record.filename, record.token_id)
        assert (row["repository"], row["workflow"], row["ref"], row["sha"], row["environment"]) == (
            exchange.repository, exchange.workflow, exchange.ref, exchange.sha, exchange.environment or "")
        assert int(row["exchange_index"]) == record.exchange_index


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("", "at least one criterion"),
        ("since=2026-01-01T00:00:00Z", "at least one criterion"),
        ("repository=a/b&since=yesterday", "RFC 3339"),
        ("repository=a/b&since=2026-01-01T00:00:00", "RFC 3339"),
        ("repository=a/b&until=2026-13-01T00:00:00Z", "not a valid time"),
        ("repository=a/b&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "before until"),
        ("repo=a/b", "unknown criterion"),
        ("repository=a/b&repository=c/d", "more than once"),
        ("repository=", "non-empty"),
        ("repository=a/b&limit=0", "limit"),
        ("repository=a/b&limit=1001", "limit"),
        ("repository=a/b&limit=%C2%B2", "limit"),
        ("repository=a/b&cursor=zzz", "cursor"),
        ("repository=a/b&format=xml", "format"),
        ("repository=a/b&format=csv&limit=5", "limit and cursor"),
        ("project=not%20a%20name", "project"),
    ],
)
def test_bad_queries_are_400(service, query, fragment):
    response = service.client.get(f"{PATH}?{query}")
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_empty_log_answers_nothing(service):
    answer = service.client.get(PATH, params={"repository": "a/b"}).json()
    assert (answer["exchanges"], answer["uploads"], answer["next_cursor"]) == ([], [], None)
    assert answer["totals"]["exchanges"] == 0
