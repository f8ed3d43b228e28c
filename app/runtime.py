"""Runtime: the service's objects, built from Settings in one place.

`build_runtime(settings)` opens the database, creates the schema, loads the
signing key and checks the log's integrity (refusing to start if stored
tiles and checkpoints disagree at the right edge; halting the log if one
self-audit round finds damage deeper in). Tests build several runtimes side by side;
nothing here is global.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Engine

from app.attestations import TrustRootError
from app.attestations import verifier as attestation_verifier
from app.config import ConfigError, Settings
from app.distributions.blobs import BlobStore
from app.distributions.errors import HELP_PATH
from app.keys import load_key
from app.metrics import Metrics
from app.oidc.dev_issuer import DEV_ISSUER_PATH, KEY_FILE_NAME, DevIssuer
from app.oidc.jwks import JWKSCache, Fetcher, httpx_fetcher
from app.oidc.providers import IssuerRegistry
from app.oidc.verifier import TokenVerifier
from app.private_files import create_private_file, make_private_dir
from app.sequencer import Sequencer
from app.services.api_tokens import ApiTokens
from app.services.deliveries import Deliveries
from app.services.exchange import TokenExchange, backfill_identities
from app.services.incidents import Incidents
from app.services.log import Log
from app.services.log_reader import LogReader
from app.services.monitors import Monitors
from app.services.provenance import Provenance
from app.services.publishers import Publishers
from app.services.self_audit import audit_at_start
from app.services.token_admin import TokenAdmin
from app.services.upload_tokens import UploadTokens
from app.services.uploads import Uploads
from app.services.witnessing import WitnessSpec, Witnessing
from app.storage.db import make_engine
from app.storage.log_store import LogStore, create_schema
from app.storage.migrations import upgrade_schema


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Callable[[], float]
    metrics: Metrics
    log: Log
    publishers: Publishers
    exchange: TokenExchange
    tokens: UploadTokens
    token_admin: TokenAdmin
    blobs: BlobStore
    uploads: Uploads
    provenance: Provenance
    api_tokens: ApiTokens
    dev_issuer: DevIssuer | None = None
    incidents: Incidents = field(init=False)  # declared incidents and what they cover
    monitors: Monitors = field(init=False)  # server-side watch rules with webhooks
    deliveries: Deliveries = field(init=False)  # their events, delivered by a worker task

    witnessing: Witnessing | None = field(init=False)  # asks PUBTRAIL_WITNESSES to cosign checkpoints

    def __post_init__(self) -> None:
        self.incidents = Incidents(self.engine, self.log, self.publishers, self.clock)
        self.provenance.incidents = self.incidents  # provenance answers and project pages name covering incidents
        self.witnessing = None
        if self.settings.witnesses:
            self.witnessing = Witnessing(
                self.engine, self.log.reader, self.log.sequencer.verifier,
                [WitnessSpec(w["url"], w["key"]) for w in self.settings.witnesses],
                self.settings.witnesses_required, self.clock, timeout=self.settings.witness_timeout,
            )
        store, s = self.log.sequencer.store, self.settings
        self.monitors = Monitors(self.engine, store, self.clock, s.webhook_allowed_hosts)
        self.deliveries = Deliveries(self.engine, store, self.clock, timeout=s.webhook_timeout,
                                     poll_interval=s.webhook_poll_interval,
                                     write_lock=self.log.sequencer.locked if store.is_sqlite else None)

    async def start(self) -> None:
        await self.log.sequencer.start()
        if self.witnessing is not None:
            await self.witnessing.start()
        await self.deliveries.start()

    async def stop(self) -> None:
        if self.witnessing is not None:
            await self.witnessing.stop()
        await self.deliveries.stop()
        await self.log.sequencer.stop()

    def close(self) -> None:
        self.uploads.close()
        self.log.sequencer.store.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings, *, clock: Callable[[], float] = time.time, fetch: Fetcher | None = None
) -> Runtime:
    """Open storage and the log for `settings`; raise on any integrity problem.

    `fetch` retrieves discovery documents and JWKS (default: httpx, plus file://).
    """
    make_private_dir(settings.data_dir)
    engine = make_engine(settings.effective_database_url)
    create_schema(engine)
    upgrade_schema(engine)
    store = LogStore(engine)
    signer, verifier = load_key(settings.key_file, settings.origin)
    metrics = Metrics()
    sequencer = Sequencer(
        store,
        signer,
        verifier,
        settings.origin,
        clock=clock,
        batch_window=settings.batch_window,
        batch_max=settings.batch_max,
        on_batch=metrics.observe_batch,
    )
    sequencer.initialize()
    audit_at_start(sequencer, sample=settings.self_audit_sample)  # halts the log on damage
    backfill_identities(sequencer)
    reader = LogReader(store, verifier.key_string, settings.origin, metrics=metrics,
                       cache_bytes=settings.tile_cache_bytes)
    metrics.log_size.set(reader.latest().size)
    log = Log(sequencer, reader, metrics)

    registry = IssuerRegistry.without(settings.disabled_issuers)
    jwks_urls = dict(settings.jwks_urls)
    dev_issuer = None
    if settings.dev:
        dev_issuer = dev_issuer_for(settings)
        registry = registry.with_issuer(dev_issuer.issuer_url, "github")
        jwks_file = settings.data_dir / "dev-oidc-jwks.json"
        jwks_file.write_text(json.dumps(dev_issuer.jwks()))
        jwks_urls.setdefault(dev_issuer.issuer_url, jwks_file.resolve().as_uri())
    jwks = JWKSCache(fetch or httpx_fetcher(), jwks_urls, refresh_cooldown=settings.jwks_refresh_cooldown)
    verifier = TokenVerifier(registry, jwks, settings.audience)
    publishers = Publishers(engine, log, clock)
    exchange = TokenExchange(
        engine, log, verifier, publishers, metrics, clock, settings.upload_token_lifetime
    )
    tokens = UploadTokens(engine)
    make_private_dir(settings.data_dir / "files")
    blobs = BlobStore(settings.data_dir / "files")
    api_tokens = ApiTokens(engine, log, clock)
    try:  # read once, at start: attestations are verified offline against it
        sigstore_verifier = attestation_verifier(settings.sigstore_trust_root)
    except TrustRootError as exc:
        raise ConfigError(f"PUBTRAIL_SIGSTORE_TRUST_ROOT: {exc}") from exc
    uploads = Uploads(
        engine, log, tokens, blobs, metrics, clock, max_upload_size=settings.max_upload_size,
        help_url=settings.public_url + HELP_PATH, sigstore_verifier=sigstore_verifier,
        api_tokens=api_tokens, release_file_window_days=settings.release_file_window_days,
    )
    return Runtime(
        settings=settings,
        engine=engine,
        clock=clock,
        metrics=metrics,
        log=log,
        publishers=publishers,
        exchange=exchange,
        tokens=tokens,
        token_admin=TokenAdmin(engine, log, clock),
        blobs=blobs,
        uploads=uploads,
        provenance=Provenance(engine, reader),
        api_tokens=api_tokens,
        dev_issuer=dev_issuer,
    )


def dev_issuer_for(settings: Settings) -> DevIssuer:
    """The development-mode issuer, its key kept in the data folder across restarts."""
    key_file = settings.data_dir / KEY_FILE_NAME
    if key_file.exists():
        return DevIssuer(settings.public_url + DEV_ISSUER_PATH, key_file.read_bytes())
    issuer = DevIssuer(settings.public_url + DEV_ISSUER_PATH)
    create_private_file(key_file, issuer.key_pem)
    return issuer
