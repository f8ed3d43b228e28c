"""GET /api/v1/projects/{project} and /{version} over a real socket, on SQLite and PostgreSQL.

Ground truth is what the test did: the receipts of its publisher changes and
uploads, and the claims its tokens were minted from. Every log reference in
a page is proven at the page's checkpoint through the public proof route.
"""

from __future__ import annotations

from sqlalchemy import event

from tests.e2e.provenance_support import PROJECT, mint, open_answer, upload, verify_reference

PUBLISHER = {"provider": "github", "repository": "octo-org/sampleproject", "repository_owner_id": "65432",
             "workflow": "release.yml", "environment": "pypi"}


def _page(service, path: str) -> dict:
    response = service.client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_project_page_lists_releases_files_and_publisher_history(service, tmp_path):
    admin = service.admin
    url = f"/api/v1/projects/{PROJECT}/publishers"
    added = service.client.post(url, json=PUBLISHER, headers=admin).json()
    pid = added["publisher"]["id"]
    main = mint(service)
    v1 = upload(service, main, tmp_path / "1", "1.0.0")
    v1_sdist = upload(service, main, tmp_path / "1s", "1.0.0", "sdist")
    service.clock.value += 60
    removed = service.client.delete(f"{url}/{pid}", headers=admin).json()
    service.clock.value += 60
    readded = service.client.post(url, json=PUBLISHER, headers={"Authorization": admin["Authorization"]}).json()
    staging_publisher = service.client.post(url, json={**PUBLISHER, "environment": "staging"}, headers=admin).json()
    v2 = upload(service, mint(service, environment="staging"), tmp_path / "2", "2.0.0")
    v3 = upload(service, mint(service), tmp_path / "3", "3.0.0")

    page = _page(service, "/api/v1/projects/SampleProject")  # normalized
    checkpoint = open_answer(service, page)
    assert page["project"] == PROJECT and checkpoint.size == service.log_size()

    # publisher history: add, remove, re-add (and the staging publisher), in log order, each provable
    history = page["publisher_history"]
    expected = [
        ("add", added, "admin"), ("remove", removed, "admin"), ("add", readded, "admin"), ("add", staging_publisher, "admin"),
    ]
    assert [(e["action"], e["index"]) for e in history] == [(a, r["receipt"]["index"]) for a, r, _ in expected]
    for event_, (action, answer, _) in zip(history, expected):
        entry = verify_reference(service, checkpoint, event_)
        assert entry["kind"] == "publisher" and entry["action"] == action
        assert event_["publisher_id"] == answer["publisher"]["id"] == entry["publisher_id"]
        assert (event_["provider"], event_["config"], event_["actor"], event_["time"]) == (
            entry["provider"], entry["config"], entry["actor"], entry["time"])
        assert event_["config"]["repository"] == "octo-org/sampleproject"

    # releases oldest first; files in log order; each file's references provable
    assert [r["version"] for r in page["releases"]] == ["1.0.0", "2.0.0", "3.0.0"]
    files = [f for r in page["releases"] for f in r["files"]]
    truth = [v1, v1_sdist, v2, v3]
    assert [f["filename"] for f in files] == [t.path.name for t in truth]
    for file, known in zip(files, truth):
        assert (file["sha256"], file["blake2b_256"], file["size"], file["packagetype"], file["uploaded_at"]) == (
            known.sha256, known.blake2b_256, known.size, known.packagetype, known.time)
        assert (file["upload"]["index"], file["exchange"]["index"]) == (known.index, known.exchange_index)
        upload_entry = verify_reference(service, checkpoint, file["upload"])
        exchange_entry = verify_reference(service, checkpoint, file["exchange"])
        assert upload_entry["sha256"] == known.sha256 and upload_entry["exchange_index"] == known.exchange_index
        assert exchange_entry["kind"] == "exchange"
        assert file["publisher"]["environment"] == known.claims["environment"]
        assert file["publisher"]["workflow_ref"] == known.claims["workflow_ref"]
        assert file["publisher"]["run_id"] == known.claims["run_id"]
        assert file["incidents"] == []

    # identity continuity per file, as in the provenance answers
    continuity = [(f["identity_continuity"]["changed"], (f["identity_continuity"]["previous_release"] or {}).get("filename"))
                  for f in files]
    assert continuity == [(False, None), (False, None), (True, v1_sdist.path.name), (True, v2.path.name)]
    for file in files:
        answer = _page(service, f"/api/v1/provenance/{file['sha256']}")["identity_continuity"]
        mine = file["identity_continuity"]
        assert {k: mine[k] for k in ("changed", "current", "previous")} == {
            k: answer[k] for k in ("changed", "current", "previous")}
        if mine["previous_release"] is not None:
            assert mine["previous_release"]["upload"]["index"] == answer["previous_release"]["upload"]["index"]


def test_release_page(service, tmp_path):
    service.add_github_publisher(PROJECT)
    publisher = mint(service)
    wheel = upload(service, publisher, tmp_path / "1", "1.0.0")
    sdist = upload(service, publisher, tmp_path / "1s", "1.0.0", "sdist")
    upload(service, publisher, tmp_path / "2", "2.0.0rc1")
    project = _page(service, f"/api/v1/projects/{PROJECT}")

    release = _page(service, f"/api/v1/projects/{PROJECT}/1.0.0")
    assert release["project"] == PROJECT and release["version"] == "1.0.0"
    assert [f["filename"] for f in release["files"]] == [wheel.path.name, sdist.path.name]
    assert release["files"] == project["releases"][0]["files"]
    open_answer(service, release)
    # versions are normalized as PEP 440 says
    assert _page(service, "/api/v1/projects/SAMPLEPROJECT/v1.0.0")["files"] == release["files"]
    assert _page(service, f"/api/v1/projects/{PROJECT}/2.0.0-RC.1")["version"] == "2.0.0rc1"

    for path, status, detail in (
        (f"/api/v1/projects/{PROJECT}/9.9", 404, f"project {PROJECT} has no release 9.9"),
        (f"/api/v1/projects/{PROJECT}/not a version", 400, "'not a version' is not a valid PEP 440 version"),
        ("/api/v1/projects/unknown-project/1.0.0", 404,
         "no project unknown-project: it has no files and never had a trusted publisher"),
        ("/api/v1/projects/-bad-/1.0.0", 400, None),
    ):
        response = service.client.get(path)
        assert response.status_code == status, (path, response.text)
        if detail is not None:
            assert response.json() == {"detail": detail}


def test_publishers_stays_the_admin_route(service, tmp_path):
    """`publishers` is no PEP 440 version, and the admin route is matched first."""
    service.add_github_publisher(PROJECT)
    upload(service, mint(service), tmp_path, "1.0.0")
    anonymous = service.client.get(f"/api/v1/projects/{PROJECT}/publishers")
    assert anonymous.status_code == 401
    admin = service.client.get(f"/api/v1/projects/{PROJECT}/publishers", headers=service.admin)
    assert admin.status_code == 200 and set(admin.json()) == {"publishers"}


def test_unknown_and_invalid_projects(service):
    response = service.client.get("/api/v1/projects/no-such-project")
    assert response.status_code == 404
    assert response.json() == {"detail": "no project no-such-project: it has no files and never had a trusted publisher"}
    assert service.client.get("/api/v1/projects/-bad-").status_code == 400
    assert service.client.get("/api/v1/projects/a%00b").status_code == 400


def test_project_with_publishers_only(service):
    service.add_github_publisher("future-project")
    page = _page(service, "/api/v1/projects/future-project")
    assert page["releases"] == [] and [e["action"] for e in page["publisher_history"]] == ["add"]
    assert service.client.get("/api/v1/projects/future-project/1.0").status_code == 404


def test_project_page_queries_do_not_grow_with_files(make_service, tmp_path, monkeypatch):
    """The page's own statements (incident coverage is the incidents service's cost)."""
    # the webhook worker's passes would be counted too: after its first, it sleeps past the test
    service = make_service(webhook_poll_interval=3600)
    monkeypatch.setattr(service.runtime.provenance, "incidents", None)
    service.add_github_publisher(PROJECT)
    engine = service.runtime.engine
    counts = []
    for round_ in range(2):
        for i in range(6 * round_ + 1):
            upload(service, mint(service), tmp_path / f"{round_}-{i}", f"{round_}.{i}.0")
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            page = _page(service, f"/api/v1/projects/{PROJECT}")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append((len(statements), sum(len(r["files"]) for r in page["releases"])))
    assert counts == [(3, 1), (3, 8)], counts  # files, their exchanges, publisher history


def test_a_project_created_by_another_process_is_found_at_once(make_service):
    here, there = make_service(), make_service()  # two processes' runtimes on one database
    assert here.client.get("/api/v1/projects/new-project").status_code == 404  # caches the checkpoint
    added = there.add_github_publisher("new-project")
    page = _page(here, "/api/v1/projects/new-project")
    assert [e["index"] for e in page["publisher_history"]] == [added["receipt"]["index"]]
    assert page["tree_size"] > added["receipt"]["index"]
