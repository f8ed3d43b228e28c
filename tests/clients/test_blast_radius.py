"""Blast-radius verification against crafted pages: each tampering fails with its own check."""

from __future__ import annotations

import base64
import csv
import io

import httpx
import pytest

from app.clients import errors
from app.clients.blast_radius import fetch_and_verify, fetch_pages, verify_csv, verify_pages
from app.clients.http import Server
from tests.clients.forge import T0, Forge, transport

CRITERIA = {"repository": "octo-org/app"}


@pytest.fixture
def forge() -> Forge:
    """Entries 0-5: two exchanges of octo-org/app (4 uploads), one of another repository (entry 5 is its upload)."""
    forge = Forge()
    first = forge.exchange()
    forge.upload(first, "demo-1.0-py3-none-any.whl", b"a", version="1.0")
    forge.upload(first, "demo-1.0.tar.gz", b"b", version="1.0")
    other = forge.exchange(repository="someone/else", projects=("other",))
    second = forge.exchange(at=T0 + 5000, projects=("demo", "lib"))
    forge.upload(other, "other-2.0.tar.gz", b"c", version="2.0", project="other")
    forge.upload(second, "lib-0.1.tar.gz", b"d", version="0.1", project="lib", at=T0 + 5060)
    forge.upload(second, "demo-1.1.tar.gz", b"e", version="1.1", at=T0 + 5070)
    return forge


def pages(forge: Forge, per_page: int = 1000) -> list[dict]:
    return forge.blast_pages(CRITERIA, [0, 4], [1, 2, 6, 7], per_page=per_page)


def check(pages_: list[dict], forge: Forge, error: type[errors.ClientError], *words: str) -> str:
    with pytest.raises(error) as caught:
        verify_pages(pages_, forge.verifier, asked=CRITERIA)
    assert type(caught.value) is error, caught.value
    message = str(caught.value)
    assert message.startswith(error.check + ": ")
    for word in words:
        assert word in message, message
    return message


def test_every_page_is_followed_and_verified(forge):
    answer = pages(forge, per_page=1)
    routes = {"/api/v1/blast-radius": answer[0]}
    routes.update({f"/api/v1/blast-radius#page{n}": page for n, page in enumerate(answer[1:], 1)})
    result = fetch_and_verify(Server("http://pubtrail.test", transport=transport(routes)), forge.verifier, CRITERIA, limit=1)
    assert len(answer) == 4
    assert [v.index for _, v in result.exchanges] == [0, 4]
    assert [v.index for _, v in result.uploads] == [1, 2, 6, 7]
    merged = result.to_json()
    assert merged["projects"] == {"demo": {"1.0": ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"], "1.1": ["demo-1.1.tar.gz"]},
                                  "lib": {"0.1": ["lib-0.1.tar.gz"]}}
    assert merged["next_cursor"] is None and merged["totals"]["uploads"] == 4


def test_page_pinned_to_another_checkpoint(forge):
    answer = pages(forge, per_page=2)
    forge.exchange(at=T0 + 9000)  # the log grew; a later page answered at the new size
    answer[1] = forge.blast_pages(CRITERIA, [0, 4], [1, 2, 6, 7], per_page=2)[1]
    check(answer, forge, errors.CheckpointPinError, "page 2", "tree size 9", "page 1 to 8")


def test_wrong_key(forge):
    check(pages(forge), Forge(), errors.CheckpointSignatureError, "pinned key")


def test_tampered_entry_bytes(forge):
    answer = pages(forge)
    item = answer[0]["uploads"][0]
    item["entry_bytes"] = base64.b64encode(base64.b64decode(item["entry_bytes"]).replace(b"1.0", b"6.6")).decode()
    check(answer, forge, errors.EntryBytesError, "uploads[0]", "hash to leaf")


def test_proof_made_at_another_size(forge):
    answer = pages(forge)
    proof = forge.item(1, size=7)["inclusion_proof"]
    answer[0]["uploads"][0]["proof"] = {k: proof[k] for k in ("tree_size", "root_hash", "hashes")}
    check(answer, forge, errors.ProofSizeError, "tree size 7", "size 8")


def test_checkpoint_that_does_not_cover_an_item(forge):
    answer = pages(forge)
    answer[0]["checkpoint"], answer[0]["tree_size"] = forge.checkpoint(size=7), 7
    for item in answer[0]["exchanges"] + answer[0]["uploads"][:-1]:  # all but entry 7 proven at size 7
        proof = forge.item(item["index"], size=7)["inclusion_proof"]
        item["proof"] = {k: proof[k] for k in ("tree_size", "root_hash", "hashes")}
    check(answer, forge, errors.NotCoveredError, "entry 7", "size 7")


@pytest.mark.parametrize(
    "kind, name, value",
    [("exchanges", "repository", "octo-org/other"), ("exchanges", "token_expires", "2099-01-01T00:00:00Z"),
     ("uploads", "version", "9.9"), ("uploads", "exchange_index", 3), ("uploads", "sha256", "0" * 64)],
)
def test_plain_fields_that_disagree_with_the_entries(forge, kind, name, value):
    answer = pages(forge)
    answer[0][kind][0][name] = value
    check(answer, forge, errors.AnswerMismatchError, f"{kind}[0].{name}")


def test_item_that_does_not_match_the_criteria(forge):
    answer = forge.blast_pages(CRITERIA, [0, 3, 4], [1, 2, 6, 7])
    check(answer, forge, errors.AnswerMismatchError, "entry 3", "repository")


def test_upload_whose_exchange_is_not_in_the_answer(forge):
    answer = forge.blast_pages(CRITERIA, [0, 4], [1, 2, 5, 6, 7])
    check(answer, forge, errors.LinkError, "exchange 3")


def test_totals_must_count_the_items(forge):
    answer = pages(forge)
    answer[0]["totals"]["uploads"] = 3
    check(answer, forge, errors.AnswerMismatchError, "totals", "uploads")


def test_token_state_must_agree_with_the_expiry(forge):
    answer = pages(forge)
    answer[0]["exchanges"][0]["token_state"] = "valid"  # expired long before as_of
    check(answer, forge, errors.AnswerMismatchError, "token_state")


def test_criteria_must_be_the_ones_asked(forge):
    answer = forge.blast_pages({"repository": "octo-org/app", "ref": "refs/tags/v1.0.0"}, [0, 4], [1, 2, 6, 7])
    check(answer, forge, errors.AnswerMismatchError, "criteria")


def test_upload_only_criteria_apply_the_window_to_uploads(forge):
    asked = {"project": "lib", "since": "2026-09-21T15:00:00Z"}
    verify_pages(forge.blast_pages(asked, [4], [6]), forge.verifier, asked=asked)
    late = {"project": "demo", "until": "2026-09-21T14:00:00Z"}  # demo-1.1 was uploaded after until
    with pytest.raises(errors.AnswerMismatchError, match="outside the window"):
        verify_pages(forge.blast_pages(late, [0, 4], [1, 2, 7]), forge.verifier, asked=late)


def _csv(forge: Forge, rows: list[int]) -> str:
    import json

    out = io.StringIO()
    columns = ("index", "time", "project", "version", "filename", "sha256", "token_id", "exchange_index", "repository")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for index in rows:
        entry = json.loads(forge.entries[index])
        own = {"index": index, "repository": entry["publisher"]["repository"]}
        writer.writerow([own.get(c, entry.get(c)) for c in columns])
    return out.getvalue()


def test_csv_rows_are_checked_against_the_verified_uploads(forge):
    result = verify_pages(pages(forge), forge.verifier, asked=CRITERIA)
    assert verify_csv(_csv(forge, [1, 2, 6, 7]), result) == 4
    with pytest.raises(errors.AnswerMismatchError, match="repository is 'evil/app'"):
        verify_csv(_csv(forge, [1, 2, 6, 7]).replace("octo-org/app", "evil/app", 1), result)
    with pytest.raises(errors.AnswerMismatchError, match="not a verified upload"):
        verify_csv(_csv(forge, [1, 2, 5]), result)
    with pytest.raises(errors.AnswerMismatchError, match=r"leaves out verified uploads \[2\]"):
        verify_csv(_csv(forge, [1, 6]), result)


def test_cursor_that_does_not_move_on(forge):
    page = pages(forge)[0]
    page["next_cursor"] = "again"
    routes = {"/api/v1/blast-radius": page, "/api/v1/blast-radius#again": page}
    with pytest.raises(errors.MalformedAnswer, match="does not move on"):
        fetch_pages(Server("http://pubtrail.test", transport=transport(routes)), CRITERIA)


def test_refused_query_is_typed():
    def refuse(request):
        return httpx.Response(400, json={"detail": "since must be an RFC 3339 time"})

    with pytest.raises(errors.RefusedAnswer, match="400.*RFC 3339"):
        fetch_pages(Server("http://pubtrail.test", transport=httpx.MockTransport(refuse)), {"repository": "a/b"})
