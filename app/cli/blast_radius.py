"""`pubtrail blast-radius`: what an identity, key or token published, each item proven before it is shown.

Follows every page of `GET /api/v1/blast-radius`, verifies the whole answer
against the pinned key (app.clients.blast_radius) and prints it: a table by
default, `--json` the API's answer shape with all pages merged, `--csv` the
server's CSV after checking each row against the verified uploads.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli.errors import FAILED, USAGE, CliError
from app.cli.verify import DEFAULT_SERVER, default_server, verifier_of, witness_flags, witness_policy
from app.clients.blast_radius import CRITERIA, WINDOW, BlastRadius, fetch_csv, fetch_pages, verify_csv, verify_pages
from app.clients.errors import ClientError, Unreachable
from app.clients.http import DEFAULT_TIMEOUT, Server

_HELP = {
    "issuer": "OIDC issuer URL",
    "provider": "github, gitlab, google or activestate",
    "repository": "OWNER/REPO (case-insensitive)",
    "repository_owner_id": "the repository owner's numeric id",
    "workflow": "workflow file name, or a full workflow_ref (with '@')",
    "job_workflow_ref": "a reusable workflow shared by many repositories",
    "ref": "git ref, e.g. refs/tags/v1.0",
    "sha": "commit",
    "environment": "deployment environment",
    "actor": "who triggered the run",
    "publisher_id": "trusted publisher id",
    "kid": "an issuer signing key id",
    "token_id": "an upload token id, or a long-lived API token's id",
    "project": "an index project",
    "auth": "trusted_publishing or api_token: how the uploads were authorised",
    "since": "RFC 3339 time, inclusive",
    "until": "RFC 3339 time, exclusive",
}


def register(commands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "blast-radius", parents=[common], help="what an identity, key or token published (verified)",
        description="Ask --server what matches every criterion given (AND; at least one besides the window), "
        "follow every page, and verify the answer against the pinned key before showing any of it: all pages "
        "name the same checkpoint, signed by the key; each item's entry bytes hash to its leaf, decode, are "
        "proven at the checkpoint's size and say what the item says; each item matches the criteria; the "
        "totals count the items. The window selects exchanges by time; uploads made with their tokens belong "
        "to the answer whenever they happened. Prints a table grouped by project and version; --json the API's "
        "answer shape with all pages merged; --csv the server's CSV, each row checked against the verified "
        "uploads first. Exit status 1 when the answer does not verify (the message names the check).",
    )
    parser.add_argument("--server", default=default_server(), metavar="URL",
                        help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_SERVER})")
    parser.add_argument("--key", metavar="VERIFIER_KEY", help="the log's verifier key string (pin it out of band)")
    parser.add_argument("--mirror", metavar="DIR", help="answer from the verified local mirror that "
                        "`pubtrail monitor --state DIR` keeps, instead of asking a server (--key optional)")
    criteria = parser.add_argument_group("criteria (combined with AND)")
    for name in CRITERIA:
        criteria.add_argument("--" + name.replace("_", "-"), dest=f"criterion_{name}", metavar="TIME" if name in WINDOW else "VALUE",
                              help=_HELP[name])
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the API's answer shape (all pages merged)")
    output.add_argument("--csv", action="store_true", help="print the server's CSV of the uploads (rows verified)")
    parser.add_argument("--limit", type=int, metavar="N", help="items per page asked of the server (1-1000; every page is fetched)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"connect and read timeout per request (default {DEFAULT_TIMEOUT:g})")
    witness_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    criteria = {name: value for name in CRITERIA if (value := getattr(args, f"criterion_{name}")) is not None}
    if not any(name not in WINDOW for name in criteria):
        raise CliError("name at least one criterion besides --since/--until (e.g. --repository OWNER/REPO)", USAGE)
    if args.mirror is not None:
        from app.cli.monitor import mirror_blast_radius

        result, text = mirror_blast_radius(args.mirror, args.key, criteria, csv=args.csv)
        return _print(args, result, text)
    if args.key is None:
        raise CliError("the following arguments are required: --key (or answer from a local --mirror)", USAGE)
    verifier = verifier_of(args.key)
    policy = witness_policy(args)
    if args.limit is not None and not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000", USAGE)
    try:
        server = Server(args.server, timeout=args.timeout)
    except Unreachable as exc:
        raise CliError(f"--server: {exc.detail}", USAGE) from exc
    try:
        with server:
            text = fetch_csv(server, criteria) if args.csv else None
            result = verify_pages(fetch_pages(server, criteria, limit=args.limit), verifier, asked=criteria)
            if policy is not None:
                indexes = [v.index for _, v in result.exchanges] + [v.index for _, v in result.uploads]
                policy.vouch(server, verifier, result.checkpoint, indexes)
            if text is not None:
                verify_csv(text, result)
    except Unreachable as exc:
        raise CliError(f"{exc} (is pubtrail serve running there? set --server or PUBTRAIL_URL)", FAILED) from exc
    except ClientError as exc:
        raise CliError(f"FAILED: {exc}", FAILED) from exc
    return _print(args, result, text)


def _print(args: argparse.Namespace, result: BlastRadius, text: str | None) -> int:
    if text is not None:
        sys.stdout.write(text)
    elif args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        show(result)
    return 0


def show(result: BlastRadius) -> None:
    """Tables of the verified answer: uploads grouped by project and version, then exchanges, then totals."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 200)
    exchanges = {v.index: item for item, v in result.exchanges}
    criteria = ", ".join(f"{k}={v}" for k, v in result.criteria.items())
    console.print(
        f"Blast radius of {criteria}: verified at size {result.checkpoint.size} of {result.checkpoint.origin}",
        markup=False,
    )

    uploads = Table(title="Uploads", title_justify="left")
    for column in ("project", "version", "file", "uploaded", "entry", "repository", "workflow", "ref", "token"):
        uploads.add_column(column)
    ordered = sorted(result.uploads, key=lambda pair: (pair[1].entry.project, pair[1].entry.version, pair[1].index))  # type: ignore[attr-defined]
    last = None
    for item, verified in ordered:
        upload = verified.entry
        group = (upload.project, upload.version)  # type: ignore[attr-defined]
        if last is not None and group != last:
            uploads.add_section()
        who = upload.publisher or {}  # type: ignore[attr-defined]
        state = exchanges.get(upload.exchange_index, {}).get("token_state", "")  # type: ignore[attr-defined]
        api = upload.auth == "api_token"  # type: ignore[attr-defined]
        uploads.add_row(
            *(("", "") if group == last else group),
            upload.filename, upload.time, str(verified.index),  # type: ignore[attr-defined]
            "(API token)" if api else _text(who.get("repository")), _text(who.get("workflow")), _text(who.get("ref")),
            f"{'API token ' if api else ''}{upload.token_id} {state}".strip(),  # type: ignore[attr-defined]
        )
        last = group
    console.print(uploads)

    table = Table(title="Exchanges (tokens minted)", title_justify="left")
    for column in ("entry", "time", "repository", "workflow", "ref", "environment", "token", "expires", "state"):
        table.add_column(column)
    for item, verified in result.exchanges:
        table.add_row(
            str(verified.index), item.get("time", ""), _text(item.get("repository")), _text(item.get("workflow")),
            _text(item.get("ref")), _text(item.get("environment")), _text(item.get("token_id")),
            _text(item.get("token_expires")), _text(item.get("token_state")),
        )
    console.print(table)
    totals = result.totals
    console.print(
        "Totals: " + ", ".join(f"{totals.get(name, '?')} {name.replace('_', ' ')}" for name in
                               ("exchanges", "uploads", "projects", "releases", "tokens_valid")),
        markup=False,
    )


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)
