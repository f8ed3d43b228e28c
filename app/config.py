"""Settings: every knob pubtrail has, read from the environment in one place.

`Settings.from_env()` is called by the CLI; tests build `Settings(...)` directly.
Nothing here is read at import time, so two apps in one process never share state.

Secrets are never defaulted. Outside development mode the service refuses to
start without a signing key file and an admin token (`Settings.check_secrets`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

MIN_ADMIN_TOKEN_LENGTH = 32
#: an admin's name as it appears in log entries (`actor`)
ADMIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class ConfigError(Exception):
    """The configuration cannot work; the message says which variable and why."""


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The service's configuration. See README.md for each variable and its default."""

    data_dir: Path = Path("./var")
    database_url: str | None = None
    origin: str = "pubtrail.localhost/log"
    signing_key_file: Path | None = None
    admin_token: str | None = None
    admin_tokens: Mapping[str, str] = field(default_factory=dict)
    dev: bool = False
    audience: str = "pubtrail"
    public_url: str = "http://127.0.0.1:8000"
    jwks_urls: Mapping[str, str] = field(default_factory=dict)
    disabled_issuers: frozenset[str] = frozenset()
    batch_window: float = 0.010
    batch_max: int = 1000
    upload_token_lifetime: int = 15 * 60
    max_upload_size: int = 100 * 1024 * 1024
    #: days after a release's first file during which more files may be added to it (PyPI: 14)
    release_file_window_days: int = 14
    jwks_refresh_cooldown: float = 60.0
    header_timeout: float = 10.0
    body_chunk_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    limit_concurrency: int = 1000
    #: a directory kept as a static tlog-tiles copy of the log while serving (None: no scheduled export)
    export_dir: Path | None = None
    export_interval: float = 60.0
    #: witnesses the log asks to cosign its checkpoints: ({"url": ..., "key": <witness verifier key>}, ...)
    witnesses: tuple[Mapping[str, str], ...] = ()
    #: cosignatures from distinct witnesses a checkpoint needs before /checkpoint serves it
    witnesses_required: int = 0
    witness_timeout: float = 5.0
    self_audit_interval: float = 60.0
    self_audit_sample: int = 4096
    jwks_refresh_interval: float = 1800.0
    #: hosts (or host:port) webhook URLs may name; empty: any host (see README on internal targets)
    webhook_allowed_hosts: frozenset[str] = frozenset()
    webhook_timeout: float = 10.0
    webhook_poll_interval: float = 0.2
    #: bytes of hashes the reader's tile cache may hold (LogReader; least recently used tiles evicted)
    tile_cache_bytes: int = 64 * 1024 * 1024
    #: log reads (tiles, entries, proofs, checkpoints) running at once per process; 0: no limit
    read_concurrency: int = 4
    #: Sigstore trusted_root.json that PEP 740 attestations are verified against (None: the
    #: production root embedded in `sigstore`); read at start-up, never fetched
    sigstore_trust_root: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read `PUBTRAIL_*` variables; raise ConfigError on malformed values."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("PUBTRAIL_DATA_DIR", "./var"))
        key_file = env.get("PUBTRAIL_SIGNING_KEY_FILE")
        try:
            jwks_urls = json.loads(env.get("PUBTRAIL_JWKS_URLS") or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"PUBTRAIL_JWKS_URLS is not valid JSON: {exc}") from exc
        if not isinstance(jwks_urls, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in jwks_urls.items()
        ):
            raise ConfigError("PUBTRAIL_JWKS_URLS must be a JSON object mapping issuer URL to JWKS URL")
        try:
            admin_tokens = json.loads(env.get("PUBTRAIL_ADMIN_TOKENS") or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"PUBTRAIL_ADMIN_TOKENS is not valid JSON: {exc}") from exc
        if not isinstance(admin_tokens, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in admin_tokens.items()
        ):
            raise ConfigError("PUBTRAIL_ADMIN_TOKENS must be a JSON object mapping admin name to token")
        disabled = frozenset(
            s.strip() for s in env.get("PUBTRAIL_DISABLED_ISSUERS", "").split(",") if s.strip()
        )
        return cls(
            data_dir=data_dir,
            database_url=_secret(env, "PUBTRAIL_DATABASE_URL"),
            origin=env.get("PUBTRAIL_ORIGIN", cls.origin),
            signing_key_file=Path(key_file) if key_file else data_dir / "log-signing.key",
            admin_token=_secret(env, "PUBTRAIL_ADMIN_TOKEN"),
            admin_tokens=admin_tokens,
            dev=_bool(env.get("PUBTRAIL_DEV")),
            audience=env.get("PUBTRAIL_AUDIENCE", cls.audience),
            public_url=env.get("PUBTRAIL_PUBLIC_URL", cls.public_url).rstrip("/"),
            jwks_urls=jwks_urls,
            disabled_issuers=disabled,
            batch_window=_float(env, "PUBTRAIL_BATCH_WINDOW_MS", cls.batch_window * 1000) / 1000,
            batch_max=int(_float(env, "PUBTRAIL_BATCH_MAX", cls.batch_max)),
            upload_token_lifetime=int(
                _float(env, "PUBTRAIL_UPLOAD_TOKEN_LIFETIME", cls.upload_token_lifetime)
            ),
            max_upload_size=int(_float(env, "PUBTRAIL_MAX_UPLOAD_SIZE", cls.max_upload_size)),
            release_file_window_days=int(
                _float(env, "PUBTRAIL_RELEASE_FILE_WINDOW_DAYS", cls.release_file_window_days)
            ),
            jwks_refresh_cooldown=_float(env, "PUBTRAIL_JWKS_REFRESH_COOLDOWN", cls.jwks_refresh_cooldown),
            header_timeout=_float(env, "PUBTRAIL_HEADER_TIMEOUT", cls.header_timeout),
            body_chunk_timeout=_float(env, "PUBTRAIL_BODY_CHUNK_TIMEOUT", cls.body_chunk_timeout),
            keep_alive_timeout=_float(env, "PUBTRAIL_KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout),
            limit_concurrency=int(_float(env, "PUBTRAIL_LIMIT_CONCURRENCY", cls.limit_concurrency)),
            export_dir=Path(env["PUBTRAIL_EXPORT_DIR"]) if env.get("PUBTRAIL_EXPORT_DIR") else None,
            export_interval=_float(env, "PUBTRAIL_EXPORT_INTERVAL", cls.export_interval),
            **_witness_settings(env),
            self_audit_interval=_float(env, "PUBTRAIL_SELF_AUDIT_INTERVAL", cls.self_audit_interval),
            self_audit_sample=int(_float(env, "PUBTRAIL_SELF_AUDIT_SAMPLE", cls.self_audit_sample)),
            jwks_refresh_interval=_float(env, "PUBTRAIL_JWKS_REFRESH_INTERVAL", cls.jwks_refresh_interval),
            webhook_allowed_hosts=frozenset(
                h.strip().lower() for h in env.get("PUBTRAIL_WEBHOOK_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            webhook_timeout=_float(env, "PUBTRAIL_WEBHOOK_TIMEOUT", cls.webhook_timeout),
            webhook_poll_interval=_float(env, "PUBTRAIL_WEBHOOK_POLL_INTERVAL", cls.webhook_poll_interval),
            tile_cache_bytes=int(_float(env, "PUBTRAIL_TILE_CACHE_MIB", cls.tile_cache_bytes / 2**20) * 2**20),
            read_concurrency=int(_float(env, "PUBTRAIL_READ_CONCURRENCY", cls.read_concurrency)),
            sigstore_trust_root=Path(env["PUBTRAIL_SIGSTORE_TRUST_ROOT"])
            if env.get("PUBTRAIL_SIGSTORE_TRUST_ROOT") else None,
        )

    @property
    def effective_database_url(self) -> str:
        """The configured database, or a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pubtrail.sqlite3').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "log-signing.key"

    def check_secrets(self) -> None:
        """Refuse to run with a missing or weak secret outside development mode."""
        if not self.key_file.is_file():
            raise ConfigError(
                f"no log signing key at {self.key_file}: create one with "
                f"`pubtrail keygen --origin {self.origin} --out {self.key_file}` "
                "or set PUBTRAIL_SIGNING_KEY_FILE"
            )
        credentials = self.admin_credentials()
        if self.dev:
            return
        if not credentials:
            raise ConfigError(
                "PUBTRAIL_ADMIN_TOKEN is not set (nor PUBTRAIL_ADMIN_TOKENS); generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        for name, token in credentials.items():
            if len(token) < MIN_ADMIN_TOKEN_LENGTH:
                variable = "PUBTRAIL_ADMIN_TOKEN" if name == "admin" else f"PUBTRAIL_ADMIN_TOKENS[{name!r}]"
                raise ConfigError(
                    f"{variable} is too short ({len(token)} characters); "
                    f"use at least {MIN_ADMIN_TOKEN_LENGTH} random characters"
                )

    def admin_credentials(self) -> dict[str, str]:
        """Admin name -> bearer token: `PUBTRAIL_ADMIN_TOKEN` is the admin named "admin",
        `PUBTRAIL_ADMIN_TOKENS` names the others. The name is the `actor` of the log
        entries their changes make. Raise ConfigError on a bad name or a shared token."""
        credentials = dict(self.admin_tokens)
        if self.admin_token:
            if "admin" in credentials:
                raise ConfigError('PUBTRAIL_ADMIN_TOKENS names "admin", the name of PUBTRAIL_ADMIN_TOKEN')
            credentials["admin"] = self.admin_token
        for name, token in credentials.items():
            if not ADMIN_NAME.fullmatch(name):
                raise ConfigError(
                    f"PUBTRAIL_ADMIN_TOKENS: admin name {name!r} must be 1-64 letters, digits or ._@- "
                    "starting with a letter or digit"
                )
            if not token:
                raise ConfigError(f"PUBTRAIL_ADMIN_TOKENS: admin {name!r} has an empty token")
        if len(set(credentials.values())) != len(credentials):
            raise ConfigError("PUBTRAIL_ADMIN_TOKENS: two admins share one token, so the log could not tell them apart")
        return credentials

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes)


def _witness_settings(env: Mapping[str, str]) -> dict:
    """`PUBTRAIL_WITNESSES` (JSON list of {"url", "key"}), `PUBTRAIL_WITNESSES_REQUIRED` (default 1 when
    witnesses are configured, at most their number) and `PUBTRAIL_WITNESS_TIMEOUT`."""
    from app.services.witnessing import WitnessConfigError, parse_witnesses

    try:
        specs = parse_witnesses(env.get("PUBTRAIL_WITNESSES"))
    except WitnessConfigError as exc:
        raise ConfigError(f"PUBTRAIL_WITNESSES: {exc}") from exc
    required = int(_float(env, "PUBTRAIL_WITNESSES_REQUIRED", 1 if specs else 0))
    if required > len(specs):
        raise ConfigError(
            f"PUBTRAIL_WITNESSES_REQUIRED is {required} but PUBTRAIL_WITNESSES names {len(specs)} witnesses"
        )
    return {
        "witnesses": tuple({"url": spec.url, "key": spec.key} for spec in specs),
        "witnesses_required": required,
        "witness_timeout": _float(env, "PUBTRAIL_WITNESS_TIMEOUT", 5.0),
    }


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """`name`, or the contents of the file `name_FILE` names (Docker and Kubernetes secrets), with
    surrounding whitespace removed; None when neither is set. Both set, or an unreadable or empty
    file, is a ConfigError naming the variable."""
    value, path = env.get(name) or None, env.get(f"{name}_FILE") or None
    if path is None:
        return value
    if value is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set; set one")
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc}") from exc
    if not text:
        raise ConfigError(f"{name}_FILE: {path} is empty")
    return text


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return float(default)
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value
