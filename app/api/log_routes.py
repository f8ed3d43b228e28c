"""Auditor read API: checkpoints, tlog-tiles, entries and proofs."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from app import tlog
from app.api import openapi
from app.api.deps import ReaderDep
from app.errors import BadRequest, NotFound

router = APIRouter(tags=["log"])

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"
NOTE_TYPE = "text/plain; charset=utf-8"

_CACHED = {"Cache-Control": openapi.header("how long the answer may be cached")}


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="Latest signed checkpoint (C2SP)",
    responses={200: openapi.content(openapi.TEXT, "the checkpoint as a C2SP signed note", headers=_CACHED)},
)
def checkpoint(reader: ReaderDep) -> Response:
    return Response(reader.latest().note, media_type=NOTE_TYPE, headers={"Cache-Control": "no-cache"})


@router.get(
    "/tile/{tile_path:path}",
    summary="tlog-tiles hash tile or entry bundle",
    description="`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, as C2SP tlog-tiles. "
    "Full tiles are immutable; partial ones are cached briefly. 404 until the log reaches a tile, "
    "and for any percent-encoded path: each tile has exactly one URL.",
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
    if parsed.is_entries:
        data = reader.entry_bundle(parsed.index, parsed.width)
    else:
        data = reader.tile(parsed.level, parsed.index, parsed.width)
    cache = IMMUTABLE if parsed.width == 256 else SHORT
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


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
    responses=openapi.errors({400: "a size missing, malformed, negative, beyond the log, or first above second"}),
)
def consistency_proof(
    reader: ReaderDep,
    first: int = Query(..., description="the older size"),
    second: int | None = Query(None, description="the newer size; defaults to the latest"),
) -> dict:
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
