"""`pubtrail dev token`: a GitHub-shaped OIDC token from a development server's built-in issuer.

The issuer is named after the server that serves it (its public URL), so
the command asks that server (--url, default PUBTRAIL_URL) for the issuer's
name and key id, then signs with the issuer key in the shared data folder.
A token minted here is thus accepted by that server on whatever port it runs.
"""

from __future__ import annotations

import argparse
import time

from app.cli.admin import DEFAULT_URL, default_url, json_request
from app.cli.errors import FAILED, USAGE, CliError
from app.config import ConfigError, Settings
from app.oidc.dev_issuer import DEV_ISSUER_PATH


def register(commands, common: argparse.ArgumentParser) -> None:
    dev = commands.add_parser(
        "dev", parents=[common], help="development-mode helpers (PUBTRAIL_DEV=1)",
        description="Helpers for a server running in development mode (PUBTRAIL_DEV=1).",
    )
    actions = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    token = actions.add_parser(
        "token", parents=[common], help="print a GitHub-shaped OIDC token from the development issuer",
        description="Print an OIDC token of the development issuer of the server at --url, signed with the "
        "issuer key in PUBTRAIL_DATA_DIR (the server's data folder), for POST /_/oidc/mint-token.",
    )
    token.add_argument("--repository", required=True, metavar="OWNER/REPO", help="the GitHub repository")
    token.add_argument("--workflow", required=True, metavar="FILE", help="workflow file name, e.g. release.yml")
    token.add_argument("--repository-owner-id", default="1", metavar="ID", help="(default: %(default)s)")
    token.add_argument("--environment", metavar="NAME", help="deployment environment (default: none)")
    token.add_argument("--ref", default="refs/heads/main", help="(default: %(default)s)")
    token.add_argument("--sha", help="commit (default: random)")
    token.add_argument("--event-name", default="push", metavar="NAME", help="(default: %(default)s)")
    token.add_argument("--lifetime", type=int, default=300, metavar="SECONDS", help="(default: %(default)s)")
    token.add_argument(
        "--url", default=default_url(),
        help=f"the development server whose issuer names the token (default: PUBTRAIL_URL or {DEFAULT_URL})",
    )
    token.set_defaults(run=run_token)


def run_token(args: argparse.Namespace) -> int:
    from app.oidc.dev_issuer import KEY_FILE_NAME, DevIssuer, github_claims

    settings = Settings.from_env()
    if not settings.dev:
        raise ConfigError("the development issuer exists only with PUBTRAIL_DEV=1")
    if args.lifetime <= 0:
        raise CliError(f"--lifetime must be a positive number of seconds, got {args.lifetime}", USAGE)
    owner, _, repo = args.repository.partition("/")
    if not owner or not repo:
        raise CliError(f"--repository must be OWNER/REPO, got {args.repository!r}", USAGE)
    claims = github_claims(
        args.repository,
        args.repository_owner_id,
        args.workflow,
        ref=args.ref,
        sha=args.sha,
        environment=args.environment,
        event_name=args.event_name,
    )
    issuer_url, kids = _server_issuer(args.url.rstrip("/"))
    key_file = settings.data_dir / KEY_FILE_NAME
    try:
        issuer = DevIssuer(issuer_url, key_file.read_bytes())
    except OSError as exc:
        raise CliError(
            f"cannot read the development issuer key {key_file}: {exc.strerror or exc} "
            "(set PUBTRAIL_DATA_DIR to the server's data folder)", USAGE,
        ) from exc
    if issuer.kid not in kids:
        raise CliError(
            f"the server at {args.url} signs with another development issuer key than {key_file} "
            "(set PUBTRAIL_DATA_DIR to the server's data folder)", USAGE,
        )
    print(issuer.mint(claims, settings.audience, time.time(), lifetime=args.lifetime))
    return 0


def _server_issuer(url: str) -> tuple[str, set[str]]:
    """The issuer name and key ids the development server at ``url`` publishes."""
    try:
        discovery = json_request("GET", f"{url}{DEV_ISSUER_PATH}/.well-known/openid-configuration")
        jwks = json_request("GET", f"{url}{DEV_ISSUER_PATH}/.well-known/jwks.json")
        return discovery["issuer"], {key.get("kid") for key in jwks["keys"]}
    except CliError as exc:
        if exc.message.startswith("404"):
            raise CliError(f"the server at {url} is not in development mode (PUBTRAIL_DEV=1)", FAILED) from exc
        raise
    except (KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"the server at {url} published a malformed development issuer", FAILED) from exc
