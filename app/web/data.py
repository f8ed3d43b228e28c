"""The few reads only the explorer needs: chart counts, recent entries, a file by name.

Each is one or two indexed queries; everything else the pages show comes
from the provenance, blast-radius and log-reader services.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, text

from app.storage.tables import Exchange, LogEntry, ReleaseFile

_entry = LogEntry.__table__
_exchange = Exchange.__table__
_release = ReleaseFile.__table__

_RECENT = (
    select(_entry.c.index, _entry.c.kind, _entry.c.leaf_hash, _entry.c.data, _entry.c.logged_at)
    .where(_entry.c.index < bindparam("size"))
    .order_by(_entry.c.index.desc())
    .limit(bindparam("limit"))
)
_BY_FILENAME = (
    select(_release.c.sha256).where(_release.c.filename == bindparam("filename")).order_by(_release.c.log_index).limit(1)
)
_SPAN = {
    "exchanges": select(func.min(_exchange.c.at), func.max(_exchange.c.at)),
    "uploads": select(func.min(_release.c.uploaded_at), func.max(_release.c.uploaded_at)),
}
# integer division of bigints: the same bucket number on SQLite and PostgreSQL
_BUCKETS = {
    "exchanges": text(
        "SELECT (at - :start) / :width AS bucket, COUNT(*) FROM exchange "
        "WHERE at >= :start AND log_index < :size GROUP BY bucket"
    ),
    "uploads": text(
        "SELECT (uploaded_at - :start) / :width AS bucket, COUNT(*) FROM release_file "
        "WHERE uploaded_at >= :start AND log_index < :size GROUP BY bucket"
    ),
}


def recent_entries(engine: Engine, size: int, limit: int = 15) -> list[dict[str, Any]]:
    """The newest `limit` entries below `size`: index, kind, time, leaf hash and a one-line summary."""
    with engine.connect() as conn:
        rows = conn.execute(_RECENT, {"size": size, "limit": limit}).all()
    out = []
    for row in rows:
        try:
            entry = json.loads(bytes(row.data))
        except ValueError:
            entry = {}
        out.append(
            {
                "index": row.index,
                "kind": row.kind,
                "time": entry.get("time"),
                "leaf_hash": bytes(row.leaf_hash).hex(),
                "summary": summary(row.kind, entry),
            }
        )
    return out


def summary(kind: str, entry: dict[str, Any]) -> str:
    """One line saying what an entry records."""
    if kind == "upload":
        return f"{entry.get('project')} {entry.get('version')}: {entry.get('filename')}"
    if kind == "exchange":
        claims = entry.get("claims") or {}
        who = claims.get("repository") or claims.get("project_path") or claims.get("email") or entry.get("provider")
        return f"{entry.get('provider')} token for {who} (projects: {', '.join(entry.get('projects') or [])})"
    if kind == "publisher":
        return f"{entry.get('action')} {entry.get('provider')} publisher of {entry.get('project')} by {entry.get('actor')}"
    if kind == "revocation":
        return f"token {entry.get('token_id')} revoked by {entry.get('actor')}"
    if kind == "incident":
        return f"incident {entry.get('incident_id')}: {entry.get('description')}"
    return kind


def sha256_of_filename(engine: Engine, filename: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(_BY_FILENAME, {"filename": filename}).scalar()


def activity(engine: Engine, size: int, buckets: int = 30) -> tuple[int, int, dict[str, dict[int, int]]]:
    """(start, bucket width, series -> bucket -> count) of exchanges and uploads below `size`,
    `buckets` buckets spanning the first to the last of them."""
    from app.web.views import chart_window

    with engine.connect() as conn:
        spans = [conn.execute(query).one() for query in _SPAN.values()]
        firsts = [low for low, _ in spans if low is not None]
        lasts = [high for _, high in spans if high is not None]
        start, width = chart_window(min(firsts, default=None), max(lasts, default=None), buckets)
        counts: dict[str, dict[int, int]] = {}
        for name, query in _BUCKETS.items():
            rows = conn.execute(query, {"start": start, "width": width, "size": size}).all() if firsts else []
            counts[name] = {int(bucket): int(n) for bucket, n in rows if 0 <= bucket < buckets}
    return start, width, counts
