"""Publisher claim rules per provider, positive and negative, and their configs."""

from __future__ import annotations

import pytest

from app.oidc.errors import InvalidPublisher
from app.oidc.publishers import (
    ActiveStatePublisher,
    GitHubPublisher,
    GitLabPublisher,
    GooglePublisher,
    PublisherConfigError,
    identity_summary,
    lookup_keys,
    publisher_from_config,
    select_publisher,
)
from tests.oidc.conftest import NOW
from tests.support.oidc_issuer import activestate_claims, github_claims, gitlab_claims, google_claims

GH = GitHubPublisher("octo-org/sampleproject", "65432", "release.yml", "pypi")
GL = GitLabPublisher("gl-group/sub", "sampleproject", ".gitlab-ci.yml", "production", "1111", "2222")
GOOG = GooglePublisher("publisher@example-project.iam.gserviceaccount.com", "111122223333444455556")
AS = ActiveStatePublisher("as-org", "sampleproject", "d0c4e5a1-0000-4000-8000-000000000001")


def refused(publisher, claims, match):
    with pytest.raises(InvalidPublisher, match=match) as info:
        publisher.check(claims)
    assert info.value.code == "invalid-publisher"
    return info.value


# -- GitHub ---------------------------------------------------------------------------


def test_github_accepts_matching_token():
    GH.check(github_claims(now=NOW))


def test_github_case_insensitive_repository_and_environment():
    claims = github_claims(now=NOW, repository="Octo-Org/SampleProject", environment="PyPI")
    GH.check(claims)
    GitHubPublisher("OCTO-ORG/SAMPLEPROJECT", "65432", "release.yml", "PYPI").check(github_claims(now=NOW))


def test_github_without_environment_accepts_any_environment():
    GitHubPublisher("octo-org/sampleproject", "65432", "release.yml").check(github_claims(now=NOW, environment=None))
    GitHubPublisher("octo-org/sampleproject", "65432", "release.yml").check(github_claims(now=NOW))


def test_github_other_repository():
    refused(GH, github_claims(now=NOW, repository="octo-org/other"), "sub|repository")


def test_github_repository_claim_alone_mismatching():
    refused(GH, github_claims(now=NOW, repository="octo-org/other", sub="repo:octo-org/sampleproject:ref:x"), "'repository'|repository claim")


def test_github_owner_id_mismatch_resurrected_owner():
    err = refused(GH, github_claims(now=NOW, repository_owner_id="99999"), "repository_owner_id")
    assert "65432" not in err.description  # configured value never echoed


def test_github_owner_id_as_int_claim():
    GH.check(github_claims(now=NOW, repository_owner_id=65432))


def test_github_other_workflow_file():
    refused(GH, github_claims(now=NOW, workflow="ci.yml"), "job_workflow_ref")


def test_github_workflow_filename_is_case_sensitive():
    refused(GH, github_claims(now=NOW, workflow="Release.yml"), "job_workflow_ref")


def test_github_reusable_workflow_from_another_repository():
    claims = github_claims(now=NOW)
    claims["job_workflow_ref"] = "octo-org/shared-workflows/.github/workflows/release.yml@refs/tags/v1.0.0"
    refused(GH, claims, "another repository")


def test_github_reusable_workflow_in_same_repository_accepted():
    # The caller's workflow is ci.yml; the job runs the reusable release.yml of the same repo.
    claims = github_claims(now=NOW, workflow="release.yml")
    claims["workflow_ref"] = "octo-org/sampleproject/.github/workflows/ci.yml@refs/tags/v1.0.0"
    GH.check(claims)


def test_github_job_workflow_ref_case_insensitive_repository_part():
    claims = github_claims(now=NOW)
    claims["job_workflow_ref"] = "Octo-Org/SampleProject/.github/workflows/release.yml@refs/tags/v1.0.0"
    GH.check(claims)


def test_github_job_workflow_ref_at_sha_when_ref_empty():
    claims = github_claims(now=NOW, ref="")
    claims["job_workflow_ref"] = f"octo-org/sampleproject/.github/workflows/release.yml@{'a' * 40}"
    GH.check(claims)


def test_github_job_workflow_ref_at_a_foreign_ref():
    claims = github_claims(now=NOW)
    claims["job_workflow_ref"] = "octo-org/sampleproject/.github/workflows/release.yml@refs/heads/evil"
    refused(GH, claims, "job_workflow_ref")


def test_github_ref_and_sha_both_empty():
    refused(GH, github_claims(now=NOW, ref="", sha=""), "ref and sha")


def test_github_pull_request_target_refused():
    refused(GH, github_claims(now=NOW, event_name="pull_request_target"), "pull_request_target")
    GH.check(github_claims(now=NOW, event_name="release"))


def test_github_environment_mismatch_and_missing():
    refused(GH, github_claims(now=NOW, environment="staging"), "environment")
    refused(GH, github_claims(now=NOW, environment=None), "no environment claim")


@pytest.mark.parametrize("claim", ["sub", "repository", "repository_owner", "repository_owner_id", "job_workflow_ref", "ref", "sha"])
def test_github_missing_required_claim_fails_closed(claim):
    refused(GH, github_claims(now=NOW, **{claim: None}), f"required claim '{claim}'")


def test_github_sub_malformed():
    refused(GH, github_claims(now=NOW, sub="octo-org/sampleproject"), "sub")
    refused(GH, github_claims(now=NOW, sub="repo:octo-org/other:ref:refs/heads/main"), "sub")


# -- GitLab ---------------------------------------------------------------------------


def test_gitlab_accepts_matching_token():
    GL.check(gitlab_claims(now=NOW))
    GitLabPublisher("gl-group/sub", "sampleproject", ".gitlab-ci.yml").check(gitlab_claims(now=NOW, environment=None))


def test_gitlab_case_insensitive_project_path():
    claims = gitlab_claims(now=NOW, namespace="GL-Group/Sub", project="SampleProject")
    GL.check(claims)


def test_gitlab_other_project():
    refused(GL, gitlab_claims(now=NOW, project="other"), "sub|project_path")


def test_gitlab_other_pipeline_file():
    refused(GL, gitlab_claims(now=NOW, workflow_filepath="ci/release.yml"), "ci_config_ref_uri")


def test_gitlab_nested_pipeline_file_and_sha_ref():
    pub = GitLabPublisher("gl-group/sub", "sampleproject", "ci/release.yml")
    claims = gitlab_claims(now=NOW, workflow_filepath="ci/release.yml")
    pub.check(claims)
    claims["ci_config_ref_uri"] = f"gitlab.com/gl-group/sub/sampleproject//ci/release.yml@{'b' * 40}"
    pub.check(claims)


def test_gitlab_pipeline_file_from_another_project():
    claims = gitlab_claims(now=NOW)
    claims["ci_config_ref_uri"] = "gitlab.com/other/templates//.gitlab-ci.yml@refs/heads/main"
    refused(GL, claims, "ci_config_ref_uri")


def test_gitlab_environment_is_case_sensitive():
    refused(GL, gitlab_claims(now=NOW, environment="Production"), "environment")
    refused(GL, gitlab_claims(now=NOW, environment=None), "no environment claim")


def test_gitlab_ids_pinned():
    refused(GL, gitlab_claims(now=NOW, namespace_id="9"), "namespace_id")
    refused(GL, gitlab_claims(now=NOW, project_id="9"), "project_id")
    refused(GL, gitlab_claims(now=NOW, project_id=None), "no project_id claim")
    unpinned = GitLabPublisher("gl-group/sub", "sampleproject", ".gitlab-ci.yml", "production")
    unpinned.check(gitlab_claims(now=NOW, project_id="9", namespace_id="9"))


@pytest.mark.parametrize("claim", ["sub", "project_path", "ci_config_ref_uri", "ref_path", "sha"])
def test_gitlab_missing_required_claim_fails_closed(claim):
    refused(GL, gitlab_claims(now=NOW, **{claim: None}), f"required claim '{claim}'")


# -- Google -----------------------------------------------------------------------------


def test_google_rules():
    GOOG.check(google_claims(now=NOW))
    GooglePublisher("publisher@example-project.iam.gserviceaccount.com").check(google_claims(now=NOW, sub="other"))
    refused(GOOG, google_claims(now=NOW, sub="other"), "sub")
    refused(GOOG, google_claims(now=NOW, email="x@example.com"), "email")
    refused(GOOG, google_claims(now=NOW, email_verified=False), "email_verified")
    refused(GOOG, google_claims(now=NOW, email_verified="true"), "email_verified")
    refused(GOOG, google_claims(now=NOW, email_verified=None), "required claim 'email_verified'")
    refused(GOOG, google_claims(now=NOW, email=None), "required claim 'email'")


def test_google_email_is_exact():
    refused(GOOG, google_claims(now=NOW, email="Publisher@example-project.iam.gserviceaccount.com"), "email")


# -- ActiveState ----------------------------------------------------------------------------


def test_activestate_rules():
    AS.check(activestate_claims(now=NOW))
    refused(AS, activestate_claims(now=NOW, builder="other-builder"), "builder")
    refused(AS, activestate_claims(now=NOW, actor_id="someone-else"), "actor_id")
    refused(AS, activestate_claims(now=NOW, organization="other", sub="org:as-org:project:sampleproject"), "organization")
    refused(AS, activestate_claims(now=NOW, project="other"), "sub")
    refused(AS, activestate_claims(now=NOW, sub="org:as-org"), "sub")


@pytest.mark.parametrize("claim", ["sub", "organization", "project", "actor_id", "builder"])
def test_activestate_missing_required_claim_fails_closed(claim):
    refused(AS, activestate_claims(now=NOW, **{claim: None}), f"required claim '{claim}'")


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("publisher", [GH, GL, GOOG, AS, GitHubPublisher("a/b", "1", "x.yaml")])
def test_config_round_trip(publisher):
    assert publisher_from_config(publisher.provider, publisher.to_config()) == publisher


@pytest.mark.parametrize(
    "provider, config, field",
    [
        ("github", {"repository": "no-slash", "repository_owner_id": "1", "workflow": "r.yml"}, "repository"),
        ("github", {"repository": "a/b/c", "repository_owner_id": "1", "workflow": "r.yml"}, "repository"),
        ("github", {"repository": "a/..", "repository_owner_id": "1", "workflow": "r.yml"}, "repository"),
        ("github", {"repository": "a/b", "repository_owner_id": "12a", "workflow": "r.yml"}, "repository_owner_id"),
        ("github", {"repository": "a/b", "repository_owner_id": True, "workflow": "r.yml"}, "repository_owner_id"),
        ("github", {"repository": "a/b", "repository_owner_id": "1", "workflow": ".github/workflows/r.yml"}, "workflow"),
        ("github", {"repository": "a/b", "repository_owner_id": "1", "workflow": "r.json"}, "workflow"),
        ("github", {"repository": "a/b", "repository_owner_id": "1", "workflow": ".yml"}, "workflow"),
        ("github", {"repository": "a/b", "repository_owner_id": "1"}, "workflow"),
        ("github", {"repository": "a/b", "repository_owner_id": "1", "workflow": "r.yml", "environment": " x"}, "environment"),
        ("github", {"repository": "a/b", "repository_owner_id": "1", "workflow": "r.yml", "branch": "main"}, "branch"),
        ("gitlab", {"namespace": "g", "project": "p/q", "workflow_filepath": "a.yml"}, "project"),
        ("gitlab", {"namespace": "g", "project": "p", "workflow_filepath": "/abs.yml"}, "workflow_filepath"),
        ("gitlab", {"namespace": "g", "project": "p", "workflow_filepath": "../x.yml"}, "workflow_filepath"),
        ("gitlab", {"namespace": "g", "project": "p", "workflow_filepath": "a.yml", "project_id": "x"}, "project_id"),
        ("google", {"email": "not-an-email"}, "email"),
        ("activestate", {"organization": "o", "project": "p", "actor_id": "a:b"}, "actor_id"),
        ("nosuch", {}, "provider"),
    ],
)
def test_config_errors_name_the_field(provider, config, field):
    with pytest.raises(PublisherConfigError) as info:
        publisher_from_config(provider, config)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_config_normalises_ids_and_empty_environment():
    pub = publisher_from_config(
        "github", {"repository": "a/b", "repository_owner_id": 7, "workflow": "r.yml", "environment": ""}
    )
    assert pub == GitHubPublisher("a/b", "7", "r.yml", None)


# -- lookup and selection -----------------------------------------------------------------------


def test_lookup_keys_match_stored_keys():
    assert lookup_keys("github", github_claims(now=NOW, repository="Octo-Org/SampleProject")) == [GH.lookup_key]
    assert lookup_keys("gitlab", gitlab_claims(now=NOW)) == [GL.lookup_key]
    assert lookup_keys("google", google_claims(now=NOW)) == [GOOG.lookup_key]
    assert lookup_keys("activestate", activestate_claims(now=NOW)) == [AS.lookup_key]
    with pytest.raises(InvalidPublisher, match="repository"):
        lookup_keys("github", github_claims(now=NOW, repository=None))


def test_select_prefers_environment_specific_publisher():
    general = GitHubPublisher("octo-org/sampleproject", "65432", "release.yml")
    assert select_publisher([general, GH], github_claims(now=NOW)) is GH
    assert select_publisher([general, GH], github_claims(now=NOW, environment="other")) is general
    with pytest.raises(InvalidPublisher, match="environment"):
        select_publisher([GH], github_claims(now=NOW, environment="other"))
    with pytest.raises(InvalidPublisher, match="no trusted publisher is configured"):
        select_publisher([], github_claims(now=NOW))


def test_identity_summary():
    gh = identity_summary("https://token.actions.githubusercontent.com", "github", github_claims(now=NOW))
    assert gh == {
        "issuer": "https://token.actions.githubusercontent.com",
        "provider": "github",
        "repository": "octo-org/sampleproject",
        "workflow": "release.yml",
        "ref": "refs/tags/v1.0.0",
        "sha": "a" * 40,
        "environment": "pypi",
    }
    gl = identity_summary("https://gitlab.com", "gitlab", gitlab_claims(now=NOW, workflow_filepath="ci/r.yml"))
    assert (gl["repository"], gl["workflow"], gl["ref"]) == ("gl-group/sub/sampleproject", "ci/r.yml", "refs/heads/main")
    assert identity_summary("g", "google", google_claims(now=NOW))["email"].startswith("publisher@")
    assert identity_summary("a", "activestate", activestate_claims(now=NOW))["repository"] == "as-org/sampleproject"
