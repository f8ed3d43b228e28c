"""`pubtrail serve`: run the HTTP service (uvicorn) over the runtime built from PUBTRAIL_* settings."""

from __future__ import annotations

import argparse
import logging
import os

from app.config import Settings

log = logging.getLogger("pubtrail")


def register(commands, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="run the HTTP service",
        description="Run pubtrail over HTTP. Refuses to start, naming the variable, when the signing key "
        "or admin token is missing or weak, when the key is not PUBTRAIL_ORIGIN's, or when the stored "
        "log does not match its signed checkpoint. In development mode (PUBTRAIL_DEV=1) the built-in OIDC "
        "issuer is named after PUBTRAIL_PUBLIC_URL, or http://HOST:PORT when that is unset.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument(
        "--workers", type=_positive, default=1, metavar="N",
        help="server processes sharing the port; they append through the database's write lock (default: 1)",
    )
    serve.set_defaults(run=run)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def public_url(host: str, port: int) -> str:
    """The URL a local client reaches `host`:`port` at (a wildcard address means this machine)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.server import uvicorn_options
    from app.runtime import build_runtime

    settings = Settings.from_env()
    if not os.environ.get("PUBTRAIL_PUBLIC_URL"):
        # The development issuer is named after the public URL: name it after the address served.
        settings = settings.with_overrides(public_url=public_url(args.host, args.port))
    settings.check_secrets()
    if settings.dev:
        log.warning("=" * 72)
        log.warning("DEVELOPMENT MODE (PUBTRAIL_DEV=1): do not expose this server")
        log.warning("=" * 72)
    # Build once here: creates the schema and the log, checks integrity, and
    # fails with a clear message before any worker starts.
    runtime = build_runtime(settings)
    log.info("log %s, verifier key %s", settings.origin, runtime.log.verifier_key)
    if runtime.dev_issuer is not None:
        log.info("development OIDC issuer %s", runtime.dev_issuer.issuer_url)
    options = dict(host=args.host, port=args.port, **uvicorn_options(settings))
    if args.workers > 1:
        runtime.close()
        os.environ["PUBTRAIL_PUBLIC_URL"] = settings.public_url  # the workers read their settings from it
        uvicorn.run("app.api.app:app_from_env", factory=True, workers=args.workers, **options)
    else:
        from app.api.app import create_app

        uvicorn.run(create_app(runtime, jobs=True), **options)
    return 0
