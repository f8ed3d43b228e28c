"""FastAPI dependencies: the runtime and its parts, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.runtime import Runtime
from app.services.log_reader import LogReader


# async, so FastAPI calls them inline instead of hopping to a worker thread per request
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_reader(request: Request) -> LogReader:
    return request.app.state.runtime.log.reader


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ReaderDep = Annotated[LogReader, Depends(get_reader)]
