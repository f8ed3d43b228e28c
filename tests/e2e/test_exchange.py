"""Trusted publishers and the token exchange, over a real socket with a real OIDC issuer."""

from __future__ import annotations

import base64

import id as id_package
import pytest

from app import entries
from tests.support.oidc_issuer import GITHUB_ISSUER, GITLAB_ISSUER


def _entry(service, index: int) -> tuple[dict, bytes]:
    body = service.client.get(f"/api/v1/log/entries/{index}").json()
    return body["entry"], base64.b64decode(body["entry_bytes"])


def _error(response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Token request failed"
    (error,) = body["errors"]
    return error["code"], error["description"]


def test_audience(service):
    assert service.client.get("/_/oidc/audience").json() == {"audience": "pubtrail"}


def test_publisher_add_is_logged_with_a_receipt(service):
    added = service.add_github_publisher("Sample_Project")
    assert added["publisher"]["project"] == "sample-project"
    service.verify_receipt(added["receipt"])
    entry, raw = _entry(service, added["receipt"]["index"])
    assert entry["kind"] == "publisher" and entry["action"] == "add"
    assert entry["config"]["repository"] == "octo-org/sampleproject"
    assert entries.decode(raw).encode() == raw
    listed = service.client.get("/api/v1/projects/sample.project/publishers", headers=service.admin).json()
    assert [p["id"] for p in listed["publishers"]] == [added["publisher"]["id"]]


def test_admin_routes_need_the_admin_token(service):
    body = {"provider": "github", "repository": "a/b", "repository_owner_id": "1", "workflow": "r.yml"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic xyz"}):
        response = service.client.post("/api/v1/projects/p/publishers", json=body, headers=headers)
        assert response.status_code == 401
        assert service.client.get("/api/v1/projects/p/publishers", headers=headers).status_code == 401
    assert service.log_size() == 0


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"provider": "github", "repository": "nope", "repository_owner_id": "1", "workflow": "r.yml"}, "repository"),
        ({"provider": "github", "repository": "a/b", "repository_owner_id": "x1", "workflow": "r.yml"}, "repository_owner_id"),
        ({"provider": "github", "repository": "a/b", "repository_owner_id": "1", "workflow": "../r.yml"}, "workflow"),
        ({"provider": "bitbucket"}, "provider"),
        ({"repository": "a/b"}, "provider"),
        ([1, 2], "object"),
    ],
)
def test_bad_publisher_config_is_400_and_not_logged(service, body, fragment):
    response = service.client.post("/api/v1/projects/p/publishers", json=body, headers=service.admin)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]
    assert service.log_size() == 0


def test_duplicate_publisher_is_409_and_remove_is_logged(service):
    added = service.add_github_publisher()
    pid = added["publisher"]["id"]
    again = service.client.post(
        "/api/v1/projects/sampleproject/publishers",
        json={"provider": added["publisher"]["provider"], **added["publisher"]["config"]},
        headers=service.admin,
    )
    assert again.status_code == 409
    assert service.log_size() == 1
    removed = service.client.delete(f"/api/v1/projects/sampleproject/publishers/{pid}", headers=service.admin)
    assert removed.status_code == 200
    service.verify_receipt(removed.json()["receipt"])
    entry, _ = _entry(service, 1)
    assert entry["action"] == "remove" and entry["publisher_id"] == pid
    assert service.client.delete(f"/api/v1/projects/sampleproject/publishers/{pid}", headers=service.admin).status_code == 404
    assert service.log_size() == 2
    # after removal the identity can no longer mint
    code, _ = _error(service.mint(service.github_token()))
    assert code == "invalid-publisher"


def test_successful_exchange_is_logged_without_any_token(service):
    service.add_github_publisher()
    service.add_github_publisher("other-project")
    oidc_token = service.github_token()
    response = service.mint(oidc_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "token", "expires", "receipt"} and body["success"] is True
    assert body["expires"] == int(service.clock()) + 15 * 60
    assert service.log_size() == 3
    entry, raw = _entry(service, 2)
    assert entry["kind"] == "exchange"
    assert body["receipt"]["index"] == 2
    service.verify_receipt(body["receipt"], raw)
    assert entry["issuer"] == GITHUB_ISSUER and entry["provider"] == "github" and entry["kid"] == "rsa-1"
    assert entry["claims"]["repository"] == "octo-org/sampleproject"
    assert entry["claims"]["repository_owner_id"] == "65432"
    assert entry["claims"]["job_workflow_ref"].endswith("release.yml@refs/tags/v1.0.0")
    assert entry["projects"] == ["other-project", "sampleproject"]
    assert entry["jti"]
    assert oidc_token.encode() not in raw and body["token"].encode() not in raw
    secret = body["token"].rsplit(".", 1)[1]
    assert secret.encode() not in raw
    grant = service.runtime.tokens.authenticate(body["token"], service.clock())
    assert grant.exchange_log_index == 2 and grant.projects == ("other-project", "sampleproject")


def test_reused_jti_is_refused(service):
    service.add_github_publisher()
    token = service.github_token()
    assert service.mint(token).status_code == 200
    size = service.log_size()
    code, description = _error(service.mint(token))
    assert code == "invalid-reuse-token"
    assert service.log_size() == size


def _failure_cases(service):
    ok = service.issuer.github_claims(now=service.clock())
    expired = service.issuer.github_claims(now=service.clock() - 3600)
    return {
        "not json": (b"{not json", "invalid-payload"),
        "no token": (b'{"nothing": 1}', "invalid-payload"),
        "token not a string": (b'{"token": 5}', "invalid-payload"),
        "malformed jwt": (b'{"token": "abc.def"}', "invalid-payload"),
        "unknown issuer": (
            _json(service.issuer.sign({**ok, "iss": "https://evil.example"})),
            "invalid-payload",
        ),
        "bad signature": (_json(_tamper(service.issuer.sign(ok))), "invalid-token"),
        "expired": (_json(service.issuer.sign(expired)), "invalid-token"),
        "wrong audience": (_json(service.issuer.sign({**ok, "aud": "pypi"})), "invalid-token"),
        "two audiences": (_json(service.issuer.sign({**ok, "aud": ["pubtrail", "other"]})), "invalid-token"),
        "hs256": (_json(_hs256(ok)), "invalid-token"),
        "no publisher for repo": (
            _json(service.issuer.sign({**ok, "repository": "someone/else"})),
            "invalid-publisher",
        ),
        "resurrected owner": (
            _json(service.issuer.sign({**ok, "repository_owner_id": "99999"})),
            "invalid-publisher",
        ),
        "other workflow": (
            _json(service.issuer.sign({**ok, "job_workflow_ref": "octo-org/sampleproject/.github/workflows/evil.yml@refs/heads/main"})),
            "invalid-publisher",
        ),
        "pull_request_target": (
            _json(service.issuer.sign({**ok, "event_name": "pull_request_target"})),
            "invalid-publisher",
        ),
        "wrong environment": (_json(service.issuer.sign({**ok, "environment": "test"})), "invalid-publisher"),
    }


def _json(token: str) -> bytes:
    return ('{"token": "%s"}' % token).encode()


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B")
    return ".".join([header, payload, signature[:5] + flipped + signature[6:]])


def _hs256(claims) -> str:
    import jwt

    return jwt.encode(claims, "a-shared-secret-long-enough-for-hs256!", algorithm="HS256", headers={"kid": "rsa-1"})


def test_every_failure_code_leaves_the_log_alone(service):
    service.add_github_publisher()
    size = service.log_size()
    for name, (body, expected) in _failure_cases(service).items():
        service.clock.value += 1  # one failure audit row per second per client is kept without sampling
        response = service.client.post(
            "/_/oidc/mint-token", content=body, headers={"Content-Type": "application/json"}
        )
        code, description = _error(response)
        assert code == expected, f"{name}: {code} {description}"
        assert description, name
    assert service.log_size() == size
    assert service.runtime.exchange.failed_count() == len(_failure_cases(service))
    metrics = service.client.get("/metrics").text
    assert 'pubtrail_token_exchanges_total{result="invalid-publisher"}' in metrics


def test_disabled_issuer_is_not_enabled(make_service):
    service = make_service(disabled_issuers=frozenset({GITLAB_ISSUER}))
    token = service.issuer.sign(service.issuer.gitlab_claims(now=service.clock()))
    code, _ = _error(service.mint(token))
    assert code == "not-enabled"
    assert service.log_size() == 0


def test_upload_token_expires_and_can_be_revoked(service):
    from app.services.upload_tokens import TokenRejected

    service.add_github_publisher()
    token = service.mint(service.github_token()).json()["token"]
    tokens = service.runtime.tokens
    grant = tokens.authenticate(token, service.clock())
    with pytest.raises(TokenRejected, match="expired"):
        tokens.authenticate(token, service.clock() + 15 * 60)
    with pytest.raises(TokenRejected, match="not recognised"):
        tokens.authenticate(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), service.clock())
    assert service.client.post(f"/api/v1/tokens/{grant.token_id}/revoke").status_code == 401
    assert service.client.post(f"/api/v1/tokens/{grant.token_id}/revoke", headers=service.admin).status_code == 200
    with pytest.raises(TokenRejected, match="revoked"):
        tokens.authenticate(token, service.clock())


def test_id_package_token_from_actions_endpoint_is_exchanged(service, monkeypatch):
    """The `id` package fetches a token the way pypa/gh-action-pypi-publish does."""
    service.add_github_publisher()
    now = int(service.clock())
    service.issuer.token_claims = {"iat": now, "nbf": now, "exp": now + 300}
    for name, value in service.issuer.github_actions_env().items():
        monkeypatch.setenv(name, value)
    audience = service.client.get("/_/oidc/audience").json()["audience"]
    oidc_token = id_package.detect_credential(audience=audience)
    assert oidc_token
    response = service.mint(oidc_token)
    assert response.status_code == 200, response.text
    assert response.json()["token"].startswith("pubtrail-v1.")


def test_concurrent_replays_of_one_token_mint_once(service):
    """Ten simultaneous exchanges of one token: the jti constraint lets exactly one through."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    service.add_github_publisher()
    token = service.github_token()
    size = service.log_size()

    def post(_):
        with httpx.Client(base_url=service.url, timeout=30) as client:
            return client.post("/_/oidc/mint-token", json={"token": token})

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(post, range(10)))
    assert sorted(r.status_code for r in responses) == [200] + [422] * 9
    assert {r.json()["errors"][0]["code"] for r in responses if r.status_code == 422} == {"invalid-reuse-token"}
    assert service.log_size() == size + 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,  # nesting deeper than the JSON parser's recursion limit
        '{"token": "a\\ud800.b.c"}'.encode(),  # a lone surrogate
        '{"token": "\u00e9y.x.z"}'.encode(),  # not ASCII
    ],
)
def test_hostile_mint_bodies_are_invalid_payload_not_500(service, body):
    response = service.client.post("/_/oidc/mint-token", content=body, headers={"Content-Type": "application/json"})
    code, _ = _error(response)
    assert code == "invalid-payload"
