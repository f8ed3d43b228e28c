"""Mapping of service errors to HTTP responses, in one place.

JSON routes answer `{"detail": "<message>"}` with the error's status. Request
validation failures (a non-numeric index, a missing parameter) are 400, not
FastAPI's default 422: the 422 status belongs to PyPI's mint-token errors.
"""

from __future__ import annotations

import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.errors import PubtrailError, StorageFull, storage_full


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def as_storage_full(exc: BaseException) -> StorageFull | None:
    """`exc` as the StorageFull refusal it means, or None when it is not a full disk."""
    if isinstance(exc, StorageFull):
        return exc
    return StorageFull() if storage_full(exc) else None


def retry_after(exc: PubtrailError) -> dict[str, str]:
    """The Retry-After header of a refusal that asks the client to come back, else nothing."""
    seconds = getattr(exc, "retry_after", None)
    return {"Retry-After": str(seconds)} if seconds else {}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PubtrailError)
    async def _pubtrail_error(_request: Request, exc: PubtrailError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else retry_after(exc)
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers or None)

    async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
        full = as_storage_full(exc)
        if full is None:
            raise exc  # a 500, as without this handler
        return await _pubtrail_error(request, full)

    # the driver's own errors too: the log's bulk entry insert runs on the driver's cursor
    for storage_error in (OSError, SQLAlchemyError, sqlite3.Error, psycopg.Error):
        app.add_exception_handler(storage_error, _storage_error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _describe(exc)}, status_code=400)
