"""app.webhooks against the Standard Webhooks specification's vectors and its reference package."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from app import webhooks
from app.webhooks import WebhookError

# The example of the Standard Webhooks specification (and of its reference libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_vector_signs() -> None:
    assert webhooks.signature(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIG
    # the prefix is optional and bytes bodies sign alike
    assert webhooks.signature(SPEC_SECRET[6:], SPEC_ID, SPEC_TS, SPEC_BODY.encode()) == SPEC_SIG
    headers = webhooks.sign_headers(SPEC_SECRET, SPEC_ID, SPEC_BODY, timestamp=SPEC_TS)
    assert headers == {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS), "webhook-signature": SPEC_SIG}


def _spec_headers(**override: str) -> dict[str, str]:
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS), "webhook-signature": SPEC_SIG}
    headers.update(override)
    return headers


def test_spec_vector_verifies() -> None:
    assert webhooks.verify(SPEC_SECRET, _spec_headers(), SPEC_BODY, now=SPEC_TS) == SPEC_ID
    # several signatures, one valid (key rotation); header names in any case
    several = {"Webhook-Id": SPEC_ID, "WEBHOOK-TIMESTAMP": str(SPEC_TS),
               "webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc " + SPEC_SIG}
    assert webhooks.verify(SPEC_SECRET, several, SPEC_BODY, now=SPEC_TS) == SPEC_ID


@pytest.mark.parametrize(
    ("headers", "body", "now", "reason"),
    [
        (_spec_headers(), SPEC_BODY + " ", SPEC_TS, "no matching"),
        (_spec_headers(**{"webhook-id": "msg_other"}), SPEC_BODY, SPEC_TS, "no matching"),
        (_spec_headers(**{"webhook-signature": "v2," + SPEC_SIG[3:]}), SPEC_BODY, SPEC_TS, "no matching"),
        (_spec_headers(**{"webhook-signature": "v1,not base64!"}), SPEC_BODY, SPEC_TS, "no matching"),
        (_spec_headers(**{"webhook-signature": "v1"}), SPEC_BODY, SPEC_TS, "no matching"),
        (_spec_headers(**{"webhook-timestamp": "16142653a0"}), SPEC_BODY, SPEC_TS, "not an integer"),
        (_spec_headers(), SPEC_BODY, SPEC_TS + 301, "too old"),
        (_spec_headers(), SPEC_BODY, SPEC_TS - 301, "too new"),
        ({"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS)}, SPEC_BODY, SPEC_TS, "webhook-signature"),
        ({"webhook-id": SPEC_ID, "webhook-signature": SPEC_SIG}, SPEC_BODY, SPEC_TS, "webhook-timestamp"),
        ({"webhook-timestamp": str(SPEC_TS), "webhook-signature": SPEC_SIG}, SPEC_BODY, SPEC_TS, "webhook-id"),
    ],
)
def test_refusals_name_the_problem(headers: dict[str, str], body: str, now: int, reason: str) -> None:
    with pytest.raises(WebhookError, match=reason):
        webhooks.verify(SPEC_SECRET, headers, body, now=now)


def test_wrong_secret_and_tolerance_edges() -> None:
    with pytest.raises(WebhookError, match="no matching"):
        webhooks.verify(webhooks.new_secret(), _spec_headers(), SPEC_BODY, now=SPEC_TS)
    assert webhooks.verify(SPEC_SECRET, _spec_headers(), SPEC_BODY, now=SPEC_TS + 300) == SPEC_ID
    assert webhooks.verify(SPEC_SECRET, _spec_headers(), SPEC_BODY, now=SPEC_TS - 300) == SPEC_ID


def test_bad_secrets_and_ids() -> None:
    with pytest.raises(WebhookError, match="empty"):
        webhooks.secret_key("whsec_")
    with pytest.raises(WebhookError, match="not base64"):
        webhooks.secret_key("whsec_a")
    with pytest.raises(WebhookError, match="message id"):
        webhooks.sign_headers(SPEC_SECRET, "a.b", SPEC_BODY, timestamp=SPEC_TS)


def test_new_secret() -> None:
    one, two = webhooks.new_secret(), webhooks.new_secret()
    assert one != two and one.startswith("whsec_")
    assert len(base64.b64decode(one[6:])) == 32


@settings(max_examples=50, deadline=None)
@given(body=st.text(), msg_id=st.from_regex(r"msg_[A-Za-z0-9_-]{1,30}", fullmatch=True),
       ts=st.integers(min_value=1, max_value=4_000_000_000), key=st.binary(min_size=1, max_size=64))
def test_reference_package_agrees_both_ways(body: str, msg_id: str, ts: int, key: bytes) -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    secret = "whsec_" + base64.b64encode(key).decode()
    reference = standardwebhooks.Webhook(secret)
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    assert reference.sign(msg_id, when, body) == webhooks.signature(secret, msg_id, ts, body)
    ours = webhooks.sign_headers(secret, msg_id, body, timestamp=ts)
    assert webhooks.verify(secret, ours, body.encode(), now=ts) == msg_id


def test_reference_package_verifies_ours_now() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    secret = webhooks.new_secret()
    body = '{"type": "entry.matched"}'
    headers = webhooks.sign_headers(secret, "evt_1", body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"type": "entry.matched"}


def test_pure_stdlib_module() -> None:
    script = (
        "import sys, app.webhooks\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'app' and m not in ('app', 'app.webhooks'))"
        " + sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'sqlmodel', 'httpx', 'pydantic'))))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
