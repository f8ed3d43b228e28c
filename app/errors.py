"""Errors the services raise; the API maps each to one HTTP status in one place.

    PubtrailError
     ├── BadRequest      400  the request's parameters cannot be answered as given
     ├── Unauthorized    401  no or wrong credentials
     ├── Forbidden       403  credentials fine, action not allowed
     ├── NotFound        404  nothing there (yet)
     └── Conflict        409  the request contradicts the current state

Each carries a message meant for the person reading the response.
"""

from __future__ import annotations


class PubtrailError(Exception):
    status_code = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(PubtrailError):
    status_code = 400


class Unauthorized(PubtrailError):
    status_code = 401


class Forbidden(PubtrailError):
    status_code = 403


class NotFound(PubtrailError):
    status_code = 404


class Conflict(PubtrailError):
    status_code = 409
