"""The explorer in headless Chromium against `pubtrail serve` with a seeded log: search,
verification in the browser (and its failure on tampered bytes), the blast-radius form
and its CSV, and the verifier's known answers. Screenshots of each page are saved."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import httpx
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails (or skips) every test and says why
    expect = None
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ADMIN_TOKEN
from tests.e2e.blast_corpus import expected
from tests.support.server import serve
from tests.web.conftest import screenshot

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "tlog" / "testdata" / "rfc6962_tree.json").read_text())
# golang.org/x/mod/sumdb/note's test key and note (also in tests/tlog/test_note.py)
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def badge(page, timeout: float = 45_000) -> tuple[str, str]:
    """Wait for the verification badge to settle; (state, reason)."""
    page.wait_for_selector('#verification[data-state=verified], #verification[data-state=failed]', timeout=timeout)
    element = page.locator("#verification")
    return element.get_attribute("data-state"), element.locator(".badge-reason").inner_text()


def test_status_page_verifies_the_checkpoint(server, seeded, page, artifacts):
    page.goto(server + "/")
    state, reason = badge(page)
    assert state == "verified", reason
    assert "pin it" in reason and "15 recent entries proven" in reason
    assert page.locator("#server-key").input_value() == seeded.verifier_key
    assert f"{seeded.size} entries" in page.locator("main").inner_text()
    assert page.locator("svg.chart rect").count() > 0
    assert page.locator("table tbody tr").count() == 15
    screenshot(page, artifacts, "status")
    # keyboard: the first Tab reaches the skip link, the next ones the navigation and the search box
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    for _ in range(4):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    # pinning the server's key: pages now say they checked against the pinned key
    page.click("#pin-server-key")
    assert page.locator("#pinned-key").input_value() == seeded.verifier_key
    state, reason = badge(page)
    assert state == "verified" and "your pinned key" in reason
    assert page.script_errors == []


def test_searching_a_hash_lands_on_the_verified_file_page(server, seeded, page, artifacts):
    wheel = seeded.files[1]
    page.goto(server + "/")
    page.fill("#q", wheel.sha256)
    page.press("#q", "Enter")
    page.wait_for_url(f"**/file/{wheel.sha256}")
    state, reason = badge(page)
    assert state == "verified", reason
    assert page.locator("#verification .badge-word").text_content() == "verified"
    assert "3 entries proven" in reason  # upload, exchange and the previous release's upload
    main = page.locator("main").inner_text()
    assert wheel.path.name in main and "octo-org/sampleproject" in main and "release.yml" in main
    screenshot(page, artifacts, "file")
    assert page.script_errors == []


def test_search_box_routes_each_kind_of_query(server, seeded, page):
    first = seeded.files[0]
    for query, landing in (
        (first.path.name, f"/file/{first.sha256}"),
        (str(first.index), f"/entry/{first.index}"),
        ("SampleProject", "/project/sampleproject"),
        ("octo-org/app-1", "/blast-radius?repository=octo-org%2Fapp-1"),
    ):
        page.goto(server + "/")
        page.fill("#q", query)
        page.press("#q", "Enter")
        page.wait_for_load_state()
        assert page.url == server + landing, query
    page.goto(server + "/search?q=" + "no%20such%20thing!")
    assert page.locator("h1").inner_text() == "400"


class Tamper:
    """A test double in front of the real server that alters answers of the JSON API."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.mode = "none"

    async def handle(self, request: Request) -> Response:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with httpx.AsyncClient(base_url=self.upstream) as client:
            upstream = await client.get(path, headers={"Accept": request.headers.get("accept", "*/*")})
        body = upstream.content
        if request.url.path.startswith("/api/v1/") and upstream.status_code == 200 and self.mode != "none":
            body = json.dumps(self.alter(upstream.json())).encode()
        if request.url.path.startswith("/file/") and self.mode == "html":
            body = body.replace(b"octo-org/sampleproject</a>", b"octo-org/trusted-project</a>")  # the page lies
        headers = {k: v for k, v in upstream.headers.items()
                   if k.lower() in ("content-type", "content-security-policy", "cache-control")}
        return Response(body, status_code=upstream.status_code, headers=headers)

    def alter(self, answer: dict) -> dict:
        item = answer.get("upload") or answer
        if self.mode == "entry" and "entry_bytes" in item:
            raw = bytearray(base64.b64decode(item["entry_bytes"]))
            at = raw.index(b'"time":"') + len(b'"time":"') + 3  # the year's last digit
            raw[at] = ord("9") if raw[at] != ord("9") else ord("8")  # one byte: still valid JSON
            item["entry_bytes"] = base64.b64encode(bytes(raw)).decode()
        if self.mode == "proof" and "inclusion_proof" in item:
            hashes = item["inclusion_proof"]["hashes"]
            hashes[0] = ("0" if hashes[0][0] != "0" else "1") + hashes[0][1:]
        if self.mode == "signature" and "checkpoint" in answer:
            lines = answer["checkpoint"].split("\n")
            lines[1] = str(int(lines[1]) + 1)  # the size the log never signed
            answer["checkpoint"] = "\n".join(lines)
        return answer


@pytest.fixture(scope="module")
def tampering(server):
    double = Tamper(server)
    app = Starlette(routes=[Route("/{path:path}", double.handle, methods=["GET"])])
    with serve(app) as url:
        double.url = url
        yield double


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("entry", "the upload entry: its bytes do not hash to its leaf hash"),
        ("proof", "the upload entry: its inclusion proof does not lead to the signed root"),
        ("signature", "does not verify"),
        ("html", 'the page shows publisher repository "octo-org/trusted-project" but the verified entry says '
                 '"octo-org/sampleproject"'),
    ],
)
def test_a_tampered_answer_shows_failed_with_the_reason(tampering, seeded, page, artifacts, mode, reason):
    wheel = seeded.files[0]
    tampering.mode = mode
    try:
        page.goto(f"{tampering.url}/file/{wheel.sha256}")
        state, said = badge(page)
    finally:
        tampering.mode = "none"
    assert state == "failed", said
    assert page.locator("#verification .badge-word").text_content() == "failed"
    assert reason in said
    screenshot(page, artifacts, f"file-tampered-{mode}")


def test_a_tampered_recent_entry_fails_the_status_page(tampering, page):
    tampering.mode = "entry"
    try:
        page.goto(tampering.url + "/")
        state, said = badge(page)
    finally:
        tampering.mode = "none"
    assert state == "failed", said
    assert "its bytes do not hash to its leaf hash" in said


def test_a_changed_server_key_fails_against_the_pinned_key(server, seeded, page):
    page.goto(server + "/")
    other = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    page.fill("#pinned-key", other)
    page.click("#pin-typed-key")
    page.goto(f"{server}/file/{seeded.files[0].sha256}")
    state, reason = badge(page)
    assert state == "failed"
    assert "not the key pinned in this browser" in reason


def test_project_and_entry_pages(server, seeded, page, artifacts):
    page.goto(server + "/project/sampleproject")
    state, reason = badge(page)
    assert state == "verified", reason
    assert page.locator("#files tbody tr").count() == 2
    assert page.locator("#identities li").count() == 1
    assert page.locator("#publisher-history tbody tr").count() == 1
    screenshot(page, artifacts, "project")
    page.click(f"text={seeded.files[0].path.name}")
    page.wait_for_url(f"**/file/{seeded.files[0].sha256}")
    assert badge(page)[0] == "verified"
    page.goto(f"{server}/entry/{seeded.files[0].index}")
    state, reason = badge(page)
    assert state == "verified", reason
    assert seeded.files[0].sha256 in page.locator("#raw-entry").inner_text()
    screenshot(page, artifacts, "entry")
    assert page.script_errors == []


def test_blast_radius_form_counts_and_csv(server, seeded, page, artifacts):
    exchanges, uploads = expected(seeded.corpus, {"repository": "octo-org/app-1"})
    assert uploads, "the corpus should hold uploads of octo-org/app-1"
    page.goto(server + "/blast-radius")
    screenshot(page, artifacts, "blast-radius-form")
    page.fill("#c-repository", "Octo-Org/App-1")  # matched case-insensitively
    page.click("form.criteria button[type=submit]")
    page.wait_for_url("**/blast-radius?**")
    state, reason = badge(page)
    assert state == "verified", reason
    assert page.locator('[data-total="uploads"]').inner_text() == str(len(uploads))
    assert page.locator('[data-total="exchanges"]').inner_text() == str(len(exchanges))
    versions = {seeded.corpus.uploads[i].version for i in uploads}
    shown = page.locator("#grouped tbody tr")
    assert shown.count() == len(versions)
    assert sum(int(shown.nth(n).locator("[data-count]").get_attribute("data-count")) for n in range(shown.count())) == len(uploads)
    assert page.locator("svg.timeline circle").count() == len(uploads)
    screenshot(page, artifacts, "blast-radius")
    with page.expect_download() as download_info:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert sorted(int(row["index"]) for row in rows) == sorted(uploads)
    assert page.script_errors == []


def test_declaring_an_incident_from_the_blast_radius_page(server, seeded, page, artifacts):
    """A wrong admin token is refused and forgotten; the right one logs the incident with the
    page's criteria, and the files it covers are flagged on their pages."""
    page.goto(server + "/blast-radius?repository=octo-org/app-2")
    assert badge(page)[0] == "verified"
    page.fill("#admin-token", "not-the-token")
    page.fill("#incident-description", "app-2's release workflow leaked its token")
    page.click("#declare")
    expect(page.locator("#incident-result")).to_contain_text("Refused", timeout=45_000)
    assert "HTTP 401" in page.locator("#incident-result").inner_text()
    assert page.locator("#admin-token").input_value() == ""
    page.fill("#admin-token", ADMIN_TOKEN)
    page.keyboard.press("Enter")  # the form works from the keyboard
    expect(page.locator("#incident-result")).to_contain_text("declared in log entry", timeout=45_000)
    screenshot(page, artifacts, "blast-radius-incident")
    index = int(re.search(r"log entry (\d+)", page.locator("#incident-result").inner_text()).group(1))
    entry = httpx.get(f"{server}/api/v1/log/entries/{index}").json()["entry"]
    assert entry["kind"] == "incident" and entry["criteria"] == {"repository": "octo-org/app-2"}
    _, uploads = expected(seeded.corpus, {"repository": "octo-org/app-2"})
    covered = seeded.corpus.uploads[uploads[0]]
    sha256 = httpx.get(f"{server}/api/v1/log/entries/{covered.index}").json()["entry"]["sha256"]
    page.goto(f"{server}/file/{sha256}")
    assert badge(page)[0] == "verified"
    assert "app-2's release workflow leaked its token" in page.locator(".incident").inner_text()


def test_phone_width_has_no_horizontal_scroll(server, seeded, browser, artifacts):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        phone = context.new_page()
        for name, path in (("status", "/"), ("file", f"/file/{seeded.files[1].sha256}"),
                           ("project", "/project/sampleproject"), ("blast-radius", "/blast-radius?repository=octo-org/app-1")):
            phone.goto(server + path)
            wide = phone.evaluate("document.documentElement.scrollWidth")
            assert wide <= 375, (path, wide)
            screenshot(phone, artifacts, f"phone-{name}")
    finally:
        context.close()


def test_known_answers_of_the_in_browser_verifier(server, page):
    """verify.js against the RFC 6962 eight-leaf tree, the Go note vector and corruptions of both."""
    page.goto(server + "/")
    badge(page)  # page.js has run, so verify.js (loaded before it) is there
    result = page.evaluate(
        """async ([vectors, vkey, noteText]) => {
          const V = window.PubtrailVerify;
          const b64 = (s) => V.fromBase64(s, "vector");
          const out = {leaves: [], inclusion: [], corrupted: [], note: null, badNotes: []};
          for (const leaf of vectors.leaves_hex) out.leaves.push(V.toHex(await V.leafHash(V.fromHex(leaf, "leaf"))));
          const expectFail = async (label, fn) => {
            try { await fn(); out.corrupted.push(label + ": accepted"); }
            catch (err) { out.corrupted.push(err instanceof V.VerifyError ? "refused" : label + ": " + err); }
          };
          for (const v of vectors.inclusion) {
            const proof = v.proof.map(b64);
            await V.verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, proof, b64(v.root));
            out.inclusion.push(v.leafIdx + "/" + v.treeSize);
            const flipped = proof.map((h) => h.slice());
            if (flipped.length) flipped[0][0] ^= 1;
            await expectFail("flipped hash", () => V.verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, flipped, b64(v.root)));
            await expectFail("wrong index", () => V.verifyInclusion(b64(v.leafHash), (v.leafIdx + 1) % v.treeSize, v.treeSize, proof, b64(v.root)));
            await expectFail("short proof", () => V.verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, proof.slice(1), b64(v.root)));
            await expectFail("long proof", () => V.verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, [...proof, proof[0]], b64(v.root)));
          }
          const key = await V.parseVerifierKey(vkey);
          out.note = await V.openNote(noteText, key);
          const sig = noteText.lastIndexOf(" ") + 1;
          for (const bad of [
            noteText.replace("answer", "Answer"),
            noteText.slice(0, sig) + (noteText[sig + 10] === "A" ? noteText.slice(sig, sig + 10) + "B" : noteText.slice(sig, sig + 10) + "A") + noteText.slice(sig + 11),
            noteText.replace("PeterNeumann", "EnochRoot"),
            noteText.slice(0, -1),
          ]) {
            try { await V.openNote(bad, key); out.badNotes.push("accepted"); }
            catch (err) { out.badNotes.push(err instanceof V.VerifyError ? "refused" : String(err)); }
          }
          for (const badKey of [vkey.replace("c74f20a3", "c74f20a4"), vkey.slice(0, -4) + "AAAA", "PeterNeumann+c74f20a3"]) {
            try { await V.parseVerifierKey(badKey); out.badNotes.push("key accepted"); }
            catch (err) { out.badNotes.push(err instanceof V.VerifyError ? "refused" : String(err)); }
          }
          return out;
        }""",
        [VECTORS, PETER_VKEY, PETER_NOTE],
    )
    assert result["leaves"] == VECTORS["leaf_hashes_hex"]
    assert result["inclusion"] == [f"{v['leafIdx']}/{v['treeSize']}" for v in VECTORS["inclusion"]]
    assert set(result["corrupted"]) == {"refused"}, result["corrupted"]
    assert result["note"] == PETER_NOTE.split("\n\n")[0] + "\n"
    assert result["badNotes"] == ["refused"] * 7, result["badNotes"]
