"""What the HTTP edge answers: HEAD, Allow, odd paths, the front page and the docs."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from app.api.home_routes import prefers_json
from app.api.methods import HeadAwareFileResponse, MethodsMiddleware
from tests.conftest import ORIGIN
from tests.support.server import serve


def test_head_answers_like_get_without_a_body(edge):
    edge.add_publisher()  # entry 0
    for path in (
        "/checkpoint",
        "/tile/0/000.p/1",
        "/tile/entries/000.p/1",
        "/api/v1/log",
        "/api/v1/log/entries/0",
        "/simple/",
        "/healthz",
        "/",
    ):
        get = edge.client.get(path)
        head = edge.client.head(path)
        assert get.status_code == 200, path
        assert head.status_code == 200, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers["content-length"] == get.headers["content-length"], path  # as sent (gzip or not)
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert edge.client.head("/api/v1/log/entries/99").status_code == 404


def test_head_on_a_file_sends_its_headers_only(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * 100_000)

    async def download(_request):
        return HeadAwareFileResponse(blob, media_type="application/octet-stream")

    app = Starlette(routes=[Route("/f", download, methods=["GET"])])
    app.add_middleware(MethodsMiddleware, routes=lambda: app.routes)
    with serve(app) as url, httpx.Client(base_url=url) as client:
        head = client.head("/f")
        assert head.status_code == 200
        assert head.headers["content-length"] == "100000"
        assert head.content == b""
        assert client.get("/f").content == blob.read_bytes()


def test_allow_lists_every_method_of_the_path(edge):
    publishers = "/api/v1/projects/demo/publishers"
    for method in ("OPTIONS", "PUT", "PATCH"):
        response = edge.client.request(method, publishers)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, HEAD, POST", method
    response = edge.client.request("OPTIONS", "/checkpoint")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert edge.client.post("/_/oidc/audience").headers["allow"] == "GET, HEAD"
    assert edge.client.get("/_/oidc/mint-token").headers["allow"] == "POST"


def test_a_name_that_cannot_be_a_project_is_404_not_a_redirect(edge):
    for path in ("/simple/a%25%255C/", "/simple/a%25%255C", "/simple/a%25/", "/simple/-x-/", "/simple/a%20b/"):
        response = edge.client.get(path, follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code, response.headers.get("location"))
    # real names are still normalised
    response = edge.client.get("/simple/Demo_Project/", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/simple/demo-project/"


def test_a_tile_has_one_url(edge):
    edge.add_publisher()
    assert edge.client.get("/tile/0/000.p/1").status_code == 200
    assert edge.client.get("/tile/entries/000.p/1").status_code == 200
    for encoded in ("/tile/0%2F000.p%2F1", "/tile/0/000.p%2F1", "/tile/entries%2F000.p/1", "/tile/0/%30%30%30.p/1"):
        response = edge.client.get(encoded)
        assert response.status_code == 404, encoded
        assert response.headers["content-type"] == "application/json"


def test_front_page_html_and_json(edge):
    edge.add_publisher()
    key = edge.client.get("/api/v1/log").json()["verifier_key"]
    page = edge.client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert ORIGIN in page.text and key in page.text and "1 entries" in page.text
    for path in ("/checkpoint", "/api/v1/log", "/simple/", "/docs"):
        assert f"<code>{path}</code>" in page.text
    as_json = edge.client.get("/", headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json"
    info = as_json.json()
    assert (info["origin"], info["size"], info["verifier_key"]) == (ORIGIN, 1, key)
    assert {"/checkpoint", "/simple/", "/docs", "/_/oidc/mint-token"} <= set(info["endpoints"])
    assert as_json.headers["vary"] == "Accept"


def test_accept_ranking():
    assert prefers_json("application/json")
    assert prefers_json("application/json, text/html;q=0.5")
    assert not prefers_json("text/html, application/json;q=0.9")
    assert not prefers_json(None)
    assert not prefers_json("*/*")
    assert not prefers_json("application/json;q=0")
    assert prefers_json("application/*")
    assert not prefers_json("application/json;q=x, text/html")


def test_docs_pages_load_nothing_from_another_host(edge):
    for page in ("/docs", "/redoc"):
        response = edge.client.get(page)
        assert response.status_code == 200, page
        html = response.text
        assert not re.search(r"""(https?:)?//[a-z0-9.-]+""", html, re.I), (page, html)
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, page
        for asset in assets:
            fetched = edge.client.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 1000, asset
    assert "validatorUrl" in edge.client.get("/docs").text  # no call to validator.swagger.io either
