"""identity_fields: one vocabulary for every provider, read from logged claims only."""

from __future__ import annotations

import pytest

from app.oidc.identity import FIELDS, identity_fields, query_key
from app.oidc.providers import identity_claims
from tests.support.oidc_issuer import activestate_claims, github_claims, gitlab_claims, google_claims

NOW = 1_790_000_000


def _fields(provider, claims):
    # what an exchange entry keeps is all identity_fields may rely on
    return identity_fields("https://issuer.example", provider, identity_claims(provider, claims))


def test_github():
    claims = github_claims(now=NOW, repository="Octo-Org/App", workflow="release.yml", environment="pypi")
    claims.update(run_id="123", run_attempt="2", actor="octocat")
    fields = _fields("github", claims)
    assert set(fields) == set(FIELDS)
    assert fields["repository"] == "Octo-Org/App"
    assert fields["repository_owner_id"] == "65432"
    assert fields["workflow"] == "release.yml"
    assert fields["job_workflow_ref"] == "Octo-Org/App/.github/workflows/release.yml@refs/tags/v1.0.0"
    assert fields["ref"] == "refs/tags/v1.0.0" and fields["sha"] == "a" * 40
    assert (fields["environment"], fields["run_id"], fields["run_attempt"], fields["actor"]) == ("pypi", "123", "2", "octocat")
    assert fields["subject"] == claims["sub"] and fields["provider"] == "github"


def test_gitlab():
    fields = _fields("gitlab", gitlab_claims(now=NOW, workflow_filepath="ci/release.yml", ref="main"))
    assert fields["repository"] == "gl-group/sub/sampleproject"
    assert fields["repository_owner_id"] == "1111"
    assert fields["workflow"] == "ci/release.yml"
    assert fields["workflow_ref"] == fields["job_workflow_ref"]
    assert fields["workflow_ref"].endswith("//ci/release.yml@refs/heads/main")
    assert fields["ref"] == "refs/heads/main" and fields["sha"] == "b" * 40
    assert fields["environment"] == "production" and fields["actor"] == "gl-user"


def test_google_and_activestate():
    google = _fields("google", google_claims(now=NOW))
    assert google["actor"] == "publisher@example-project.iam.gserviceaccount.com"
    assert google["repository"] is None and google["workflow"] is None
    active = _fields("activestate", activestate_claims(now=NOW))
    assert active["repository"] == "as-org/sampleproject" and active["actor"] == "as-user"
    assert active["repository_owner_id"] == "7e0c3a3b-0000-4000-8000-000000000002"


@pytest.mark.parametrize("claims", [{}, {"repository": None, "run_attempt": True, "sha": ""}])
def test_absent_or_odd_claims_give_none_or_text(claims):
    fields = identity_fields("i", "github", claims)
    assert fields["repository"] is None and fields["sha"] is None and fields["workflow"] is None
    assert fields["run_attempt"] in (None, "true")


def test_query_keys_fold_only_case_insensitive_fields():
    assert query_key("repository", "Octo-Org/App") == "octo-org/app"
    assert query_key("workflow", "Release.yml") == "Release.yml"
    assert query_key("repository", None) is None
