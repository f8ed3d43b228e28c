"""Standard Webhooks signing and verification (pure: stdlib only).

A delivery carries three headers:

- ``webhook-id``: the event id, the same on every retry of one event, so a
  receiver deduplicates on it;
- ``webhook-timestamp``: integer Unix seconds of this attempt;
- ``webhook-signature``: one or more space-separated ``v1,<base64>`` values,
  each the HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` under the secret.

A secret is written ``whsec_<base64 of the key bytes>``. Servers (pubtrail's
delivery job) and clients (``pubtrail monitor --webhook``) sign with
:func:`sign_headers`; receivers check with :func:`verify`, which also refuses a
timestamp more than ``tolerance`` seconds from ``now`` (replay protection).
Both are tested against the specification's published vectors and the
``standardwebhooks`` reference package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds, as the specification recommends


class WebhookError(ValueError):
    """A secret, header or signature that does not verify; ``str()`` says why."""


def new_secret(nbytes: int = 32) -> str:
    """A fresh random secret ``whsec_<base64>`` of ``nbytes`` key bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret``: raw bytes, or ``whsec_<base64>`` (prefix optional).

    Raises :class:`WebhookError` for base64 that does not decode or an empty key.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
        try:
            # Some senders drop the padding; extra "=" is ignored by b64decode.
            key = base64.b64decode(text + "==", validate=False)
        except (binascii.Error, ValueError) as exc:
            raise WebhookError(f"secret is not base64: {exc}") from None
    if not key:
        raise WebhookError("secret is empty")
    return key


def signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message."""
    data = body.encode() if isinstance(body, str) else body
    signed = f"{msg_id}.{int(timestamp)}.".encode() + data
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_headers(
    secret: str | bytes, msg_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (``timestamp`` defaults to now)."""
    if not msg_id or any(c in msg_id for c in ". \r\n"):
        raise WebhookError("message id must be non-empty without '.', spaces or newlines")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(secret, msg_id, ts, body),
    }


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """Check a received message; return its ``webhook-id``.

    Header names are matched case-insensitively. Raises :class:`WebhookError`
    naming the problem when a header is missing, the timestamp is not an
    integer or is more than ``tolerance`` seconds from ``now`` (default: the
    current time), or no ``v1`` signature matches (compared in constant time).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    ts_text = lower.get("webhook-timestamp")
    sig_text = lower.get("webhook-signature")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", ts_text),
                        ("webhook-signature", sig_text)):
        if not value:
            raise WebhookError(f"missing header {name}")
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookError(f"webhook-timestamp is not an integer: {ts_text!r}") from None
    current = time.time() if now is None else now
    if ts < current - tolerance:
        raise WebhookError(f"message timestamp too old ({ts}, now {int(current)})")
    if ts > current + tolerance:
        raise WebhookError(f"message timestamp too new ({ts}, now {int(current)})")
    expected = base64.b64decode(signature(secret, msg_id, ts, body)[3:])
    for item in sig_text.split(" "):
        version, _, value = item.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return msg_id
    raise WebhookError("no matching v1 signature")
