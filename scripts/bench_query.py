#!/usr/bin/env python3
"""Benchmark the questions the log answers: provenance, blast radius, incident coverage.

    .venv/bin/python scripts/bench_query.py [--entries 1000000] [--samples 200] [--postgres URL]
                                            [--skip-sqlite] [--skip-postgres] [--workdir DIR]

Builds a log of `--entries` entries through the sequencer's write path
(batches of 10,000 entries in one transaction each, tiles and a signed
checkpoint per batch, as scripts/bench_log.py does) with the projection rows
the services write for each entry in the same transaction (exchange, claims,
identity, token; release file, project; incident). The mix: a few thousand
GitHub repositories (weighted, so some publish far more than others), ~30%
exchanges and ~70% uploads (each exchange's token uploads two or three
files), refs half `refs/heads/main`, half tags, the issuer's signing key
rotating every month plus one short-lived key, over one year; ten incidents.

On PostgreSQL it then runs ANALYZE, as autovacuum would have on a log
grown over a year. Then it times, with a warm database, each query kind at the service level
(`BlastRadius.answer`: the first page of 100 items of each list with its
proofs, and the totals; `Provenance.of_file`; `Incidents.covering`) and
prints p50/p99 and the database size:

    provenance by sha256            a random file
    blast radius by repository      the repository whose uploads are nearest 1,000
    ... limit 1000                  the same, all ~1,000 uploads in one page
    blast radius by workflow_ref    that repository's workflow on refs/heads/main
    blast radius by kid             the short-lived key (~1,000 uploads)
    blast radius by kid, a month    a monthly key (tens of thousands of uploads)
    blast radius by token_id        a random token
    incidents covering              a random upload, against ten incidents

The PostgreSQL database named by --postgres (default: $PUBTRAIL_BENCH_DATABASE_URL,
else postgresql+psycopg://postgres@127.0.0.1:5432/pubtrail_bench) is emptied first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from app.entries import ExchangeEntry, IncidentEntry, UploadEntry, rfc3339  # noqa: E402
from app.oidc.publishers import identity_summary  # noqa: E402
from app.runtime import build_runtime  # noqa: E402
from app.sequencer import _Pending, _SyncFuture  # noqa: E402
from app.services.blast_radius import BlastRadius  # noqa: E402
from app.services.criteria import from_mapping  # noqa: E402
from app.services.exchange import claim_text, identity_row  # noqa: E402
from app.services.incidents import write_incident  # noqa: E402
from app.storage.tables import Exchange, ExchangeClaim, ExchangeIdentity, Project, ReleaseFile, UploadToken  # noqa: E402
from scripts.bench_log import DEFAULT_PG, make_settings, percentile, reset_postgres  # noqa: E402

ISSUER = "https://token.actions.githubusercontent.com"
START = 1_760_000_000  # 2025-10-09
SECONDS_PER_EXCHANGE = 30
MONTH = 30 * 86_400
SHORT_KEY = "short-lived-key"
BATCH = 10_000


def repositories(n: int, rng: random.Random) -> tuple[list[str], list[float]]:
    names = [f"org-{i % 700}/project-{i}" for i in range(n)]
    weights = [1.0 / (1 + (i % 97)) ** 0.9 for i in range(n)]  # a long tail
    rng.shuffle(weights)
    return names, weights


def claims_for(repository: str, n: int, ref: str) -> dict:
    owner = repository.split("/")[0]
    workflow_ref = f"{repository}/.github/workflows/release.yml@{ref}"
    return {
        "sub": f"repo:{repository}:environment:pypi",
        "repository": repository,
        "repository_id": str(100_000 + hash(repository) % 900_000),
        "repository_owner": owner,
        "repository_owner_id": str(10_000 + int(owner.split("-")[1])),
        "workflow_ref": workflow_ref,
        "job_workflow_ref": workflow_ref,
        "job_workflow_sha": f"{n:040x}",
        "ref": ref,
        "sha": f"{n:040x}",
        "environment": "pypi",
        "event_name": "push",
        "run_id": str(9_000_000_000 + n),
        "run_attempt": "1",
        "actor": f"maintainer-{n % 5000}",
    }


class Builder:
    """Generates entries and their projection rows; appends them in batches through the sequencer."""

    def __init__(self, runtime, rng: random.Random, repos: int):
        self.runtime = runtime
        self.sequencer = runtime.log.sequencer
        self.rng = rng
        self.names, self.weights = repositories(repos, rng)
        self.size = runtime.log.reader.latest().size
        self.now = START
        self.projects: set[str] = set()
        self.uploads_by_repo: dict[str, int] = {}
        self.sha256s: list[str] = []
        self.upload_indexes: list[int] = []
        self.tokens: list[str] = []
        self.short_key_window: tuple[int, int] | None = None
        self.counter = 0

    def kid(self) -> str:
        if self.short_key_window and self.short_key_window[0] <= self.now < self.short_key_window[1]:
            return SHORT_KEY
        return f"github-{(self.now - START) // MONTH:02d}"

    def build(self, entries: int) -> None:
        # the short-lived key covers about 430 exchanges (~1,000 uploads), a third of the way in
        middle = START + (entries * 3 // 10) // 3 * SECONDS_PER_EXCHANGE
        self.short_key_window = (middle, middle + 430 * SECONDS_PER_EXCHANGE)
        while self.size < entries:
            self.batch(min(BATCH, entries - self.size))

    def batch(self, count: int) -> None:
        items: list[tuple[str, bytes]] = []
        rows = {"exchange": [], "claims": [], "identity": [], "tokens": [], "releases": [], "projects": []}
        index = self.size
        while len(items) < count:
            uploads = self.rng.choice((2, 2, 3))
            if len(items) + 1 + uploads > count:
                uploads = count - len(items) - 1
            if uploads < 0:
                break
            self.exchange(index, uploads, items, rows)
            index += 1 + uploads
        first = self.size

        def projection(conn, at_index):  # all rows of the batch, in its transaction
            assert at_index == first
            for table, key in (
                (Exchange, "exchange"), (ExchangeClaim, "claims"), (ExchangeIdentity, "identity"),
                (UploadToken, "tokens"), (ReleaseFile, "releases"), (Project, "projects"),
            ):
                if rows[key]:
                    conn.execute(table.__table__.insert(), rows[key])

        self.append(items, projection)

    def append(self, items, projection) -> None:
        pending = [
            _Pending(kind, data, projection if n == 0 else None, int(self.now), _SyncFuture())
            for n, (kind, data) in enumerate(items)
        ]
        self.sequencer._commit_batch(pending)  # the group-commit write path, synchronously
        for p in pending:
            p.future.result()
        self.size += len(items)

    def exchange(self, index: int, uploads: int, items: list, rows: dict) -> None:
        self.counter += 1
        self.now += SECONDS_PER_EXCHANGE
        repository = self.rng.choices(self.names, self.weights)[0]
        project = repository.split("/")[1]
        ref = "refs/heads/main" if self.rng.random() < 0.5 else f"refs/tags/v{self.counter}"
        claims = claims_for(repository, self.counter, ref)
        token_id = secrets.token_hex(8)
        expires = self.now + 900
        entry = ExchangeEntry(
            time=rfc3339(self.now), issuer=ISSUER, provider="github", kid=self.kid(), claims=claims,
            jti=secrets.token_hex(8), publisher_id=f"{hash(repository) & 0xFFFFFFFFFFFF:016x}", projects=[project],
            token_id=token_id, token_expires=rfc3339(expires),
        )
        items.append(("exchange", entry.encode()))
        rows["exchange"].append(dict(
            log_index=index, at=self.now, issuer=ISSUER, provider="github", kid=entry.kid, jti=entry.jti,
            publisher_id=entry.publisher_id, token_id=token_id, token_expires_at=expires,
        ))
        rows["claims"].extend({"log_index": index, "name": k, "value": claim_text(v)} for k, v in claims.items())
        rows["identity"].append(identity_row(index, entry))
        rows["tokens"].append(dict(
            id=token_id, secret_hash=secrets.token_bytes(32), exchange_log_index=index,
            projects=json.dumps([project]), expires_at=expires,
        ))
        self.tokens.append(token_id)
        publisher = identity_summary(ISSUER, "github", claims)
        for n in range(uploads):
            at = self.now + 1 + n
            upload_index = index + 1 + n
            version = f"{self.counter}.{n}"
            filename = f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
            sha256 = secrets.token_hex(32)
            upload = UploadEntry(
                time=rfc3339(at), project=project, version=version, filename=filename, packagetype="bdist_wheel",
                size=20_000 + n, sha256=sha256, blake2b_256=secrets.token_hex(32), requires_python=">=3.9",
                token_id=token_id, exchange_index=index, publisher=publisher,
            )
            items.append(("upload", upload.encode()))
            rows["releases"].append(dict(
                filename=filename, project=project, version=version, packagetype="bdist_wheel", size=upload.size,
                sha256=sha256, blake2b_256=upload.blake2b_256, requires_python=">=3.9", uploaded_at=at,
                log_index=upload_index, token_id=token_id, exchange_log_index=index,
            ))
            if project not in self.projects:
                self.projects.add(project)
                rows["projects"].append(dict(name=project, created_at=at, created_log_index=upload_index))
            self.uploads_by_repo[repository] = self.uploads_by_repo.get(repository, 0) + 1
            self.sha256s.append(sha256)
            self.upload_indexes.append(upload_index)

    def incidents(self, count: int) -> None:
        """`count` incidents, each on one repository (a window of a month), through the same path."""
        for n in range(count):
            repository = self.rng.choice(self.names)
            since = START + n * MONTH
            entry = IncidentEntry(
                time=rfc3339(self.now), incident_id=f"inc-{n:04d}", description=f"bench incident {n}",
                criteria=from_mapping({"repository": repository, "since": rfc3339(since),
                                       "until": rfc3339(since + MONTH)}).to_json(),
                actor="bench", revoked_tokens=[],
            )
            index = self.size
            self.append([("incident", entry.encode())], lambda conn, i, e=entry: write_incident(conn, i, e))
            assert index < self.size


def timed(fn, samples: list) -> list[float]:
    out = []
    for sample in samples:
        began = time.perf_counter()
        fn(sample)
        out.append(time.perf_counter() - began)
    return out


def database_size(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                path = Path(url.split("///", 1)[1])
                total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            else:
                total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    finally:
        engine.dispose()
    return f"{total / 2**20:,.0f} MiB"


def run(label: str, url: str | None, args, workdir: Path) -> None:
    print(f"\n== {label} ==")
    if url is not None and not reset_postgres(url):
        return
    settings = make_settings(workdir, url, label.split()[0].lower())
    runtime = build_runtime(settings, clock=lambda: START + 400 * 86_400)
    try:
        rng = random.Random(args.seed)
        builder = Builder(runtime, rng, args.repositories)
        began = time.perf_counter()
        builder.build(args.entries)
        builder.incidents(10)
        built = time.perf_counter() - began
        if url is not None:
            # a database grown over a year has planner statistics (autovacuum's ANALYZE);
            # one loaded in minutes has none until autovacuum comes round, so gather them now
            with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"built {builder.size:,} entries ({len(builder.upload_indexes):,} uploads, "
              f"{len(builder.tokens):,} exchanges, {len(builder.names):,} repositories) in {built:.0f} s; "
              f"database {database_size(settings.effective_database_url)}")
        blast = BlastRadius(runtime.engine, runtime.log.reader, runtime.clock)
        repo = min(builder.uploads_by_repo, key=lambda r: abs(builder.uploads_by_repo[r] - 1000))
        month_key = "github-02"
        n = args.samples
        cases = [
            ("provenance by sha256", lambda s: runtime.provenance.of_file(s), rng.sample(builder.sha256s, n)),
            (f"blast radius by repository ({builder.uploads_by_repo[repo]} uploads)",
             lambda c: blast.answer(c), [from_mapping({"repository": repo})] * n),
            ("... the same, limit 1000",
             lambda c: blast.answer(c, limit=1000), [from_mapping({"repository": repo})] * max(1, n // 4)),
            ("blast radius by workflow_ref (refs/heads/main)",
             lambda c: blast.answer(c),
             [from_mapping({"workflow": f"{repo}/.github/workflows/release.yml@refs/heads/main"})] * n),
            ("blast radius by kid (short-lived key)", lambda c: blast.answer(c), [from_mapping({"kid": SHORT_KEY})] * n),
            ("blast radius by kid (a month's key)", lambda c: blast.answer(c),
             [from_mapping({"kid": month_key})] * max(1, n // 10)),
            ("blast radius by token_id", lambda c: blast.answer(c),
             [from_mapping({"token_id": t}) for t in rng.sample(builder.tokens, n)]),
            ("incidents covering (10 incidents)", lambda i: runtime.incidents.covering(i),
             rng.sample(builder.upload_indexes, n)),
        ]
        for name, fn, samples in cases:
            fn(samples[0])  # warm the caches once
            seconds = timed(fn, samples)
            extra = ""
            if name.startswith("blast") and isinstance(samples[0], object) and hasattr(samples[0], "values"):
                totals = blast.answer(samples[0])["totals"]
                extra = f"  (matches {totals['exchanges']:,} exchanges, {totals['uploads']:,} uploads)"
            print(f"{name:52s} p50 {percentile(seconds, 0.5) * 1000:8.2f} ms  "
                  f"p99 {percentile(seconds, 0.99) * 1000:8.2f} ms  ({len(samples)} queries){extra}")
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the log")
    parser.add_argument("--repositories", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=200, help="queries timed per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get("PUBTRAIL_BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--workdir", type=Path, help="where the SQLite files go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="pubtrail-bench-query-", dir=args.workdir) as workdir:
        if not args.skip_sqlite:
            run("SQLite (WAL, synchronous=FULL)", None, args, Path(workdir))
        if not args.skip_postgres:
            run("PostgreSQL", args.postgres, args, Path(workdir))


if __name__ == "__main__":
    main()
