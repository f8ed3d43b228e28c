"""HEAD on an uploaded file and its project page: GET's status and headers, no body."""

from __future__ import annotations

from tests.e2e.test_upload import PROJECT, _post, build_wheel


def test_head_on_a_stored_file_and_its_project_page(service, tmp_path):
    service.add_github_publisher(PROJECT)
    wheel = build_wheel(tmp_path, payload=b"p" * 50_000)
    assert _post(service, wheel, token=service.upload_token()).status_code == 200
    page = service.client.get(f"/simple/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    url = page.json()["files"][0]["url"]
    for path in (url, f"/simple/{PROJECT}/"):
        get = service.client.get(path)
        head = service.client.head(path)
        assert (get.status_code, head.status_code) == (200, 200), path
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content))
        assert head.headers.get("cache-control") == get.headers.get("cache-control")
    assert int(service.client.head(url).headers["content-length"]) == wheel.stat().st_size
