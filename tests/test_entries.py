"""Entry kinds: canonical (RFC 8785) bytes, strict decoding."""

from __future__ import annotations

import json

import pytest

from app import tlog
from app.entries import (
    ApiTokenEntry,
    EntryError,
    ProjectSettingsEntry,
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
    assert json.loads(data)["kind"] == "upload" and json.loads(data)["v"] == 2


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
        ApiTokenEntry(time=rfc3339(7), action="create", project="x", token_id="t", description="ci-legacy", actor="admin"),
        ApiTokenEntry(time=rfc3339(8), action="revoke", project="x", token_id="t", description="ci-legacy", actor="alice"),
        ProjectSettingsEntry(time=rfc3339(9), project="x", trusted_publishing_only=True, actor="admin"),
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
        (_upload().encode().replace(b'"v":2', b'"v":3'), "version"),
        (_upload().encode().replace(b'"v":2', b'"v":true'), "version"),
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


# --- upload entry versions: known answers -----------------------------------------

# An upload entry exactly as pubtrail v1 logged it (before API tokens and attestations).
V1_UPLOAD = (
    b'{"blake2b_256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",'
    b'"exchange_index":7,"filename":"sampleproject-1.0-py3-none-any.whl","kind":"upload",'
    b'"packagetype":"bdist_wheel","project":"sampleproject","publisher":{"environment":null,'
    b'"issuer":"https://token.actions.githubusercontent.com","repository":"o/r"},'
    b'"requires_python":">=3.9","sha256":"abababababababababababababababababababababababababababababababab",'
    b'"size":20480,"time":"2026-09-21T14:13:20Z","token_id":"0123456789abcdef","v":1,"version":"1.0"}'
)
V2_API_TOKEN_UPLOAD = (
    b'{"attestations":[],"auth":"api_token",'
    b'"blake2b_256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",'
    b'"exchange_index":null,"filename":"sampleproject-1.0-py3-none-any.whl","kind":"upload",'
    b'"packagetype":"bdist_wheel","project":"sampleproject","publisher":null,'
    b'"requires_python":">=3.9","sha256":"abababababababababababababababababababababababababababababababab",'
    b'"size":20480,"time":"2026-09-21T14:13:20Z","token_id":"fedcba9876543210","v":2,"version":"1.0"}'
)
V2_ATTESTED = (
    b'{"attestations":[{"predicate_type":"https://docs.pypi.org/attestations/publish/v1",'
    b'"sha256":"0101010101010101010101010101010101010101010101010101010101010101"}],'
    b'"auth":"trusted_publishing","blake2b_256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",'
    b'"exchange_index":7,"filename":"sampleproject-1.0-py3-none-any.whl","kind":"upload",'
    b'"packagetype":"bdist_wheel","project":"sampleproject","publisher":{"environment":null,'
    b'"issuer":"https://token.actions.githubusercontent.com","repository":"o/r"},'
    b'"requires_python":">=3.9","sha256":"abababababababababababababababababababababababababababababababab",'
    b'"size":20480,"time":"2026-09-21T14:13:20Z","token_id":"0123456789abcdef","v":2,"version":"1.0"}'
)


def test_v1_upload_bytes_decode_and_reencode_identically():
    entry = decode(V1_UPLOAD)
    assert isinstance(entry, UploadEntry) and entry.v == 1 and entry.schema_version == 1
    assert entry.auth == "trusted_publishing" and entry.attestations is None and entry.exchange_index == 7
    assert entry.encode() == V1_UPLOAD
    # the leaf hash the v1 code computed for these bytes (checked with app/entries.py before v2)
    assert tlog.leaf_hash(entry.encode()).hex() == "31c0d6c74ea8511589f13e05ed3c8a912650cc3449a915fcbf3386f06e06ba84"
    # the v1 entry the code builds today is the same entry
    assert _upload_v1() == entry


def _upload_v1() -> UploadEntry:
    u = _upload()
    return UploadEntry(**{f: getattr(u, f) for f in ("time", "project", "version", "filename", "packagetype", "size",
                                                    "sha256", "blake2b_256", "requires_python", "token_id",
                                                    "exchange_index", "publisher")}, v=1)


@pytest.mark.parametrize("data", [V2_API_TOKEN_UPLOAD, V2_ATTESTED])
def test_v2_upload_bytes_decode_and_reencode_identically(data):
    entry = decode(data)
    assert isinstance(entry, UploadEntry) and entry.v == 2
    assert entry.encode() == data


def test_v2_api_token_upload_fields():
    entry = decode(V2_API_TOKEN_UPLOAD)
    assert (entry.auth, entry.token_id, entry.exchange_index, entry.publisher, entry.attestations) == (
        "api_token", "fedcba9876543210", None, None, []
    )
    attested = decode(V2_ATTESTED)
    assert attested.auth == "trusted_publishing" and attested.attestations[0]["predicate_type"].endswith("publish/v1")


def test_new_uploads_are_v2():
    assert json.loads(_upload().encode())["v"] == 2
    assert json.loads(_upload().encode())["auth"] == "trusted_publishing"
    assert json.loads(_upload().encode())["attestations"] == []


@pytest.mark.parametrize(
    "data, message",
    [
        # v1 with a v2 field, v2 without one
        (V1_UPLOAD.replace(b'"blake2b_256"', b'"auth":"trusted_publishing","blake2b_256"'), "fields"),
        (V2_API_TOKEN_UPLOAD.replace(b'"attestations":[],', b""), "fields"),
        (V2_API_TOKEN_UPLOAD.replace(b'"v":2', b'"v":1'), "fields"),
        (V1_UPLOAD.replace(b'"v":1', b'"v":2'), "fields"),
        # mixed: an API-token upload naming an exchange or a publisher, a trusted one without them
        (V2_API_TOKEN_UPLOAD.replace(b'"exchange_index":null', b'"exchange_index":7'), "no exchange_index"),
        (V2_API_TOKEN_UPLOAD.replace(b'"publisher":null', b'"publisher":{}'), "no exchange_index"),
        (V2_ATTESTED.replace(b'"exchange_index":7', b'"exchange_index":null'), "names the exchange"),
        (V2_ATTESTED.replace(b'"exchange_index":7', b'"exchange_index":true'), "names the exchange"),
        (V2_ATTESTED.replace(b'"publisher":{"environment":null,', b'"publisher":null,"x":{"environment":null,'), "fields"),
        (V1_UPLOAD.replace(b'"exchange_index":7', b'"exchange_index":null'), "names the exchange"),
        (V2_API_TOKEN_UPLOAD.replace(b'"auth":"api_token"', b'"auth":"password"'), "auth is"),
        # corrupted attestations
        (V2_ATTESTED.replace(b'"sha256":"0101', b'"sha256":"ZZ01'), "attestation"),
        (V2_ATTESTED.replace(b'"predicate_type":"https', b'"extra":1,"predicate_type":"https'), "attestation"),
        (V2_API_TOKEN_UPLOAD.replace(b'"attestations":[]', b'"attestations":{}'), "not a list"),
        (V2_API_TOKEN_UPLOAD.replace(b'"size":20480', b'"size":"20480"'), "size"),
        (V2_API_TOKEN_UPLOAD.replace(b'"token_id":"fedcba9876543210"', b'"token_id":5'), "token_id"),
    ],
)
def test_upload_entries_with_corrupted_or_mixed_fields_are_refused(data, message):
    with pytest.raises(EntryError, match=message):
        decode(data)


def test_inconsistent_upload_entries_cannot_be_built():
    with pytest.raises(EntryError):
        UploadEntry(**{**_upload().__dict__, "auth": "api_token"})
    with pytest.raises(EntryError):
        UploadEntry(**{**_upload().__dict__, "v": 1})  # v1 has no attestations


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"action":"rotate","actor":"a","description":"d","kind":"api_token","project":"p","time":"2026-01-01T00:00:00Z","token_id":"t","v":1}', "action"),
        (b'{"actor":"a","kind":"project_settings","project":"p","time":"2026-01-01T00:00:00Z","trusted_publishing_only":1,"v":1}', "boolean"),
    ],
)
def test_new_kinds_refuse_bad_fields(data, message):
    with pytest.raises(EntryError, match=message):
        decode(data)
