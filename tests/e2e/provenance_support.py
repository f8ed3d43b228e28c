"""Helpers for the provenance and project-page tests: real uploads over the legacy
API with a known OIDC identity, and proof checks against the pinned verifier key."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import tlog
from app.keys import load_key
from app.tlog import note
from tests.distributions.builders import digests, encode, twine_fields
from tests.e2e.test_upload import PROJECT, build_sdist, build_wheel

__all__ = ["Uploaded", "Publisher", "PROJECT", "pinned_verifier", "verify_item", "open_answer", "upload"]


@dataclass(frozen=True)
class Uploaded:
    """Ground truth for one accepted file, recorded as the test uploaded it."""

    path: Path
    version: str
    packagetype: str
    sha256: str
    blake2b_256: str
    size: int
    index: int  # the upload entry's log index, from the upload's receipt
    exchange_index: int  # the exchange that minted the token, from the mint-token receipt
    claims: dict[str, Any]  # the OIDC claims the token was minted from
    time: str


@dataclass(frozen=True)
class Publisher:
    """A minted upload token and what is known about it."""

    token: str
    exchange_index: int
    claims: dict[str, Any]


def mint(service, **claims) -> Publisher:
    full = service.issuer.github_claims(now=service.clock(), **claims)
    response = service.mint(service.issuer.sign(full))
    assert response.status_code == 200, response.text
    body = response.json()
    return Publisher(body["token"], service.log_size() - 1, full)


def upload(service, publisher: Publisher, directory: Path, version: str, kind: str = "wheel") -> Uploaded:
    """Build a real wheel or sdist of `version` and upload it as twine would."""
    directory.mkdir(parents=True, exist_ok=True)
    path = build_wheel(directory, version) if kind == "wheel" else build_sdist(directory, version)
    data = path.read_bytes()
    fields = twine_fields(path.name, data, name=PROJECT, version=version, summary="A sample project")
    body, content_type = encode(fields)
    auth = base64.b64encode(f"__token__:{publisher.token}".encode()).decode()
    response = service.client.post(
        "/legacy/", content=body, headers={"Content-Type": content_type, "Authorization": f"Basic {auth}"}
    )
    assert response.status_code == 200, (response.status_code, response.reason_phrase)
    hashes = digests(data)
    return Uploaded(
        path=path,
        version=version,
        packagetype="bdist_wheel" if kind == "wheel" else "sdist",
        sha256=hashes["sha256"],
        blake2b_256=hashes["blake2b_256"],
        size=len(data),
        index=response.json()["receipt"]["index"],
        exchange_index=publisher.exchange_index,
        claims=publisher.claims,
        time=tlog_time(service.clock()),
    )


def tlog_time(unix: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(int(unix), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pinned_verifier(service) -> note.Verifier:
    """The log's verifier, from its key file: what an auditor pinned out of band."""
    settings = service.runtime.settings
    return load_key(settings.key_file, settings.origin)[1]


def open_answer(service, answer: dict) -> tlog.Checkpoint:
    """The answer's checkpoint, opened with the pinned key; its size must be the answer's tree_size."""
    verifier = pinned_verifier(service)
    checkpoint = tlog.open_checkpoint(answer["checkpoint"], [verifier], origin=verifier.name)
    assert checkpoint.size == answer["tree_size"]
    return checkpoint


def verify_item(checkpoint: tlog.Checkpoint, item: dict) -> bytes:
    """An item (ProvenEntry JSON) proven at the checkpoint's size: its bytes hash to its
    leaf and the leaf is in the checkpoint's tree. Returns the entry's bytes."""
    raw = base64.b64decode(item["entry_bytes"])
    leaf = tlog.leaf_hash(raw)
    assert leaf.hex() == item["leaf_hash"]
    proof = item["inclusion_proof"]
    assert proof["tree_size"] == checkpoint.size and proof["index"] == item["index"]
    assert bytes.fromhex(proof["root_hash"]) == checkpoint.root_hash
    tlog.verify_inclusion(leaf, item["index"], checkpoint.size, [bytes.fromhex(h) for h in proof["hashes"]],
                          checkpoint.root_hash)
    return raw


def verify_reference(service, checkpoint: tlog.Checkpoint, ref: dict) -> dict:
    """A `{index, leaf_hash}` reference of a project page proven at the checkpoint's size
    through the public proof route; returns the entry (fetched and re-hashed)."""
    proof = service.client.get(
        "/api/v1/log/proof/inclusion", params={"index": ref["index"], "tree_size": checkpoint.size}
    ).json()
    tlog.verify_inclusion(bytes.fromhex(ref["leaf_hash"]), ref["index"], checkpoint.size,
                          [bytes.fromhex(h) for h in proof["hashes"]], checkpoint.root_hash)
    body = service.client.get(f"/api/v1/log/entries/{ref['index']}").json()
    assert tlog.leaf_hash(base64.b64decode(body["entry_bytes"])).hex() == ref["leaf_hash"]
    return body["entry"]
