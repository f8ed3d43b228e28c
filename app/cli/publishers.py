"""`pubtrail publishers add|list|remove`: manage trusted publishers through the admin API.

The positional PROJECT is always the index (PyPI) project; provider flags
(`--project` of GitLab and ActiveState among them) go into the publisher's
`config` and never into the project. Each provider takes exactly the fields
of its publisher type (`app.oidc.publishers.PUBLISHER_TYPES`); a flag of
another provider is refused before any request is sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from app.cli.admin import DEFAULT_URL, AdminClient, default_url, segment
from app.cli.errors import USAGE, CliError
from app.oidc.publishers import PUBLISHER_TYPES

#: provider -> (field names in declaration order, required field names)
PROVIDER_FIELDS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    provider: (
        tuple(f.name for f in dataclasses.fields(cls)),
        frozenset(
            f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ),
    )
    for provider, cls in PUBLISHER_TYPES.items()
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def takes(provider: str) -> str:
    """The flags `provider` takes, optional ones in brackets."""
    names, required = PROVIDER_FIELDS[provider]
    return ", ".join(_flag(n) if n in required else f"[{_flag(n)}]" for n in names)


class _ConfigField(argparse.Action):
    """Collect a provider flag into ``namespace.config`` (a dict), never into a top-level attribute."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.config = {**(getattr(namespace, "config", None) or {}), self.dest: values}


def register(commands, common: argparse.ArgumentParser) -> None:
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", default=argparse.SUPPRESS, help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    group = commands.add_parser(
        "publishers", parents=[common], help="manage trusted publishers (admin API)",
        description="Manage a project's trusted publishers through the admin API of the server at --url "
        f"(default: PUBTRAIL_URL or {DEFAULT_URL}), with the admin token in PUBTRAIL_ADMIN_TOKEN. "
        "Prints the server's JSON answer.",
    )
    group.add_argument("--url", default=default_url(), help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_URL})")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", parents=[common, url], help="register a trusted publisher for a project",
        description="Register a trusted publisher for the index project PROJECT. Each provider takes its own "
        "flags: " + "; ".join(f"{p}: {takes(p)}" for p in sorted(PROVIDER_FIELDS)) + ".",
    )
    add.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project the publisher may upload to")
    add.add_argument("--provider", required=True, choices=sorted(PROVIDER_FIELDS))
    fields = add.add_argument_group("provider fields (each provider takes only its own)")
    for name in sorted({n for names, _ in PROVIDER_FIELDS.values() for n in names}):
        users = ", ".join(p for p in sorted(PROVIDER_FIELDS) if name in PROVIDER_FIELDS[p][0])
        fields.add_argument(
            _flag(name), dest=name, action=_ConfigField, default=argparse.SUPPRESS, metavar="VALUE", help=f"for {users}"
        )
    add.set_defaults(run=run_add, config=None)

    listing = actions.add_parser("list", parents=[common, url], help="list a project's trusted publishers")
    listing.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    listing.set_defaults(run=run_list)

    remove = actions.add_parser("remove", parents=[common, url], help="remove a trusted publisher by id")
    remove.add_argument("pypi_project", metavar="PROJECT", help="the index (PyPI) project")
    remove.add_argument("publisher_id", metavar="PUBLISHER_ID", help="the id `publishers list` shows")
    remove.set_defaults(run=run_remove)


def publisher_body(provider: str, config: dict[str, str] | None) -> dict[str, str]:
    """The admin API's request body; CliError when a flag belongs to another provider."""
    config = config or {}
    names, _required = PROVIDER_FIELDS[provider]
    foreign = [_flag(name) for name in config if name not in names]
    if foreign:
        raise CliError(
            f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not for a {provider} publisher; "
            f"{provider} takes {takes(provider)}",
            USAGE,
        )
    return {"provider": provider, **{name: config[name] for name in names if name in config}}


def _print(answer) -> int:
    print(json.dumps(answer, indent=2))
    return 0


def _path(args: argparse.Namespace) -> str:
    return f"/api/v1/projects/{segment(args.pypi_project)}/publishers"


def run_add(args: argparse.Namespace) -> int:
    body = publisher_body(args.provider, args.config)
    return _print(AdminClient(args.url).request("POST", _path(args), body))


def run_list(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("GET", _path(args)))


def run_remove(args: argparse.Namespace) -> int:
    return _print(AdminClient(args.url).request("DELETE", f"{_path(args)}/{segment(args.publisher_id)}"))
