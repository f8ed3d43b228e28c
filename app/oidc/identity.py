"""The publisher identity behind an exchange: see :mod:`app.identity`.

The functions live in the pure module `app.identity` so that the clients,
which may not import server code, check answers with the same code the
server builds them with; this module re-exports them for server code.
"""

from app.identity import CASE_INSENSITIVE, FIELDS, identity_fields, query_key

__all__ = ["CASE_INSENSITIVE", "FIELDS", "identity_fields", "query_key"]
