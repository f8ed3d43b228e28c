"""Reason phrases over a real socket: uvicorn + ReasonH11Protocol."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.api.reason_phrase import ReasonH11Protocol, ReasonResponse, encode_reason

EXISTS = ("File already exists ('demo_pkg-1.0.tar.gz', with blake2_256 hash 'ab'). "
          "See https://pypi.org/help/#file-name-reuse for more information.")


async def exists(request):
    return ReasonResponse(400, EXISTS)


async def plain(request):
    return PlainTextResponse("nope", status_code=404)


async def inject(request):
    return ReasonResponse(400, "bad\r\nX-Injected: yes\r\n\r\nbody")


async def unicode(request):
    return ReasonResponse(400, "Ünïcode ✓ name")


async def json_body(request):
    return ReasonResponse(403, "Invalid token.", content=b'{"message":"Invalid token."}', media_type="application/json")


async def extension(request):
    return PlainTextResponse(str("pubtrail.reason_phrase" in request.scope.get("extensions", {})))


app = Starlette(routes=[
    Route("/exists", exists, methods=["POST", "GET"]),
    Route("/plain", plain),
    Route("/inject", inject),
    Route("/unicode", unicode),
    Route("/json", json_body),
    Route("/ext", extension),
])


@pytest.fixture(scope="module")
def base_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=ReasonH11Protocol, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_custom_reason_phrase(base_url: str) -> None:
    with httpx.Client() as client:
        response = client.get(base_url + "/exists")
        assert response.status_code == 400
        assert response.reason_phrase == EXISTS
        assert response.text == EXISTS + "\n"
        # keep-alive: the next response on the same connection is back to normal
        response = client.get(base_url + "/plain")
        assert (response.status_code, response.reason_phrase) == (404, "Not Found")


def test_standard_phrase_without_key(base_url: str) -> None:
    response = httpx.get(base_url + "/plain")
    assert (response.status_code, response.reason_phrase, response.text) == (404, "Not Found", "nope")


def test_crlf_injection_neutralised(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/inject")
    response = conn.getresponse()
    assert response.status == 400
    assert response.reason == "bad X-Injected: yes body"
    assert response.getheader("X-Injected") is None
    conn.close()


def test_non_latin1_replaced(base_url: str) -> None:
    # latin-1 letters are sent as latin-1 bytes (what PyPI does); others become "?"
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/unicode")
    response = conn.getresponse()
    assert response.reason == "Ünïcode ? name"  # http.client decodes iso-8859-1
    assert response.read().decode() == "Ünïcode ✓ name\n"  # the body keeps full UTF-8
    conn.close()


def test_custom_body(base_url: str) -> None:
    response = httpx.get(base_url + "/json")
    assert (response.status_code, response.reason_phrase) == (403, "Invalid token.")
    assert response.json() == {"message": "Invalid token."}


def test_scope_extension_advertised(base_url: str) -> None:
    assert httpx.get(base_url + "/ext").text == "True"


def test_requests_sees_reason_like_twine(base_url: str) -> None:
    requests = pytest.importorskip("requests")
    response = requests.post(base_url + "/exists", data=b"x")
    assert response.reason == EXISTS
    with pytest.raises(requests.HTTPError, match="400 Client Error: File already exists"):
        response.raise_for_status()


def test_encode_reason() -> None:
    assert encode_reason("a\r\nb\tc\x7fd") == b"a b c d"
    assert encode_reason("x" * 5000).endswith(b"...") and len(encode_reason("x" * 5000)) == 1024


def test_twine_skip_existing_end_to_end(tmp_path) -> None:
    """The pieces wired like the future /legacy/ route; real twine, real socket."""
    import subprocess
    import sys

    from starlette.requests import Request

    from app.distributions.blobs import BlobStore
    from app.distributions.errors import UploadError, file_already_exists
    from app.distributions.form import parse_upload_form
    from app.distributions.validate import (
        check_action, check_archive, check_content_type, check_digests, validate_filename,
        validate_metadata_fields,
    )
    from tests.distributions.builders import build_wheel

    store = BlobStore(tmp_path / "blobs")
    seen: dict[str, str] = {}

    async def legacy(request: Request):
        form = None
        try:
            form = await parse_upload_form(request.stream(), request.headers.get("content-type"),
                                           max_file_size=10 << 20, spool_dir=store.spool_dir)
            check_action(form.fields)
            meta = validate_metadata_fields(form.fields)
            if form.file is None:
                raise UploadError(400, "Upload payload does not have a file.")
            validate_filename(form.file.filename, meta.name, meta.version, meta.filetype)
            check_content_type(form.file.content_type)
            check_digests(form.fields, form.file)
            if form.file.filename in seen:
                raise file_already_exists(form.file.filename, form.file.blake2b_256)
            check_archive(form.file.path, form.file.filename)
            store.commit(form.file)
            seen[form.file.filename] = form.file.sha256
            return PlainTextResponse("OK")
        except UploadError as exc:
            if form is not None:
                form.discard()
            return ReasonResponse(exc.status, exc.reason)

    upload_app = Starlette(routes=[Route("/legacy/", legacy, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(upload_app, http=ReasonH11Protocol, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    wheel = build_wheel(tmp_path / "demo_pkg-1.0-py3-none-any.whl")
    cmd = [sys.executable, "-m", "twine", "upload", "--repository-url", f"http://127.0.0.1:{port}/legacy/",
           "-u", "__token__", "-p", "pypi-x", "--disable-progress-bar", "--non-interactive", str(wheel)]
    try:
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stdout + first.stderr
        assert store.exists(seen["demo_pkg-1.0-py3-none-any.whl"])
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1
        assert "File already exists ('demo_pkg-1.0-py3-none-any.whl'" in again.stdout + again.stderr
        # twine 7 refuses --skip-existing for any URL but (test.)pypi.org, so
        # check its decision function directly on our real response instead.
        import requests
        from twine.commands.upload import skip_upload

        with open(wheel, "rb") as fh:
            response = requests.post(f"http://127.0.0.1:{port}/legacy/", files={"content": (wheel.name, fh, "application/octet-stream")}, data={
                ":action": "file_upload", "protocol_version": "1", "metadata_version": "2.1",
                "name": "demo-pkg", "version": "1.0", "filetype": "bdist_wheel", "pyversion": "py3",
                "sha256_digest": seen["demo_pkg-1.0-py3-none-any.whl"]})
        assert response.status_code == 400 and response.reason.startswith("File already exists (")
        assert skip_upload(response, True, package=None)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert list(store.spool_dir.iterdir()) == []
