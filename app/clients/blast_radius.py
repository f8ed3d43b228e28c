"""What an identity, key or token published: a blast-radius answer, verified against the pinned key.

:func:`fetch_pages` follows ``GET /api/v1/blast-radius`` page by page (its
``next_cursor``) and :func:`verify_pages` checks all pages together:

- every page names the same signed checkpoint and tree size, and that
  checkpoint is signed by the pinned key for the key's own origin;
- every item in ``exchanges`` and ``uploads`` is proven at that size
  (:func:`app.clients.items.verify_item`: re-hashed entry bytes, decoded
  entry, inclusion proof), appears once, and each of its plain fields equals
  what its entry says (identity fields recomputed with
  :func:`app.identity.identity_fields`);
- every item matches the answer's criteria, and the criteria are the ones
  asked for; each upload's token was minted by an exchange of the answer
  when the criteria select exchanges;
- the ``totals`` count exactly the items of all pages, and each page's
  ``projects`` groups that page's uploads.

What one answer cannot prove: that the server left nothing out (a monitor
that replays the log can), and the token states (``valid``, ``expired``,
``revoked``), which are server state at ``as_of``; only their agreement with
``token_expires`` is checked.

:func:`verify_csv` checks the server's CSV (``format=csv``) row by row
against the verified uploads.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime
from typing import Any

from app import tlog
from app.entries import API_TOKEN, ExchangeEntry, UploadEntry, parse_rfc3339
from app.identity import identity_fields, query_key
from app.tlog import note

from .errors import AnswerMismatchError, CheckpointPinError, LinkError, MalformedAnswer
from .http import Server
from .items import VerifiedItem, expect_equal, field, integer, open_checkpoint, verify_item

PATH = "/api/v1/blast-radius"

IDENTITY_CRITERIA = (
    "provider", "repository", "repository_owner_id", "workflow", "job_workflow_ref", "ref", "sha", "environment", "actor",
)
EXCHANGE_CRITERIA = ("issuer", "publisher_id", "kid", *IDENTITY_CRITERIA)
UPLOAD_CRITERIA = ("token_id", "project", "auth")
WINDOW = ("since", "until")
CRITERIA = (*EXCHANGE_CRITERIA, *UPLOAD_CRITERIA, *WINDOW)

#: item fields that are not statements about the entry (checked by verify_item, or server state)
_STRUCTURE = frozenset({"index", "leaf_hash", "entry_bytes", "proof", "token_state"})
TOKEN_STATES = ("valid", "expired", "revoked")
MAX_PAGES = 100_000


@dataclass
class BlastRadius:
    """All pages of one answer, verified: ``exchanges`` and ``uploads`` pair each item with its entry."""

    checkpoint: tlog.Checkpoint
    checkpoint_note: str
    criteria: dict[str, str]
    as_of: str | None
    exchanges: list[tuple[dict[str, Any], VerifiedItem]] = dataclass_field(default_factory=list)
    uploads: list[tuple[dict[str, Any], VerifiedItem]] = dataclass_field(default_factory=list)
    totals: dict[str, Any] = dataclass_field(default_factory=dict)

    def exchange_at(self, index: int) -> ExchangeEntry | None:
        for _item, verified in self.exchanges:
            if verified.index == index:
                assert isinstance(verified.entry, ExchangeEntry)
                return verified.entry
        return None

    def to_json(self) -> dict[str, Any]:
        """The API's answer shape with every page merged (``next_cursor`` null)."""
        uploads = [item for item, _ in self.uploads]
        return {
            "criteria": self.criteria,
            "checkpoint": self.checkpoint_note,
            "tree_size": self.checkpoint.size,
            "as_of": self.as_of,
            "exchanges": [item for item, _ in self.exchanges],
            "uploads": uploads,
            "projects": group_projects(uploads),
            "totals": self.totals,
            "next_cursor": None,
        }


def group_projects(uploads: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """project -> version -> filenames, in the order given (the API's ``projects`` grouping)."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for item in uploads:
        grouped.setdefault(item["project"], {}).setdefault(item["version"], []).append(item["filename"])
    return grouped


def fetch_pages(server: Server, criteria: Mapping[str, str], *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every page of the answer to ``criteria``, following ``next_cursor`` until it is null."""
    params: dict[str, Any] = dict(criteria)
    if limit is not None:
        params["limit"] = limit
    pages: list[dict[str, Any]] = []
    seen: set[str] = set()
    while True:
        page = server.get_json(PATH, params)
        if not isinstance(page, dict):
            raise MalformedAnswer(f"page {len(pages) + 1} of the blast radius is not a JSON object")
        pages.append(page)
        cursor = page.get("next_cursor")
        if cursor is None:
            return pages
        if not isinstance(cursor, str) or cursor in seen or len(pages) >= MAX_PAGES:
            raise MalformedAnswer(f"page {len(pages)} gives a next_cursor that does not move on: {cursor!r:.80}")
        seen.add(cursor)
        params["cursor"] = cursor


def fetch_and_verify(
    server: Server, verifier: note.Verifier, criteria: Mapping[str, str], *, limit: int | None = None
) -> BlastRadius:
    return verify_pages(fetch_pages(server, criteria, limit=limit), verifier, asked=criteria)


def verify_pages(
    pages: list[dict[str, Any]], verifier: note.Verifier, *, asked: Mapping[str, str] | None = None
) -> BlastRadius:
    """Verify every page of one answer (see the module docstring); ``asked`` is the query's criteria."""
    if not pages:
        raise MalformedAnswer("no blast-radius page to verify")
    first = pages[0]
    note_text = first.get("checkpoint")
    for number, page in enumerate(pages, 1):
        if page.get("checkpoint") != note_text or page.get("tree_size") != first.get("tree_size"):
            raise CheckpointPinError(
                f"page {number} is pinned to tree size {page.get('tree_size')!r}, "
                f"page 1 to {first.get('tree_size')!r}: the pages are not one answer"
            )
    checkpoint = open_checkpoint(note_text, verifier, "page 1")
    expect_equal("page 1", "tree_size", integer(first, "tree_size", "page 1"), checkpoint.size)
    criteria = field(first, "criteria", dict, "page 1")
    if any(page.get("criteria") != criteria for page in pages):
        raise AnswerMismatchError("the pages do not all answer the same criteria")
    _check_criteria(criteria, asked)
    as_of = first.get("as_of")
    result = BlastRadius(checkpoint, note_text, criteria, as_of if isinstance(as_of, str) else None)

    seen: set[int] = set()
    for number, page in enumerate(pages, 1):
        page_uploads = []
        for kind, items, out in (
            ("exchange", field(page, "exchanges", list, f"page {number}"), result.exchanges),
            ("upload", field(page, "uploads", list, f"page {number}"), result.uploads),
        ):
            for position, item in enumerate(items):
                where = f"page {number} {kind}s[{position}]"
                verified = verify_item(item, checkpoint, where, proof_field="proof", kind=kind)
                if verified.index in seen:
                    raise AnswerMismatchError(f"{where}: entry {verified.index} appears twice in the answer")
                seen.add(verified.index)
                _check_fields(item, verified, where, result.as_of)
                out.append((item, verified))
                if kind == "upload":
                    page_uploads.append(item)
        if "projects" in page:
            expect_equal(f"page {number}", "projects", page["projects"], group_projects(page_uploads))

    _check_matches(result)
    result.totals = field(first, "totals", dict, "page 1")
    _check_totals(result)
    return result


def exchange_fields(entry: ExchangeEntry) -> dict[str, Any]:
    """What an exchange entry says, under the names blast-radius items use."""
    identity = identity_fields(entry.issuer, entry.provider, entry.claims)
    return {
        **identity,
        "time": entry.time,
        "issuer": entry.issuer,
        "provider": entry.provider,
        "kid": entry.kid,
        "publisher_id": entry.publisher_id,
        "jti": entry.jti,
        "projects": entry.projects,
        "token_id": entry.token_id,
        "token_expires": entry.token_expires,
    }


def upload_fields(entry: UploadEntry) -> dict[str, Any]:
    """What an upload entry says, under the names blast-radius items and CSV columns use."""
    return {
        **{f"{name}": value for name, value in (entry.publisher or {}).items()},  # none for an API-token upload
        "time": entry.time,
        "project": entry.project,
        "version": entry.version,
        "filename": entry.filename,
        "packagetype": entry.packagetype,
        "size": entry.size,
        "sha256": entry.sha256,
        "blake2b_256": entry.blake2b_256,
        "requires_python": entry.requires_python,
        "token_id": entry.token_id,
        "exchange_index": entry.exchange_index,
        "publisher": entry.publisher,
        "auth": entry.auth,
    }


def _check_fields(item: dict[str, Any], verified: VerifiedItem, where: str, as_of: str | None) -> None:
    entry = verified.entry
    said = exchange_fields(entry) if isinstance(entry, ExchangeEntry) else upload_fields(entry)  # type: ignore[arg-type]
    for name, value in item.items():
        if name in _STRUCTURE:
            continue
        if name not in said:
            raise AnswerMismatchError(f"{where}.{name} is not something its entry says")
        expect_equal(where, name, value, said[name])
    if isinstance(entry, ExchangeEntry) and "token_state" in item:
        state = item["token_state"]
        if state not in TOKEN_STATES:
            raise MalformedAnswer(f"{where}.token_state {state!r} is not one of {', '.join(TOKEN_STATES)}")
        if as_of is not None:
            expired = parse_rfc3339(entry.token_expires) <= _seconds(as_of, "answer.as_of")
            if (state == "valid" and expired) or (state == "expired" and not expired):
                raise AnswerMismatchError(
                    f"{where}.token_state is {state!r}, but the token expires at {entry.token_expires} and the answer is as of {as_of}"
                )


def _seconds(text: str, where: str) -> int:
    """Unix seconds of an RFC 3339 time (fractions round up, as the server reads criteria)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text):
        raise MalformedAnswer(f"{where} is not an RFC 3339 time: {text!r:.80}")
    return math.ceil(datetime.fromisoformat(text.upper().replace("Z", "+00:00")).timestamp())


def normalize_project(name: str) -> str:
    """PEP 503 normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_criteria(criteria: dict[str, Any], asked: Mapping[str, str] | None) -> None:
    for name, value in criteria.items():
        if name not in CRITERIA or not isinstance(value, str):
            raise MalformedAnswer(f"answer.criteria.{name} is not a criterion this client knows")
    if asked is None:
        return
    if set(criteria) != set(asked):
        raise AnswerMismatchError(f"the answer's criteria {sorted(criteria)} are not the ones asked {sorted(asked)}")
    for name, value in asked.items():
        if name in WINDOW:
            same = _seconds(criteria[name], f"answer.criteria.{name}") == _seconds(value, f"--{name}")
        elif name == "project":
            same = criteria[name] == normalize_project(value)
        else:
            same = criteria[name] == value
        if not same:
            raise AnswerMismatchError(f"the answer's criterion {name} is {criteria[name]!r}, asked {value!r}")


def exchange_matches(criteria: Mapping[str, str], entry: ExchangeEntry) -> str | None:
    """None if ``entry`` matches every exchange criterion and the window, else the first one it fails."""
    said = exchange_fields(entry)
    for name, value in criteria.items():
        if name == "workflow" and "@" in value:
            ok = query_key("workflow_ref", said["workflow_ref"]) == query_key("workflow_ref", value)
        elif name in EXCHANGE_CRITERIA:
            ok = query_key(name, said[name]) == query_key(name, value)
        elif name == "token_id":
            ok = entry.token_id == value
        elif name == "project":
            ok = value in entry.projects
        else:
            continue
        if not ok:
            return name
    return _window(criteria, entry.time)


def _window(criteria: Mapping[str, str], time: str) -> str | None:
    at = parse_rfc3339(time)
    if "since" in criteria and at < _seconds(criteria["since"], "answer.criteria.since"):
        return "since"
    if "until" in criteria and at >= _seconds(criteria["until"], "answer.criteria.until"):
        return "until"
    return None


def _check_matches(result: BlastRadius) -> None:
    criteria = result.criteria
    selects_exchanges = any(name in EXCHANGE_CRITERIA for name in criteria)
    exchanges = {v.index: v.entry for _, v in result.exchanges}
    for position, (_item, verified) in enumerate(result.uploads):
        upload = verified.entry
        assert isinstance(upload, UploadEntry)
        where = f"uploads[{position}] (entry {verified.index})"
        for name in UPLOAD_CRITERIA:
            if name in criteria and getattr(upload, name) != criteria[name]:
                raise AnswerMismatchError(f"{where} does not match the criterion {name}={criteria[name]!r}")
        exchange = exchanges.get(upload.exchange_index) if upload.exchange_index is not None else None
        if selects_exchanges:
            if exchange is None:
                raise LinkError(f"{where} was authorised by exchange {upload.exchange_index}, which is not in the answer")
        elif (failed := _window(criteria, upload.time)) is not None:
            raise AnswerMismatchError(f"{where} at {upload.time} is outside the window ({failed})")
        if exchange is not None and exchange.token_id != upload.token_id:  # type: ignore[union-attr]
            raise LinkError(f"{where} used token {upload.token_id}, exchange {upload.exchange_index} minted another")
    uploads_behind = {v.entry.exchange_index for _, v in result.uploads}  # type: ignore[union-attr]
    for position, (_item, verified) in enumerate(result.exchanges):
        entry = verified.entry
        assert isinstance(entry, ExchangeEntry)
        where = f"exchanges[{position}] (entry {verified.index})"
        if criteria.get("auth") == "api_token":  # an exchange authorises trusted publishing only
            raise AnswerMismatchError(f"{where}: an exchange cannot match auth=api_token")
        if selects_exchanges:
            failed = exchange_matches(criteria, entry)
            if failed is not None:
                raise AnswerMismatchError(f"{where} does not match the criterion {failed}={criteria.get(failed)!r}")
        elif not (entry.token_id == criteria.get("token_id") or verified.index in uploads_behind):
            raise AnswerMismatchError(f"{where} neither minted the token asked for nor authorised an upload of the answer")


def _check_totals(result: BlastRadius) -> None:
    uploads = [v.entry for _, v in result.uploads]
    counted = {
        "exchanges": len(result.exchanges),
        "uploads": len(uploads),
        "projects": len({u.project for u in uploads}),  # type: ignore[union-attr]
        "releases": len({(u.project, u.version) for u in uploads}),  # type: ignore[union-attr]
    }
    for name, count in counted.items():
        expect_equal("answer.totals", name, result.totals.get(name), count)
    # tokens_valid: the exchanges' tokens whose item says valid, plus the live API tokens among
    # those that made the verified API-token uploads (whether one is revoked is server state)
    if not result.exchanges or any(isinstance(item.get("token_state"), str) for item, _ in result.exchanges):
        exchanges_valid = sum(item.get("token_state") == "valid" for item, _ in result.exchanges)
        api_tokens = len({u.token_id for u in uploads if u.auth == API_TOKEN})  # type: ignore[union-attr]
        said = result.totals.get("tokens_valid")
        if not isinstance(said, int) or isinstance(said, bool) or not exchanges_valid <= said <= exchanges_valid + api_tokens:
            raise AnswerMismatchError(
                f"answer.totals.tokens_valid is {said!r}, but the verified items allow {exchanges_valid} valid "
                f"upload tokens plus at most {api_tokens} API tokens"
            )


def fetch_csv(server: Server, criteria: Mapping[str, str]) -> str:
    """The server's CSV of the uploads matching ``criteria`` (``format=csv``), as text."""
    response = server.get(PATH, {**criteria, "format": "csv"}, accept="text/csv")
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type != "text/csv":
        raise MalformedAnswer(f"the CSV answer is {media_type or 'untyped'}, not text/csv")
    return response.text


# the CSV's publisher-identity columns: an entry whose publisher does not say one (an
# API-token upload has no publisher at all) has an empty cell there
CSV_PUBLISHER_COLUMNS = ("issuer", "provider", "repository", "workflow", "ref", "sha", "environment")


def verify_csv(text: str, result: BlastRadius) -> int:
    """Check every row of the server's CSV against the verified uploads; return the number of rows.

    Each row must name (by ``index``) an upload of the verified answer, and each
    of its columns must equal what that upload's entry says (a publisher column,
    `CSV_PUBLISHER_COLUMNS`, the entry's publisher does not say must be empty, as
    for every API-token upload); rows for uploads logged after the answer's
    checkpoint cannot be verified and fail too. Every verified upload at or below
    the CSV's newest row must have its row.
    """
    uploads = {v.index: upload_fields(v.entry) for _, v in result.uploads}  # type: ignore[arg-type]
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "index" not in reader.fieldnames:
        raise MalformedAnswer("the CSV has no header with an index column")
    rows = 0
    indexes: set[int] = set()
    for line, row in enumerate(reader, 2):
        where = f"CSV line {line}"
        try:
            index = int(row["index"])
        except (TypeError, ValueError) as exc:
            raise MalformedAnswer(f"{where}: index {row['index']!r} is not a number") from exc
        said = uploads.get(index)
        if said is None:
            raise AnswerMismatchError(f"{where}: entry {index} is not a verified upload of this blast radius")
        for name, value in row.items():
            if name == "index":
                continue
            if name not in said and name not in CSV_PUBLISHER_COLUMNS:
                raise AnswerMismatchError(f"{where}: column {name!r} is not something the upload entry says")
            logged = said.get(name)
            expected = "" if logged is None else str(logged)
            if value != expected:
                raise AnswerMismatchError(f"{where}: {name} is {value!r}, but upload entry {index} says {expected!r}")
        indexes.add(index)
        rows += 1
    newest = max(indexes, default=-1)
    missing = sorted(i for i in uploads if i <= newest and i not in indexes)
    if missing:
        raise AnswerMismatchError(f"the CSV leaves out verified uploads {missing[:10]}")
    return rows
