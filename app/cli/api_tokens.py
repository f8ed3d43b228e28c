"""`pubtrail tokens create|list|revoke` and `pubtrail projects set`: a project's long-lived
API tokens and its settings, through the admin API (each change a log entry).

    pubtrail tokens create PROJECT --description TEXT   prints {id, token, ...}: the secret, once
    pubtrail tokens list PROJECT                        every token (no secrets)
    pubtrail tokens revoke PROJECT TOKEN_ID
    pubtrail projects set PROJECT --trusted-publishing-only {true,false}
"""

from __future__ import annotations

import argparse
import json

from app.cli.admin import DEFAULT_URL, AdminClient, default_url, segment


def register(commands, common: argparse.ArgumentParser) -> None:
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", default=argparse.SUPPRESS, help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    where = (
        f"through the admin API of the server at --url (default: PUBTRAIL_URL or {DEFAULT_URL}), with the admin "
        "token in PUBTRAIL_ADMIN_TOKEN. Prints the server's JSON answer."
    )
    tokens = commands.add_parser(
        "tokens", parents=[common], help="manage a project's long-lived API tokens (admin API)",
        description="Create, list and revoke a project's long-lived API tokens " + where,
    )
    tokens.add_argument("--url", default=default_url(), help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", parents=[common, url], help="create an API token (its secret is printed once)",
        description="Create an API token for PROJECT. twine uploads with it as the password of the user __token__.",
    )
    create.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    create.add_argument("--description", required=True, help="what the token is for, e.g. ci-legacy")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", parents=[common, url], help="list a project's API tokens (no secrets)")
    listing.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    listing.set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", parents=[common, url], help="revoke an API token by id")
    revoke.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id `tokens list` shows")
    revoke.set_defaults(run=run_revoke)

    projects = commands.add_parser(
        "projects", parents=[common], help="change a project's settings (admin API)",
        description="Change a project's settings " + where,
    )
    projects.add_argument("--url", default=default_url(), help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    project_actions = projects.add_subparsers(dest="action", required=True, metavar="ACTION")
    settings = project_actions.add_parser(
        "set", parents=[common, url], help="set a project's settings (logged)",
        description="--trusted-publishing-only true refuses API-token uploads to PROJECT (403).",
    )
    settings.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    settings.add_argument("--trusted-publishing-only", required=True, choices=("true", "false"))
    settings.set_defaults(run=run_set)


def _print(answer) -> int:
    print(json.dumps(answer, indent=2))
    return 0


def _tokens(args: argparse.Namespace) -> str:
    return f"/api/v1/projects/{segment(args.pypi_project)}/tokens"


def run_create(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("POST", _tokens(args), {"description": args.description}))


def run_list(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("GET", _tokens(args)))


def run_revoke(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("DELETE", f"{_tokens(args)}/{segment(args.token_id)}"))


def run_set(args: argparse.Namespace) -> int:
    body = {"trusted_publishing_only": args.trusted_publishing_only == "true"}
    return _print(AdminClient(args.url).request("PATCH", f"/api/v1/projects/{segment(args.pypi_project)}", body))
