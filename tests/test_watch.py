"""Watch rules: each criterion selects exactly the entries it names."""

from __future__ import annotations

import pytest

from app.entries import ExchangeEntry, IncidentEntry, PublisherEntry, UploadEntry
from app.watch import WatchRuleError, parse_rule, parse_rules

T = "2026-01-01T00:00:00Z"


def exchange(repository: str = "me/demo", workflow: str = "release.yml", *, kid: str = "k1", owner: int = 1,
             projects: tuple[str, ...] = ("demo-project",), environment: str | None = None) -> ExchangeEntry:
    claims = {
        "repository": repository,
        "repository_owner_id": str(owner),
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@refs/heads/main",
        "ref": "refs/heads/main",
        "sub": f"repo:{repository}",
    }
    if environment:
        claims["environment"] = environment
    return ExchangeEntry(time=T, issuer="https://token.actions.githubusercontent.com", provider="github", kid=kid,
                         claims=claims, jti="j", publisher_id="p", projects=list(projects), token_id="t",
                         token_expires=T)


def upload(project: str = "demo-project", repository: str = "me/demo", workflow: str = "release.yml",
           environment: str | None = None) -> UploadEntry:
    publisher = {"issuer": "https://token.actions.githubusercontent.com", "provider": "github",
                 "repository": repository, "workflow": workflow, "ref": "refs/heads/main", "sha": None,
                 "environment": environment}
    return UploadEntry(time=T, project=project, version="1", filename="f.whl", packagetype="bdist_wheel", size=1,
                       sha256="0" * 64, blake2b_256="0" * 64, requires_python=None, token_id="t",
                       exchange_index=0, publisher=publisher)


PUBLISHER = PublisherEntry(time=T, action="add", project="demo-project", publisher_id="p", provider="github",
                           config={}, actor="admin")
INCIDENT = IncidentEntry(time=T, incident_id="i", description="d", criteria={}, actor="a", revoked_tokens=[])


def test_kind_and_project() -> None:
    rule = parse_rule({"name": "r", "kind": "upload", "project": "Demo_Project"})
    assert rule.matches(upload())
    assert not rule.matches(upload(project="other"))
    assert not rule.matches(exchange())
    both = parse_rule({"name": "r", "project": "demo.project"})
    assert [both.matches(e) for e in (upload(), exchange(), PUBLISHER, INCIDENT)] == [True, True, True, False]


def test_identity_fields_of_exchanges_and_uploads() -> None:
    rule = parse_rule({"name": "r", "repository": "ME/Demo", "workflow": "release.yml"})
    assert rule.matches(exchange()) and rule.matches(upload())
    assert not rule.matches(exchange(workflow="other.yml")) and not rule.matches(upload(repository="x/y"))
    assert not rule.matches(PUBLISHER)
    env = parse_rule({"name": "r", "environment": ["pypi", "test"]})
    assert env.matches(upload(environment="pypi")) and not env.matches(upload())
    assert env.matches(exchange(environment="test")) and not env.matches(exchange(environment="other"))


def test_kid_and_owner_of_an_upload_come_from_its_exchange() -> None:
    rule = parse_rule({"name": "r", "kid": "k1", "repository_owner_id": "1"})
    assert rule.matches(exchange())
    assert not rule.matches(exchange(kid="k2"))
    assert not rule.matches(upload())  # the upload alone does not carry them
    assert rule.matches(upload(), exchange())
    assert not rule.matches(upload(), exchange(owner=2))


def test_unexpected_publisher() -> None:
    rules = parse_rules(
        """
[[rule]]
name = "demo by anyone else"
project = "demo-project"
unexpected_publisher = [{repository = "me/demo", workflow = "release.yml"},
                        {repository = "me/demo", workflow = "hotfix.yml", environment = "pypi"}]
"""
    )
    (rule,) = rules
    assert not rule.matches(upload())
    assert not rule.matches(upload(repository="Me/Demo"))
    assert rule.matches(upload(workflow="evil.yml"))
    assert rule.matches(upload(repository="attacker/demo"))
    assert rule.matches(upload(workflow="hotfix.yml"))  # environment missing
    assert not rule.matches(upload(workflow="hotfix.yml", environment="pypi"))
    assert not rule.matches(upload(project="other", workflow="evil.yml"))
    assert not rule.matches(exchange(workflow="evil.yml"))  # only uploads
    assert parse_rule(rule.to_json()) == rule


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"kind": "upload"}, "needs a name"),
        ({"name": "r"}, "names no criterion"),
        ({"name": "r", "colour": "red"}, "unknown field 'colour'"),
        ({"name": "r", "kind": "uplaod"}, "unknown kind"),
        ({"name": "r", "project": ""}, "project must be a non-empty"),
        ({"name": "r", "project": 3}, "project must be a non-empty"),
        ({"name": "r", "kid": []}, "kid must list"),
        ({"name": "r", "unexpected_publisher": [{"repository": "a/b"}]}, "needs a project"),
        ({"name": "r", "project": "p", "unexpected_publisher": [{"colour": "x"}]}, "unknown publisher field"),
        ({"name": "r", "project": "p", "unexpected_publisher": []}, "must list 1"),
    ],
)
def test_bad_rules_are_named(raw: dict, message: str) -> None:
    with pytest.raises(WatchRuleError, match=message):
        parse_rule(raw)


def test_bad_documents() -> None:
    with pytest.raises(WatchRuleError, match="not valid TOML"):
        parse_rules("[[rule]\n")
    with pytest.raises(WatchRuleError, match="two rules are named"):
        parse_rules('[[rule]]\nname="a"\nkind="upload"\n[[rule]]\nname="a"\nkind="exchange"\n')
    with pytest.raises(WatchRuleError, match="top-level"):
        parse_rules('name = "x"\n')
