"""`pubtrail incidents declare|list|show`: incident response through pubtrail's HTTP API.

`declare` is an admin request (PUBTRAIL_ADMIN_TOKEN): it logs an incident
whose criteria are the blast-radius flags given (`--repository`, `--kid`,
`--since`, ...), revokes every still-valid matching upload token unless
`--keep-tokens`, and with `--disable-publishers` removes the matching
trusted publishers. `list` and `show` read the public incident routes.
Each prints the server's JSON answer.
"""

from __future__ import annotations

import argparse
import json

from app.cli.admin import DEFAULT_URL, AdminClient, default_url, json_request, segment
from app.cli.errors import USAGE, CliError
from app.services.criteria import NAMES as CRITERIA

PATH = "/api/v1/incidents"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(commands, common: argparse.ArgumentParser) -> None:
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", default=argparse.SUPPRESS, help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    group = commands.add_parser(
        "incidents", parents=[common], help="declare and read incidents",
        description="Declare an incident through the admin API of the server at --url (admin token in "
        "PUBTRAIL_ADMIN_TOKEN), or list and show incidents (public). Prints the server's JSON answer.",
    )
    group.add_argument("--url", default=default_url(), help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    declare = actions.add_parser(
        "declare", parents=[common, url], help="log an incident, revoke its live tokens",
        description="Log an incident covering the blast radius of the criteria given (the flags of "
        "`pubtrail blast-radius`; at least one besides --since/--until). Every upload token minted by a "
        "matching exchange and still valid is revoked in the same transaction, unless --keep-tokens.",
    )
    declare.add_argument("--description", required=True, metavar="TEXT", help="what happened, for the log")
    criteria = declare.add_argument_group("criteria (combined with AND)")
    for name in CRITERIA:
        criteria.add_argument(_flag(name), dest=f"criterion_{name}", metavar="VALUE",
                              help="RFC 3339 time" if name in ("since", "until") else None)
    declare.add_argument("--keep-tokens", action="store_true", help="do not revoke the matching tokens")
    declare.add_argument("--disable-publishers", action="store_true",
                         help="also remove every trusted publisher that minted a matching token")
    declare.set_defaults(run=run_declare)

    listing = actions.add_parser("list", parents=[common, url], help="list incidents with their blast-radius totals")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", parents=[common, url], help="one incident with its current blast radius")
    show.add_argument("incident_id", metavar="ID", help="the id `incidents list` shows")
    show.add_argument("--limit", type=int, metavar="N", help="items per page of the blast radius (1-1000)")
    show.add_argument("--cursor", metavar="CURSOR", help="the previous page's next_cursor")
    show.set_defaults(run=run_show)


def declaration(args: argparse.Namespace) -> dict:
    """The POST body; CliError (usage) without a criterion."""
    criteria = {
        name: getattr(args, f"criterion_{name}") for name in CRITERIA if getattr(args, f"criterion_{name}") is not None
    }
    if not set(criteria) - {"since", "until"}:
        raise CliError("give at least one criterion besides --since/--until (e.g. --repository OWNER/REPO)", USAGE)
    return {
        "description": args.description,
        "criteria": criteria,
        "revoke_tokens": not args.keep_tokens,
        "disable_publishers": args.disable_publishers,
    }


def _print(answer) -> int:
    print(json.dumps(answer, indent=2))
    return 0


def run_declare(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("POST", PATH, declaration(args)))


def run_list(args: argparse.Namespace) -> int:
    return _print(json_request("GET", args.url.rstrip("/") + PATH))


def run_show(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("limit", args.limit), ("cursor", args.cursor)) if v is not None}
    return _print(json_request("GET", f"{args.url.rstrip('/')}{PATH}/{segment(args.incident_id)}", params=params))
