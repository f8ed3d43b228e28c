"""Public provenance API: where a file came from, and a project's releases and publisher history.

Answers come from app.services.provenance; each pins one signed checkpoint
(`checkpoint`, `tree_size`) and every log item in it is provable at that size.

`GET /api/v1/projects/{project}/{version}` has the same shape of path as the
admin route `GET /api/v1/projects/{project}/publishers`; that router is
registered first, so `publishers` reaches the admin route (it is no PEP 440
version, so no release is hidden by it).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api import openapi
from app.api.deps import RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["provenance"])

_PROVENANCE_DESCRIPTION = (
    "The file with this SHA-256 (64 hex digits; upper-case digits are accepted and mean the same digest): "
    "its release fields, its publisher identity (from the exchange that minted the upload token), "
    "its `upload` entry and that `exchange` entry, each with an inclusion proof at `tree_size`, "
    "the size of the signed `checkpoint` in the answer, and the incidents that cover it. "
    "`identity_continuity` compares (provider, repository case-insensitively, workflow, environment) "
    "of the upload's `publisher` with that of the project's previous release (the newest upload of "
    "another version logged before this one, also proven in the answer); `changed` is false for a first release."
)
_PROJECT_DESCRIPTION = (
    "Releases (oldest first) and their files in log order, each file with its publisher identity, "
    "the index and leaf hash of its upload and exchange entries, its identity continuity and its incidents; "
    "and every trusted-publisher add and remove of the project (index, leaf hash, time, actor, provider, config). "
    "Items carry no inclusion proofs: prove any of them at the answer's `tree_size` with "
    "`/api/v1/log/proof/inclusion?index=I&tree_size=N`, or fetch a file's provenance. "
    "The project name is normalized (PEP 503)."
)


@router.get(
    "/provenance/{sha256}",
    summary="Where a file came from, with proofs",
    description=_PROVENANCE_DESCRIPTION,
    responses={
        **openapi.errors({400: "not 64 hex digits", 404: "no uploaded file has that SHA-256"}),
        **openapi.INTEGRITY_FAILURE,
    },
)
def provenance(sha256: str, runtime: RuntimeDep) -> dict:
    return runtime.provenance.of_file(sha256)


@router.get(
    "/projects/{project}",
    summary="A project's releases, files, identities and trusted-publisher history",
    description=_PROJECT_DESCRIPTION,
    responses={
        **openapi.errors(
            {400: "not a valid project name", 404: "the project has no files and never had a trusted publisher"}
        ),
        **openapi.INTEGRITY_FAILURE,
    },
)
def project(project: str, runtime: RuntimeDep) -> dict:
    return runtime.provenance.project(project)


@router.get(
    "/projects/{project}/{version}",
    summary="One release of a project",
    description="The release's files, as in `GET /api/v1/projects/{project}`. The version is normalized (PEP 440).",
    responses={
        **openapi.errors(
            {
                400: "not a valid project name or PEP 440 version",
                404: "no such project, or the project has no release of that version",
            }
        ),
        **openapi.INTEGRITY_FAILURE,
    },
)
def release(project: str, version: str, runtime: RuntimeDep) -> dict:
    return runtime.provenance.release(project, version)
