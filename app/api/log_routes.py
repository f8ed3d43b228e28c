"""Auditor read API: checkpoints, tlog-tiles, entries and proofs.

The C2SP tlog-tiles read paths (`/checkpoint`, `/tile/...`) are in
`read_router`: the app serves them at the root and again under the path of
the log's origin (`pubtrail.example/log` -> `/log/checkpoint`), the URL
prefix tlog-tiles clients derive from the origin (see `origin_path`).
Caching follows the spec: every tile path is immutable (a partial tile at a
width never changes), `/checkpoint` is revalidated on every use (ETag).
Entry bundles are gzip-encoded when the client accepts gzip; hash tiles are
random hashes that do not compress and are always sent as they are.

Every route here is a read that runs in a worker thread (reading, hashing
and proving in Python). At most `PUBTRAIL_READ_CONCURRENCY` of them run at
once per process; the others wait their turn in the event loop, costing no
thread and no memory beyond their request. More reads at once than the
machine has cores would not answer faster: they would only take the GIL
from the event loop that token exchanges and uploads need, so that a read
surge slowed every write (scripts/read_surge.py measures both).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from app import tlog
from app.api import openapi
from app.api.deps import ReaderDep
from app.errors import BadRequest, NotFound
from app.services.witnessing import NotYetWitnessed



def read_slots(app: FastAPI) -> asyncio.Semaphore | None:
    """The app's read limiter for the running event loop (None: reads are not limited)."""
    loop = asyncio.get_running_loop()
    held = getattr(app.state, "read_slots", None)
    if held is None or held[0] is not loop:  # a semaphore belongs to one loop (tests run several)
        limit = app.state.runtime.settings.read_concurrency
        held = app.state.read_slots = (loop, asyncio.Semaphore(limit) if limit else None)
    return held[1]


class LimitedReadRoute(APIRoute):
    """A route whose requests wait for one of the app's read slots (`read_slots`) before running."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            slots = read_slots(request.app)
            if slots is None:
                return await handler(request)
            async with slots:
                return await handler(request)

        return limited


router = APIRouter(tags=["log"], route_class=LimitedReadRoute)
read_router = APIRouter(tags=["log"], route_class=LimitedReadRoute)

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
NOTE_TYPE = "text/plain; charset=utf-8"
BUNDLE_GZIP_LEVEL = 6

_CACHED = {"Cache-Control": openapi.header("how long the answer may be cached")}
_CHECKPOINT_HEADERS = {**_CACHED, "ETag": openapi.header("the checkpoint's entity tag, for If-None-Match")}


def origin_path(origin: str) -> str:
    """The URL path of a log origin (`pubtrail.example/log` -> `/log`; `pubtrail.example` -> ``)."""
    _host, _, path = origin.partition("/")
    path = path.strip("/")
    return f"/{path}" if path else ""


@read_router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="Latest signed checkpoint (C2SP)",
    description="Also served under the origin's path (e.g. `/log/checkpoint` for origin `host/log`). "
    "`If-None-Match` with the ETag answers 304 while the checkpoint is unchanged.",
    responses={
        200: openapi.content(openapi.TEXT, "the checkpoint as a C2SP signed note", headers=_CHECKPOINT_HEADERS),
        304: {"description": "the checkpoint is still the one of the ETag given", "headers": _CHECKPOINT_HEADERS},
    },
)
def checkpoint(request: Request, reader: ReaderDep) -> Response:
    witnessing = getattr(request.app.state.runtime, "witnessing", None)
    if witnessing is None:
        return note_response(request, reader.latest().note)
    # with PUBTRAIL_WITNESSES: the newest checkpoint that has the cosignatures the policy requires
    served = witnessing.witnessed()
    if served is None:
        raise NotYetWitnessed(f"no checkpoint has {witnessing.required} witness cosignatures yet")
    return note_response(request, served)


def note_response(request: Request, note: str) -> Response:
    """A checkpoint note with its ETag, revalidated on every use; 304 when If-None-Match names it."""
    etag = '"' + hashlib.sha256(note.encode("utf-8")).hexdigest()[:32] + '"'
    headers = {"Cache-Control": REVALIDATE, "ETag": etag}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(note, media_type=NOTE_TYPE, headers=headers)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison against each listed tag, or `*`."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether Accept-Encoding allows gzip (listed, or `*`, with a non-zero q)."""
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


@read_router.get(
    "/tile/{tile_path:path}",
    summary="tlog-tiles hash tile or entry bundle",
    description="`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, as C2SP tlog-tiles, also served "
    "under the origin's path. Every tile path is immutable (a partial tile at a width never changes). "
    "Entry bundles are gzip-encoded (`Content-Encoding: gzip`) when `Accept-Encoding` allows it. "
    "404 until the log reaches a tile, and for any percent-encoded path: each tile has exactly one URL.",
    response_class=Response,
    responses={
        200: openapi.content(openapi.OCTET_STREAM, "the tile or entry bundle", schema={"type": "string", "format": "binary"},
                             headers=_CACHED),
        **openapi.errors({404: "not a tile path, a percent-encoded one, or beyond the log's size"}),
        **openapi.INTEGRITY_FAILURE,
    },
)
def tile(tile_path: str, request: Request, reader: ReaderDep) -> Response:
    # Tile paths are plain ASCII; `%2F` would otherwise decode into a second
    # URL for the same tile (caches and the strict-path promise care).
    if b"%" in request.scope.get("raw_path", b""):
        raise NotFound("not a tile path: tile paths are never percent-encoded")
    try:
        parsed = tlog.parse_tile_path("tile/" + tile_path)
    except tlog.TilePathError as exc:
        raise NotFound(f"not a tile path: {exc}") from exc
    headers = {"Cache-Control": IMMUTABLE}
    if not parsed.is_entries:
        data = reader.tile(parsed.level, parsed.index, parsed.width)
        return Response(data, media_type="application/octet-stream", headers=headers)
    data = reader.entry_bundle(parsed.index, parsed.width)
    headers["Vary"] = "Accept-Encoding"
    if _accepts_gzip(request.headers.get("accept-encoding")):
        data = gzip.compress(data, compresslevel=BUNDLE_GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type="application/octet-stream", headers=headers)


router.include_router(read_router)


@router.get("/api/v1/log", summary="The log's origin, size, root, checkpoint and verifier key")
def log_info(reader: ReaderDep) -> dict:
    latest = reader.latest()
    return {
        "origin": reader.origin,
        "size": latest.size,
        "root_hash": latest.root_hash.hex(),
        "checkpoint": latest.note,
        "verifier_key": reader.verifier_key,
    }


@router.get(
    "/api/v1/log/entries/{index}",
    summary="One entry with its inclusion proof at the latest size",
    description="`tlog_proof` is the same proof and checkpoint as C2SP tlog-proof text, "
    "ready for `pubtrail verify --key <verifier key> <file> --entry <entry bytes>`.",
    responses={
        **openapi.BAD_PARAMETERS,
        **openapi.errors({404: "no entry at that index yet"}),
        **openapi.INTEGRITY_FAILURE,
    },
)
def log_entry(index: int, reader: ReaderDep) -> dict:
    proven, latest = reader.entry(index)
    return {
        **proven.to_json(),
        "checkpoint": latest.note,
        "tlog_proof": tlog.TlogProof(
            index=proven.stored.index, hashes=proven.proof.hashes, checkpoint=latest.note, extra=None
        ).to_text(),
    }


@router.get(
    "/api/v1/log/proof/inclusion",
    summary="Inclusion proof by index or by leaf hash",
    responses=openapi.errors(
        {
            400: "not exactly one of index and leaf_hash, or a value malformed or out of range",
            404: "no entry with that leaf hash in the tree of that size",
        }
    ),
)
def inclusion_proof(
    reader: ReaderDep,
    index: int | None = Query(None, description="the entry's index"),
    leaf_hash: str | None = Query(None, description="the entry's leaf hash, hex"),
    tree_size: int | None = Query(None, description="defaults to the latest size"),
) -> dict:
    if (index is None) == (leaf_hash is None):
        raise BadRequest("give exactly one of index and leaf_hash")
    if leaf_hash is not None:
        try:
            raw = bytes.fromhex(leaf_hash)
        except ValueError as exc:
            raise BadRequest("leaf_hash must be hex") from exc
        return reader.inclusion_by_hash(raw, tree_size).to_json()
    return reader.inclusion(index, tree_size).to_json()


@router.get(
    "/api/v1/log/proof/consistency",
    summary="Consistency proof between two sizes",
    responses=openapi.errors(
        {400: "a size missing, malformed, below 1, beyond the log, or first above second"}
    ),
)
def consistency_proof(
    reader: ReaderDep,
    first: int = Query(..., description="the older size, at least 1"),
    second: int | None = Query(None, description="the newer size; defaults to the latest"),
) -> dict:
    if first == 0:
        # RFC 9162 2.1.4 defines proofs between non-empty trees only; strict clients refuse size 0
        raise BadRequest("first must be at least 1: there is no consistency proof from the empty tree")
    return reader.consistency(first, second).to_json()


@router.get(
    "/api/v1/log/checkpoints/{size}",
    summary="The checkpoint signed at a size, if one was",
    response_class=PlainTextResponse,
    responses={
        200: openapi.content(openapi.TEXT, "the checkpoint as a C2SP signed note", headers=_CACHED),
        **openapi.BAD_PARAMETERS,
        **openapi.errors({404: "no checkpoint was signed at that size"}),
    },
)
def checkpoint_at(size: int, reader: ReaderDep) -> Response:
    return Response(reader.checkpoint_at(size).note, media_type=NOTE_TYPE, headers={"Cache-Control": IMMUTABLE})
