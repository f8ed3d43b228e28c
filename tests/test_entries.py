"""Entry kinds: canonical (RFC 8785) bytes, strict decoding."""

from __future__ import annotations

import json

import pytest

from app.entries import (
    EntryError,
    ExchangeEntry,
    PublisherEntry,
    RevocationEntry,
    UploadEntry,
    decode,
    parse_rfc3339,
    rfc3339,
)


def _upload() -> UploadEntry:
    return UploadEntry(
        time=rfc3339(1_790_000_000),
        project="sampleproject",
        version="1.0",
        filename="sampleproject-1.0-py3-none-any.whl",
        packagetype="bdist_wheel",
        size=20480,
        sha256="ab" * 32,
        blake2b_256="cd" * 32,
        requires_python=">=3.9",
        token_id="0123456789abcdef",
        exchange_index=7,
        publisher={"issuer": "https://token.actions.githubusercontent.com", "repository": "o/r", "environment": None},
    )


def test_encoding_is_canonical_json():
    data = _upload().encode()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert json.loads(data)["kind"] == "upload" and json.loads(data)["v"] == 1


@pytest.mark.parametrize(
    "entry",
    [
        _upload(),
        ExchangeEntry(
            time=rfc3339(0), issuer="https://gitlab.com", provider="gitlab", kid="k", claims={"project_path": "g/p", "ü": "é"},
            jti=None, publisher_id="p", projects=["a", "b"], token_id="t", token_expires=rfc3339(900),
        ),
        PublisherEntry(time=rfc3339(5), action="add", project="x", publisher_id="p", provider="google", config={"email": "a@b"}, actor="admin"),
        RevocationEntry(time=rfc3339(6), token_id="t", exchange_index=3, actor="alice", reason=None),
        RevocationEntry(time=rfc3339(6), token_id="t", exchange_index=3, actor="alice", reason="leaked in a build log"),
    ],
)
def test_decode_round_trips(entry):
    assert decode(entry.encode()) == entry


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"kind":"nope","v":1}', "unknown entry kind"),
        (_upload().encode().replace(b'"v":1', b'"v":2'), "version"),
        (_upload().encode().replace(b'"size":20480,', b""), "fields"),
        (_upload().encode().replace(b"{", b"{ ", 1), "canonical"),
        (json.dumps(json.loads(_upload().encode())).encode(), "canonical"),
    ],
)
def test_decode_refuses(data, message):
    with pytest.raises(EntryError, match=message):
        decode(data)


def test_time_format():
    assert rfc3339(1_790_000_000.9) == "2026-09-21T14:13:20Z"
    assert parse_rfc3339("2026-09-21T14:13:20Z") == 1_790_000_000
