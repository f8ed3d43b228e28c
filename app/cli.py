"""The `pubtrail` command.

    pubtrail serve [--host H] [--port P] [--workers N]
                                             run the service (settings from PUBTRAIL_* variables)
    pubtrail keygen --origin O [--out FILE]  create a log signing key, print its verifier key
    pubtrail verify --key VKEY PROOF [--entry FILE | --leaf-hash HEX]
                                             check a receipt (C2SP tlog-proof text) offline
    pubtrail audit                           rebuild the tree from every stored entry and compare
                                             every tile and checkpoint (exit 1 on any problem)
    pubtrail publishers add|list|remove ...  manage trusted publishers through the admin API
    pubtrail dev token --repository O/R --workflow F [...]
                                             print a GitHub-shaped token from the development issuer
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from app import tlog
from app.config import ConfigError, Settings
from app.keys import KeyFileError, write_new_key
from app.tlog import note

log = logging.getLogger("pubtrail")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pubtrail", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1,
        help="server processes sharing the port; they append through the database's write lock",
    )
    serve.set_defaults(func=_serve)

    keygen = commands.add_parser("keygen", help="create a log signing key")
    keygen.add_argument("--origin", required=True, help="the log's origin line, also the key name")
    keygen.add_argument("--out", type=Path, help="key file (default: PUBTRAIL_SIGNING_KEY_FILE or DATA_DIR/log-signing.key)")
    keygen.set_defaults(func=_keygen)

    verify = commands.add_parser("verify", help="verify a receipt offline against a pinned verifier key")
    verify.add_argument("--key", required=True, help="the log's verifier key string (pin it out of band)")
    verify.add_argument("proof", type=Path, help="file with C2SP tlog-proof text ('-' for stdin)")
    what = verify.add_mutually_exclusive_group(required=True)
    what.add_argument("--entry", type=Path, help="file with the exact entry bytes")
    what.add_argument("--leaf-hash", help="the entry's leaf hash, hex")
    verify.set_defaults(func=_verify)

    audit = commands.add_parser("audit", help="check every stored entry, tile and checkpoint of the log")
    audit.set_defaults(func=_audit)

    _add_publisher_commands(commands)
    _add_dev_commands(commands)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, KeyFileError) as exc:
        print(f"pubtrail: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.reason_phrase import ReasonH11Protocol
    from app.runtime import build_runtime

    settings = Settings.from_env()
    settings.check_secrets()
    if settings.dev:
        log.warning("=" * 72)
        log.warning("DEVELOPMENT MODE (PUBTRAIL_DEV=1): do not expose this server")
        log.warning("=" * 72)
    # Build once here: creates the schema and the log, checks integrity, and
    # fails with a clear message before any worker starts.
    runtime = build_runtime(settings)
    log.info("log %s, verifier key %s", settings.origin, runtime.log.verifier_key)
    options = dict(host=args.host, port=args.port, log_level="info", http=ReasonH11Protocol)
    if args.workers > 1:
        runtime.close()
        uvicorn.run("app.api.app:app_from_env", factory=True, workers=args.workers, **options)
    else:
        from app.api.app import create_app

        uvicorn.run(create_app(runtime, jobs=True), **options)
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Audit the configured database directly (no start-up check: a damaged
    log must still be auditable), holding the log's write lock meanwhile."""
    from app.keys import load_key
    from app.sequencer import Sequencer
    from app.services.log_audit import audit_sequencer
    from app.storage.db import make_engine
    from app.storage.log_store import LogStore

    settings = Settings.from_env()
    signer, verifier = load_key(settings.key_file)
    engine = make_engine(settings.effective_database_url)
    try:
        sequencer = Sequencer(LogStore(engine), signer, verifier, settings.origin)
        report = audit_sequencer(sequencer)
    finally:
        engine.dispose()
    print(report.summary())
    return 0 if report.ok else 1


def _keygen(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path = args.out or settings.key_file
    verifier = write_new_key(path, args.origin)
    print(f"wrote signing key to {path}", file=sys.stderr)
    print(verifier)
    return 0


def _verify(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.proof) == "-" else args.proof.read_text()
    try:
        verifier = note.Verifier(args.key)
        proof = tlog.TlogProof.parse(text)
        leaf = tlog.leaf_hash(args.entry.read_bytes()) if args.entry else bytes.fromhex(args.leaf_hash)
        checkpoint = proof.verify(leaf, [verifier], origin=verifier.name)
    except (tlog.TlogError, ValueError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"OK: entry {proof.index} is in {checkpoint.origin} at size {checkpoint.size}")
    return 0


PROVIDER_FIELDS = {
    "github": ("repository", "repository_owner_id", "workflow", "environment"),
    "gitlab": ("namespace", "project", "workflow_filepath", "environment", "namespace_id", "project_id"),
    "google": ("email", "sub"),
    "activestate": ("organization", "project", "actor_id"),
}


def _add_publisher_commands(commands) -> None:
    publishers = commands.add_parser("publishers", help="manage trusted publishers (admin API)")
    publishers.add_argument("--url", default=os.environ.get("PUBTRAIL_URL", "http://127.0.0.1:8000"))
    actions = publishers.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="register a trusted publisher for a project")
    add.add_argument("project")
    add.add_argument("--provider", required=True, choices=sorted(PROVIDER_FIELDS))
    for name in sorted({f for fields in PROVIDER_FIELDS.values() for f in fields}):
        add.add_argument("--" + name.replace("_", "-"), dest=name)
    add.set_defaults(func=_publishers_add)

    listing = actions.add_parser("list", help="list a project's trusted publishers")
    listing.add_argument("project")
    listing.set_defaults(func=_publishers_list)

    remove = actions.add_parser("remove", help="remove a trusted publisher by id")
    remove.add_argument("project")
    remove.add_argument("publisher_id")
    remove.set_defaults(func=_publishers_remove)


def _admin_request(args, method: str, path: str, body: dict | None = None) -> int:
    import httpx

    token = os.environ.get("PUBTRAIL_ADMIN_TOKEN")
    if not token:
        raise ConfigError("set PUBTRAIL_ADMIN_TOKEN to the service's admin token")
    try:
        response = httpx.request(
            method, args.url.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    except httpx.HTTPError as exc:
        print(f"pubtrail: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.is_success:
        print(json.dumps(response.json(), indent=2))
        return 0
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    print(f"pubtrail: {response.status_code}: {detail}", file=sys.stderr)
    return 1


def _publishers_add(args) -> int:
    body = {"provider": args.provider}
    for name in PROVIDER_FIELDS[args.provider]:
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    return _admin_request(args, "POST", f"/api/v1/projects/{args.project}/publishers", body)


def _publishers_list(args) -> int:
    return _admin_request(args, "GET", f"/api/v1/projects/{args.project}/publishers")


def _publishers_remove(args) -> int:
    return _admin_request(args, "DELETE", f"/api/v1/projects/{args.project}/publishers/{args.publisher_id}")


def _add_dev_commands(commands) -> None:
    dev = commands.add_parser("dev", help="development-mode helpers (PUBTRAIL_DEV=1)")
    actions = dev.add_subparsers(dest="action", required=True)
    token = actions.add_parser("token", help="print a GitHub-shaped OIDC token from the development issuer")
    token.add_argument("--repository", required=True, help="OWNER/REPO")
    token.add_argument("--workflow", required=True, help="workflow file name, e.g. release.yml")
    token.add_argument("--repository-owner-id", default="1")
    token.add_argument("--environment")
    token.add_argument("--ref", default="refs/heads/main")
    token.add_argument("--sha")
    token.add_argument("--event-name", default="push")
    token.add_argument("--lifetime", type=int, default=300, help="seconds")
    token.set_defaults(func=_dev_token)


def _dev_token(args) -> int:
    import time

    from app.oidc.dev_issuer import github_claims
    from app.runtime import dev_issuer_for

    settings = Settings.from_env()
    if not settings.dev:
        raise ConfigError("the development issuer exists only with PUBTRAIL_DEV=1")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    issuer = dev_issuer_for(settings)
    claims = github_claims(
        args.repository,
        args.repository_owner_id,
        args.workflow,
        ref=args.ref,
        sha=args.sha,
        environment=args.environment,
        event_name=args.event_name,
    )
    print(issuer.mint(claims, settings.audience, time.time(), lifetime=args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
