"""Prometheus metrics, one registry per app instance (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.log_size = Gauge("pubtrail_log_size", "Entries in the log at the latest checkpoint", registry=r)
        self.batch_size = Histogram(
            "pubtrail_log_batch_size", "Entries per committed batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "pubtrail_log_batch_seconds", "Time to commit one batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.append_seconds = Histogram(
            "pubtrail_log_append_seconds",
            "Time from append to receipt (durable and included)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_integrity_failures = Counter(
            "pubtrail_log_integrity_failures",
            "Reads refused because a stored entry does not match its leaf hash (storage altered), by read",
            ["read"],
            registry=r,
        )
        self.exchanges = Counter(
            "pubtrail_token_exchanges", "Token exchanges by result code", ["result"], registry=r
        )
        self.uploads = Counter("pubtrail_uploads", "Upload requests by result", ["result"], registry=r)
        self.http_refusals = Counter(
            "pubtrail_http_refusals",
            "Requests refused at the HTTP edge (body too large, body chunk timeout)",
            ["reason"],
            registry=r,
        )
        self.failed_exchange_audit_dropped = Counter(
            "pubtrail_failed_exchange_audit_dropped",
            "Refused token exchanges not written to the failure audit table (rate limit)",
            registry=r,
        )
        self.self_audit_rounds = Counter(
            "pubtrail_self_audit_rounds",
            "Self-audit rounds by result (failed: the log was found inconsistent and halted)",
            ["result"],
            registry=r,
        )
        self.jobs_skipped = Counter(
            "pubtrail_jobs_skipped",
            "Job rounds skipped because another process held the job's lock",
            ["job"],
            registry=r,
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
