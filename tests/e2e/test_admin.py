"""The admin API over a real socket: publishers of every shape, logged revocations,
named admins, authentication before the body, and the bounded failure audit."""

from __future__ import annotations

import base64

import pytest

from app import entries
from app.config import ConfigError, Settings
from app.services.exchange import FAILURE_AUDIT_PER_CLIENT
from app.services.upload_tokens import TokenRejected
from tests.conftest import ADMIN_TOKEN

GITLAB = {"provider": "gitlab", "namespace": "grp", "project": "proj", "workflow_filepath": ".gitlab-ci.yml"}


def _entry(service, index: int) -> tuple[dict, bytes]:
    body = service.client.get(f"/api/v1/log/entries/{index}").json()
    return body["entry"], base64.b64decode(body["entry_bytes"])


def _publishers(service, project: str):
    return service.client.get(f"/api/v1/projects/{project}/publishers", headers=service.admin)


def test_gitlab_publisher_keeps_the_index_project_apart_from_its_own(service):
    response = service.client.post("/api/v1/projects/gl-project/publishers", json=GITLAB, headers=service.admin)
    assert response.status_code == 201, response.text
    publisher = response.json()["publisher"]
    assert publisher["project"] == "gl-project"
    assert publisher["config"] == {
        "namespace": "grp", "project": "proj", "workflow_filepath": ".gitlab-ci.yml",
        "environment": None, "namespace_id": None, "project_id": None,
    }
    listed = _publishers(service, "gl-project").json()["publishers"]
    assert [(p["project"], p["config"]["project"]) for p in listed] == [("gl-project", "proj")]
    entry, _ = _entry(service, response.json()["receipt"]["index"])
    assert entry["project"] == "gl-project" and entry["config"]["project"] == "proj"
    assert _publishers(service, "proj").status_code == 404


def test_listing_an_unknown_project_is_404_and_a_former_one_is_empty(service):
    response = _publishers(service, "no-such-project")
    assert response.status_code == 404 and "no-such-project" in response.json()["detail"]
    added = service.add_github_publisher("was-here")
    pid = added["publisher"]["id"]
    assert service.client.delete(f"/api/v1/projects/was-here/publishers/{pid}", headers=service.admin).status_code == 200
    assert _publishers(service, "Was_Here").json() == {"publishers": []}


def test_admin_routes_authenticate_before_reading_the_body(service):
    for body in (b"{not json", b"[" * 10_000, b"x" * 60_000):
        response = service.client.post(
            "/api/v1/projects/p/publishers", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, response.text
        response = service.client.post("/api/v1/tokens/abc/revoke", content=body)
        assert response.status_code == 401, response.text
    bad = service.client.post(
        "/api/v1/projects/p/publishers", content=b"{not json", headers={**service.admin, "Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and "JSON" in bad.json()["detail"]
    assert service.log_size() == 0


def test_revocation_is_logged_with_a_receipt(service):
    added = service.add_github_publisher()
    minted = service.mint(service.github_token()).json()
    token_id = minted["token"].split(".")[1]
    size = service.log_size()

    response = service.client.post(
        f"/api/v1/tokens/{token_id}/revoke", json={"reason": "workflow compromised"}, headers=service.admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revoked"] == token_id
    entry, raw = _entry(service, body["receipt"]["index"])
    service.verify_receipt(body["receipt"], raw)
    assert service.log_size() == size + 1
    decoded = entries.decode(raw)
    assert isinstance(decoded, entries.RevocationEntry)
    assert (decoded.token_id, decoded.exchange_index, decoded.actor, decoded.reason) == (
        token_id, minted["receipt"]["index"], "admin", "workflow compromised"
    )
    with pytest.raises(TokenRejected, match="revoked"):
        service.runtime.tokens.authenticate(minted["token"], service.clock())
    assert service.client.get(f"/api/v1/publishers/{added['publisher']['id']}/tokens", headers=service.admin).json() == {
        "tokens": []
    }

    # again, unknown, or expired: 404 and the log does not grow
    assert service.client.post(f"/api/v1/tokens/{token_id}/revoke", headers=service.admin).status_code == 404
    assert service.client.post("/api/v1/tokens/0000000000000000/revoke", headers=service.admin).status_code == 404
    expiring = service.mint(service.github_token()).json()["token"].split(".")[1]
    service.clock.value += 15 * 60
    assert service.client.post(f"/api/v1/tokens/{expiring}/revoke", headers=service.admin).status_code == 404
    assert service.log_size() == size + 2  # the one revocation and the second exchange


@pytest.mark.parametrize(
    "body", [b"[1]", b'{"reason": 5}', b'{"reason": "x", "more": 1}', ('{"reason": "%s"}' % ("x" * 1001)).encode()]
)
def test_bad_revocation_bodies_are_400_and_not_logged(service, body):
    service.add_github_publisher()
    token_id = service.upload_token().split(".")[1]
    size = service.log_size()
    response = service.client.post(f"/api/v1/tokens/{token_id}/revoke", content=body, headers=service.admin)
    assert response.status_code == 400, response.text
    assert service.log_size() == size


def test_live_tokens_of_a_publisher(service):
    pid = service.add_github_publisher()["publisher"]["id"]
    first = service.mint(service.github_token()).json()
    second = service.mint(service.github_token()).json()
    listed = service.client.get(f"/api/v1/publishers/{pid}/tokens", headers=service.admin)
    assert listed.status_code == 200
    tokens = listed.json()["tokens"]
    assert [t["token_id"] for t in tokens] == [first["token"].split(".")[1], second["token"].split(".")[1]]
    assert tokens[0]["exchange_index"] == first["receipt"]["index"]
    assert tokens[0]["projects"] == ["sampleproject"]
    assert service.client.get(f"/api/v1/publishers/{pid}/tokens").status_code == 401
    service.clock.value += 15 * 60
    assert service.client.get(f"/api/v1/publishers/{pid}/tokens", headers=service.admin).json() == {"tokens": []}


def test_named_admins_are_the_actors_of_their_entries(make_service):
    alice = "alice-token-0123456789abcdefghijklmnopqrstu"
    service = make_service(admin_tokens={"alice": alice})
    response = service.client.post(
        "/api/v1/projects/p/publishers", json=GITLAB, headers={"Authorization": f"Bearer {alice}"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["publisher"]["added_by"] == "alice"
    entry, _ = _entry(service, 0)
    assert entry["actor"] == "alice"
    service.add_github_publisher("p")  # with PUBTRAIL_ADMIN_TOKEN: the admin named "admin"
    entry, _ = _entry(service, 1)
    assert entry["actor"] == "admin"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PUBTRAIL_ADMIN_TOKENS": "{nope"}, "not valid JSON"),
        ({"PUBTRAIL_ADMIN_TOKENS": '{"a": 1}'}, "JSON object mapping"),
        ({"PUBTRAIL_ADMIN_TOKENS": '{"bad name": "%s"}' % ("t" * 40)}, "admin name"),
        ({"PUBTRAIL_ADMIN_TOKENS": '{"bob": "short"}'}, "too short"),
        ({"PUBTRAIL_ADMIN_TOKENS": '{"admin": "%s"}' % ("t" * 40), "PUBTRAIL_ADMIN_TOKEN": "u" * 40}, '"admin"'),
        ({"PUBTRAIL_ADMIN_TOKENS": '{"a": "%s", "b": "%s"}' % ("t" * 40, "t" * 40)}, "share one token"),
    ],
)
def test_bad_admin_tokens_refuse_to_start(tmp_path, env, message):
    key = tmp_path / "k"
    key.write_text("x")
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"PUBTRAIL_SIGNING_KEY_FILE": str(key), **env}).check_secrets()


def test_only_named_admins_is_enough(tmp_path):
    key = tmp_path / "k"
    key.write_text("x")
    settings = Settings.from_env({"PUBTRAIL_SIGNING_KEY_FILE": str(key), "PUBTRAIL_ADMIN_TOKENS": '{"ops": "%s"}' % ADMIN_TOKEN})
    settings.check_secrets()
    assert settings.admin_credentials() == {"ops": ADMIN_TOKEN}


def test_failure_audit_is_rate_limited_per_client(service):
    rate, burst = FAILURE_AUDIT_PER_CLIENT
    for _ in range(burst + 15):
        assert service.client.post("/_/oidc/mint-token", content=b"{not json").status_code == 422
    assert service.runtime.exchange.failed_count() == burst
    metrics = service.client.get("/metrics").text
    assert "pubtrail_failed_exchange_audit_dropped_total 15.0" in metrics
    assert 'pubtrail_token_exchanges_total{result="invalid-payload"} %s' % float(burst + 15) in metrics
    service.clock.value += 5 / rate  # the bucket refills with time
    for _ in range(5):
        service.client.post("/_/oidc/mint-token", content=b"{not json")
    assert service.runtime.exchange.failed_count() == burst + 5
