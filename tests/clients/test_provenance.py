"""Provenance verification against crafted answers: each tampering fails with its own check."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from app.clients import errors
from app.clients.http import Server
from app.clients.provenance import LocalFile, fetch_and_verify, verify_provenance
from tests.clients.forge import Forge, transport

OLD, NEW = b"wheel bytes of demo 0.9", b"wheel bytes of demo 1.0"


@pytest.fixture
def forge() -> Forge:
    forge = Forge()
    first = forge.exchange()
    forge.upload(first, "demo-0.9-py3-none-any.whl", OLD, version="0.9")
    second = forge.exchange(at=1_790_001_000)
    forge.upload(second, "demo-1.0-py3-none-any.whl", NEW, version="1.0", at=1_790_001_060)
    forge.exchange(at=1_790_002_000)  # the log grew after the upload
    return forge


@pytest.fixture
def wheel(tmp_path) -> LocalFile:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(NEW)
    return LocalFile.read(path)


def answer(forge: Forge) -> dict:
    return forge.provenance(3, previous_index=1)


def check(answer_: dict, forge: Forge, wheel: LocalFile, error: type[errors.ClientError], *words: str) -> str:
    with pytest.raises(error) as caught:
        verify_provenance(answer_, forge.verifier, wheel)
    assert type(caught.value) is error, caught.value
    message = str(caught.value)
    assert message.startswith(error.check + ": ")
    for word in words:
        assert word in message, message
    return message


def test_a_true_answer_verifies_and_says_who_published(forge, wheel):
    server = Server("http://pubtrail.test", transport=transport({f"/api/v1/provenance/{wheel.sha256}": answer(forge)}))
    verified = fetch_and_verify(server, forge.verifier, wheel)
    assert (verified.project, verified.version, verified.filename) == ("demo", "1.0", wheel.filename)
    assert (verified.upload_index, verified.exchange_index, verified.tree_size) == (3, 2, 5)
    assert verified.publisher["repository"] == "octo-org/app" and verified.publisher["workflow"] == "release.yml"
    assert verified.continuity.changed is False and verified.continuity.previous_version == "0.9"


def test_local_file_hashes(wheel):
    import hashlib

    assert wheel.size == len(NEW) and wheel.sha256 == hashlib.sha256(NEW).hexdigest()
    assert wheel.blake2b_256 == hashlib.blake2b(NEW, digest_size=32).hexdigest()


def test_tampered_entry_bytes(forge, wheel):
    tampered = answer(forge)
    entry = json.loads(base64.b64decode(tampered["upload"]["entry_bytes"]))
    entry["publisher"]["repository"] = "evil/app"
    tampered["upload"]["entry_bytes"] = base64.b64encode(json.dumps(entry).encode()).decode()
    check(tampered, forge, wheel, errors.EntryBytesError, "hash to leaf")


def test_wrong_key(forge, wheel):
    other = Forge()  # same origin, another key
    check(answer(forge), other, wheel, errors.CheckpointSignatureError, "not signed by the pinned key")


def test_checkpoint_of_another_origin(forge, wheel):
    other = Forge("elsewhere.test/log")
    check(answer(forge), other, wheel, errors.CheckpointSignatureError)


def test_proof_made_at_another_size(forge, wheel):
    tampered = answer(forge)
    tampered["upload"] = forge.item(3, size=4)  # a true proof, but not at the checkpoint's size
    check(tampered, forge, wheel, errors.ProofSizeError, "tree size 4", "size 5")


def test_checkpoint_that_does_not_cover_the_item(forge, wheel):
    tampered = answer(forge)
    tampered["checkpoint"] = forge.checkpoint(size=3)  # signed, but older than the upload
    tampered["tree_size"] = 3
    check(tampered, forge, wheel, errors.NotCoveredError, "entry 3", "size 3")


def test_proof_that_does_not_lead_to_the_root(forge, wheel):
    tampered = answer(forge)
    tampered["upload"]["inclusion_proof"]["hashes"][0] = "00" * 32
    check(tampered, forge, wheel, errors.InclusionError, "not proven")


def test_file_that_was_never_uploaded(forge, wheel):
    server = Server("http://pubtrail.test", transport=transport({}))
    with pytest.raises(errors.NotFoundAnswer) as caught:
        fetch_and_verify(server, forge.verifier, wheel)
    assert str(caught.value).startswith("known to the server: ") and "404" in str(caught.value)


def test_answer_about_another_file(forge, tmp_path):
    other = tmp_path / "demo-1.0-py3-none-any.whl"
    other.write_bytes(b"not the uploaded wheel")
    check(answer(forge), forge, LocalFile.read(other), errors.FileHashError, "sha256")


@pytest.mark.parametrize(
    "path, value",
    [
        (("version",), "2.0"),
        (("uploaded_at",), "2020-01-01T00:00:00Z"),
        (("publisher", "repository"), "evil/app"),
        (("publisher", "environment"), "staging"),
        (("tree_size",), 4),
        (("identity_continuity", "changed"), True),
        (("identity_continuity", "previous", "repository"), "someone/else"),
        (("upload", "entry", "version"), "2.0"),
    ],
)
def test_plain_fields_that_disagree_with_the_entries(forge, wheel, path, value):
    tampered = answer(forge)
    target = tampered
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    check(tampered, forge, wheel, errors.AnswerMismatchError, path[-1])


def test_upload_named_with_another_exchange(forge, wheel):
    tampered = answer(forge)
    tampered["exchange"] = forge.item(0)
    check(tampered, forge, wheel, errors.LinkError, "names exchange entry 2")


def test_previous_release_must_be_an_earlier_other_version(forge, wheel):
    tampered = answer(forge)
    tampered["identity_continuity"]["previous_release"]["upload"] = forge.item(4)
    check(tampered, forge, wheel, errors.AnswerMismatchError, "exchange")


def test_changed_identity_is_reported_from_the_entries(wheel):
    forge = Forge()
    first = forge.exchange(repository="octo-org/app")
    forge.upload(first, "demo-0.9-py3-none-any.whl", OLD, version="0.9")
    second = forge.exchange(repository="mallory/app")
    forge.upload(second, "demo-1.0-py3-none-any.whl", NEW, version="1.0")
    true = forge.provenance(3, previous_index=1)
    verified = verify_provenance(true, forge.verifier, wheel)
    assert verified.continuity.changed is True
    assert verified.continuity.previous["repository"] == "octo-org/app"
    assert verified.continuity.current["repository"] == "mallory/app"
    true["identity_continuity"]["changed"] = False  # the server hiding the change
    check(true, forge, wheel, errors.AnswerMismatchError, "changed")


def test_server_errors_are_typed():
    def refuse(request):
        return httpx.Response(500, text="oops")

    def html(request):
        return httpx.Response(200, text="<html>")

    def down(request):
        raise httpx.ConnectError("connection refused")

    sha = "0" * 64
    with pytest.raises(errors.RefusedAnswer, match="500"):
        Server("http://x.test", transport=httpx.MockTransport(refuse)).get_json(f"/api/v1/provenance/{sha}")
    with pytest.raises(errors.MalformedAnswer, match="without JSON"):
        Server("http://x.test", transport=httpx.MockTransport(html)).get_json(f"/api/v1/provenance/{sha}")
    with pytest.raises(errors.Unreachable, match="cannot reach http://x.test"):
        Server("http://x.test", transport=httpx.MockTransport(down)).get_json(f"/api/v1/provenance/{sha}")
    with pytest.raises(errors.Unreachable, match="not an http"):
        Server("ftp://x.test")


def test_malformed_answers_are_clear(forge, wheel):
    tampered = answer(forge)
    del tampered["exchange"]["inclusion_proof"]["hashes"]
    check(tampered, forge, wheel, errors.MalformedAnswer, "exchange.inclusion_proof", "hashes")
    check([], forge, wheel, errors.MalformedAnswer, "not a JSON object")
