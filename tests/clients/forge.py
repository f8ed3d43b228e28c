"""A small in-memory pubtrail log that builds the answers a server gives, for the client tests.

`Forge` appends real entries (app.entries) to a `MemoryTree`, signs
checkpoints with its own key, and builds provenance and blast-radius answers
in the agreed shapes, so each test can tamper with exactly one thing.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx

from app import tlog
from app.entries import ExchangeEntry, UploadEntry, rfc3339
from app.identity import authorised_by, identity_fields
from app.tlog import note

ORIGIN = "forge.test/log"
T0 = 1_790_000_000


def github_claims(repository="octo-org/app", workflow="release.yml", ref="refs/tags/v1.0.0", environment="pypi", **extra):
    claims = {
        "sub": f"repo:{repository}:environment:{environment}",
        "repository": repository,
        "repository_owner_id": "65432",
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "ref": ref,
        "sha": "a" * 40,
        "environment": environment,
        "actor": "octocat",
        "run_id": "1",
        "run_attempt": "1",
    }
    claims.update(extra)
    return claims


class Forge:
    def __init__(self, origin: str = ORIGIN):
        self.signer_key, self.verifier_key = note.generate_key(origin)
        self.signer = note.Signer(self.signer_key)
        self.verifier = note.Verifier(self.verifier_key)
        self.tree = tlog.MemoryTree()
        self.entries: list[bytes] = []
        self.origin = origin

    def append(self, entry) -> int:
        data = entry.encode()
        self.entries.append(data)
        return self.tree.append(data)

    def exchange(self, at: int = T0, token: str | None = None, projects=("demo",), **claims) -> int:
        index = len(self.entries)
        return self.append(ExchangeEntry(
            time=rfc3339(at), issuer="https://token.actions.githubusercontent.com", provider="github",
            kid="key-1", claims=github_claims(**claims), jti=f"jti-{index}", publisher_id="p" * 16,
            projects=list(projects), token_id=token or f"tok{index}", token_expires=rfc3339(at + 900),
        ))

    def upload(self, exchange_index: int, filename: str, content: bytes, version: str = "1.0", at: int = T0 + 60,
               project: str = "demo") -> int:
        import hashlib

        exchange = json.loads(self.entries[exchange_index])
        identity = identity_fields(exchange["issuer"], exchange["provider"], exchange["claims"])
        publisher = {k: identity[k] for k in ("issuer", "provider", "repository", "workflow", "ref", "sha", "environment")}
        return self.append(UploadEntry(
            time=rfc3339(at), project=project, version=version, filename=filename, packagetype="bdist_wheel",
            size=len(content), sha256=hashlib.sha256(content).hexdigest(),
            blake2b_256=hashlib.blake2b(content, digest_size=32).hexdigest(), requires_python=None,
            token_id=exchange["token_id"], exchange_index=exchange_index, publisher=publisher,
        ))

    def checkpoint(self, size: int | None = None, signer: note.Signer | None = None) -> str:
        size = self.tree.size if size is None else size
        body = tlog.Checkpoint(self.origin, size, self.tree.root(size)).to_text()
        return note.sign(body, [signer or self.signer])

    def item(self, index: int, size: int | None = None) -> dict[str, Any]:
        """An entry in the shape of /api/v1/log/entries/{i} (ProvenEntry JSON), proven at `size`."""
        size = self.tree.size if size is None else size
        data = self.entries[index]
        return {
            "index": index,
            "kind": json.loads(data)["kind"],
            "leaf_hash": tlog.leaf_hash(data).hex(),
            "entry": json.loads(data),
            "entry_bytes": base64.b64encode(data).decode(),
            "inclusion_proof": {
                "index": index, "tree_size": size, "root_hash": self.tree.root(size).hex(),
                "hashes": [h.hex() for h in self.tree.inclusion_proof(index, size)],
            },
        }

    def provenance(self, upload_index: int, previous_index: int | None = None) -> dict[str, Any]:
        upload = json.loads(self.entries[upload_index])
        exchange = json.loads(self.entries[upload["exchange_index"]])
        current = {k: upload["publisher"][k] for k in ("provider", "repository", "workflow", "environment")}
        previous = None
        release = None
        if previous_index is not None:
            before = json.loads(self.entries[previous_index])
            previous = {k: before["publisher"][k] for k in ("provider", "repository", "workflow", "environment")}
            release = {"version": before["version"], "filename": before["filename"], "upload": self.item(previous_index)}
        return {
            **{k: upload[k] for k in ("project", "version", "filename", "packagetype", "size", "sha256", "blake2b_256")},
            "uploaded_at": upload["time"],
            "auth": "trusted_publishing",
            "authorised_by": authorised_by(
                "trusted_publishing", identity_fields(exchange["issuer"], exchange["provider"], exchange["claims"]), None
            ),
            "publisher": identity_fields(exchange["issuer"], exchange["provider"], exchange["claims"]),
            "upload": self.item(upload_index),
            "exchange": self.item(upload["exchange_index"]),
            "api_token": None,
            "flags": [],
            "attestations": upload.get("attestations") or [],
            "provenance_url": None,
            "checkpoint": self.checkpoint(),
            "tree_size": self.tree.size,
            "incidents": [],
            "identity_continuity": {
                "changed": previous is not None and (
                    previous["repository"].lower() != current["repository"].lower()
                    or any(previous[k] != current[k] for k in ("provider", "workflow", "environment"))
                ),
                "current": current,
                "previous": previous,
                "previous_release": release,
            },
        }

    def blast_item(self, index: int, **extra) -> dict[str, Any]:
        """A blast-radius item: plain fields read from the entry, entry bytes and proof at the tree's size."""
        data = self.entries[index]
        entry = json.loads(data)
        proof = self.item(index)["inclusion_proof"]
        if entry["kind"] == "exchange":
            identity = identity_fields(entry["issuer"], entry["provider"], entry["claims"])
            plain = {
                "time": entry["time"], "issuer": entry["issuer"], "provider": entry["provider"],
                "repository": identity["repository"], "workflow": identity["workflow"], "ref": identity["ref"],
                "sha": identity["sha"], "environment": identity["environment"], "token_id": entry["token_id"],
                "token_expires": entry["token_expires"], "token_state": "expired",
            }
        else:
            plain = {k: entry[k] for k in ("time", "project", "version", "filename", "sha256", "token_id", "exchange_index")}
        return {
            "index": index, "leaf_hash": tlog.leaf_hash(data).hex(), **plain, **extra,
            "entry_bytes": base64.b64encode(data).decode(),
            "proof": {k: proof[k] for k in ("tree_size", "root_hash", "hashes")},
        }

    def blast_pages(self, criteria: dict[str, str], exchanges: list[int], uploads: list[int], per_page: int = 1000,
                    as_of: int = T0 + 100_000) -> list[dict[str, Any]]:
        """The pages of an answer listing `exchanges` and `uploads`, `per_page` items of each list per page."""
        pages = []
        count = max(1, -(-max(len(exchanges), len(uploads)) // per_page))
        checkpoint = self.checkpoint()
        upload_entries = [json.loads(self.entries[i]) for i in uploads]
        for page in range(count):
            ex = [self.blast_item(i) for i in exchanges[page * per_page:(page + 1) * per_page]]
            up = [self.blast_item(i) for i in uploads[page * per_page:(page + 1) * per_page]]
            grouped: dict = {}
            for item in up:
                grouped.setdefault(item["project"], {}).setdefault(item["version"], []).append(item["filename"])
            pages.append({
                "criteria": criteria, "checkpoint": checkpoint, "tree_size": self.tree.size, "as_of": rfc3339(as_of),
                "exchanges": ex, "uploads": up, "projects": grouped,
                "totals": {
                    "exchanges": len(exchanges), "uploads": len(uploads),
                    "projects": len({u["project"] for u in upload_entries}),
                    "releases": len({(u["project"], u["version"]) for u in upload_entries}), "tokens_valid": 0,
                },
                "next_cursor": f"page{page + 1}" if page + 1 < count else None,
            })
        return pages


def transport(routes: dict[str, Any]) -> httpx.MockTransport:
    """A server that answers GET path (with ?cursor=... looked up as "path#cursor") from `routes`;
    a value is JSON, or an httpx.Response; anything else is 404."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        cursor = request.url.params.get("cursor")
        if request.url.params.get("format") == "csv":
            key += "#csv"
        elif cursor:
            key += f"#{cursor}"
        answer = routes.get(key)
        if answer is None:
            return httpx.Response(404, json={"detail": f"nothing at {key}"})
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=copy.deepcopy(answer))

    return httpx.MockTransport(handler)
