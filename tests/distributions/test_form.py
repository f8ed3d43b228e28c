"""parse_upload_form: twine's encoding parsed back exactly, limits, malformed input."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.distributions.errors import FileTooLarge, UploadError
from app.distributions.form import parse_upload_form
from tests.distributions.builders import chunked, digests, encode, twine_fields


def parse(body: bytes, content_type: str, spool: Path, *, chunk: int = 7919, consumed=None, **kw):
    kw.setdefault("max_file_size", 10 * 1024 * 1024)
    return asyncio.run(parse_upload_form(chunked(body, chunk, consumed), content_type, spool_dir=spool, **kw))


def test_twine_encoding_round_trips(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    body, ctype = encode(twine_fields("demo_pkg-1.0-py3-none-any.whl", data, summary="Ünïcode ✓ summary"))
    form = parse(body, ctype, tmp_path)
    assert form.fields["name"] == ["demo-pkg"]
    assert form.fields["summary"] == ["Ünïcode ✓ summary"]
    assert form.fields["classifiers"] == [
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
    ]
    assert form.fields[":action"] == ["file_upload"]
    assert form.first("protocol_version") == "1"
    assert "content" not in form.fields
    staged = form.file
    assert staged is not None
    assert staged.filename == "demo_pkg-1.0-py3-none-any.whl"
    assert staged.content_type == "application/octet-stream"
    assert staged.size == len(data)
    assert staged.path.read_bytes() == data
    assert staged.path.parent == tmp_path
    want = digests(data)
    assert (staged.sha256, staged.blake2b_256, staged.md5) == (want["sha256"], want["blake2b_256"], want["md5"])
    staged.discard()
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(min_size=0, max_size=5000),
    chunk=st.integers(min_value=1, max_value=600),
    summary=st.text(max_size=40),
)
def test_any_chunking_and_content(tmp_path: Path, data: bytes, chunk: int, summary: str) -> None:
    # Boundary-like bytes and CRLFs inside the file must survive any split.
    data = data + b"\r\n--" + data[:10]
    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", data, summary=summary))
    form = parse(body, ctype, tmp_path, chunk=chunk)
    try:
        assert form.file is not None and form.file.path.read_bytes() == data
        assert form.fields["summary"] == [summary]
        assert form.file.sha256 == digests(data)["sha256"]
    finally:
        form.discard()


def test_no_file_part(tmp_path: Path) -> None:
    body, ctype = encode([("name", "x"), (":action", "file_upload")])
    form = parse(body, ctype, tmp_path)
    assert form.file is None and form.fields == {"name": ["x"], ":action": ["file_upload"]}


def test_oversize_aborts_early_and_cleans_up(tmp_path: Path) -> None:
    data = b"\0" * (8 * 1024 * 1024)
    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", data))
    consumed: list[int] = []
    with pytest.raises(FileTooLarge) as info:
        parse(body, ctype, tmp_path, chunk=64 * 1024, consumed=consumed, max_file_size=1024 * 1024)
    err = info.value
    assert err.status == 400
    assert err.limit == 1024 * 1024
    assert err.reason.startswith("File too large. Limit for project 'demo-pkg' is 1 MB. See ")
    assert err.reason.endswith(" for more information.")
    # stopped within about one parse batch (1 MiB) of the limit, far from the end
    assert sum(consumed) < 3 * 1024 * 1024 < len(body)
    assert list(tmp_path.iterdir()) == []


def test_exact_limit_is_accepted(tmp_path: Path) -> None:
    data = b"x" * 4096
    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", data))
    form = parse(body, ctype, tmp_path, max_file_size=4096)
    assert form.file is not None and form.file.size == 4096
    form.discard()
    with pytest.raises(FileTooLarge):
        parse(body, ctype, tmp_path, max_file_size=4095)


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        (None, "Use a multipart/form-data request to upload."),
        ("application/json", "Use a multipart/form-data request to upload."),
        ("multipart/form-data", "Malformed multipart request: missing boundary."),
        ("multipart/form-data; boundary=" + "a" * 71, "Malformed multipart request: boundary longer than 70 characters."),
    ],
)
def test_bad_content_type(tmp_path: Path, content_type, reason) -> None:
    with pytest.raises(UploadError) as info:
        parse(b"", content_type, tmp_path)
    assert (info.value.status, info.value.reason) == (400, reason)


def test_truncated_body_is_malformed_and_cleans_up(tmp_path: Path) -> None:
    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", b"y" * 50_000))
    with pytest.raises(UploadError) as info:
        parse(body[:-200], ctype, tmp_path)
    assert info.value.reason == "Malformed multipart request: the body ended before the closing boundary."
    assert list(tmp_path.iterdir()) == []


def test_garbage_body_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(UploadError) as info:
        parse(b"this is not multipart at all\r\n", "multipart/form-data; boundary=xyz", tmp_path)
    assert info.value.status == 400
    assert info.value.reason.startswith("Malformed multipart request")


def _raw(parts: list[bytes], boundary: str = "BOUND") -> tuple[bytes, str]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return body + b"--" + boundary.encode() + b"--\r\n", f"multipart/form-data; boundary={boundary}"


def test_two_content_parts_refused(tmp_path: Path) -> None:
    part = b'Content-Disposition: form-data; name="content"; filename="a.tar.gz"\r\n\r\nabc'
    body, ctype = _raw([part, part])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path)
    assert info.value.reason == "Upload payload has more than one file."
    assert list(tmp_path.iterdir()) == []


def test_content_without_filename_refused(tmp_path: Path) -> None:
    body, ctype = _raw([b'Content-Disposition: form-data; name="content"\r\n\r\nabc'])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path)
    assert info.value.reason == "Upload payload does not have a file."


def test_metadata_field_sent_as_file_refused(tmp_path: Path) -> None:
    body, ctype = _raw([b'Content-Disposition: form-data; name="version"; filename="v"\r\n\r\n1.0'])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path)
    assert info.value.reason == "version: Should not be a tuple."


def test_gpg_signature_file_is_ignored(tmp_path: Path) -> None:
    body, ctype = _raw([
        b'Content-Disposition: form-data; name="gpg_signature"; filename="x.asc"\r\n\r\n-----BEGIN PGP',
        b'Content-Disposition: form-data; name="name"\r\n\r\ndemo',
    ])
    form = parse(body, ctype, tmp_path)
    assert form.fields == {"name": ["demo"]} and form.file is None


def test_part_without_disposition_refused(tmp_path: Path) -> None:
    body, ctype = _raw([b"Content-Type: text/plain\r\n\r\nabc"])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path)
    assert info.value.reason == "Malformed multipart request: a part has no Content-Disposition header."


def test_field_limits(tmp_path: Path) -> None:
    body, ctype = encode([("description", "d" * 2000)])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path, max_field_size=1000)
    assert info.value.reason == "Invalid value for description. Error: larger than 1000 bytes."
    assert info.value.field == "description"

    body, ctype = encode([("classifiers", str(i)) for i in range(20)])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path, max_fields=10)
    assert info.value.reason == "Too many form fields (limit 10)."

    body, ctype = encode([(f"f{i}", "v" * 900) for i in range(10)])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path, max_field_size=1000, max_fields_total_size=5000)
    assert info.value.reason == "Form fields too large."


def test_invalid_utf8_field(tmp_path: Path) -> None:
    body, ctype = _raw([b'Content-Disposition: form-data; name="summary"\r\n\r\n\xff\xfe'])
    with pytest.raises(UploadError) as info:
        parse(body, ctype, tmp_path)
    assert info.value.reason == "Invalid field 'summary': not valid UTF-8."


def test_memory_stays_flat_for_large_upload(tmp_path: Path) -> None:
    """A 50 MiB upload streamed in 64 KiB chunks must not hold the file in memory."""
    import tracemalloc

    size = 50 * 1024 * 1024
    head, ctype = encode([("name", "demo"), ("content", ("demo-1.0.tar.gz", b"", "application/octet-stream"))])
    boundary = ctype.split("boundary=")[1].encode()
    closing = b"\r\n--" + boundary + b"--\r\n"
    prefix = head[: -len(closing)]  # body up to the (empty) file data
    block = os.urandom(64 * 1024)

    async def stream():
        yield prefix
        for _ in range(size // len(block)):
            yield block
        yield closing

    async def run():
        return await parse_upload_form(stream(), ctype, max_file_size=size, spool_dir=tmp_path)

    tracemalloc.start()
    form = asyncio.run(run())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert form.file is not None and form.file.size == size
    assert peak < 20 * 1024 * 1024, peak
    form.discard()


def test_reading_stops_soon_after_the_closing_boundary(tmp_path: Path) -> None:
    """An epilogue of 400 MiB after a complete form was once read to its end: now the parse
    returns after a small allowance, leaving the rest unread; a short epilogue is dropped."""
    from app.distributions.form import EPILOGUE_ALLOWANCE

    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", b"payload"))
    consumed: list[int] = []

    async def endless():
        async for piece in chunked(body, consumed=consumed):
            yield piece
        for _ in range(1024):  # a 64 MiB epilogue
            consumed.append(65536)
            yield b"\0" * 65536

    form = asyncio.run(parse_upload_form(endless(), ctype, max_file_size=1 << 20, spool_dir=tmp_path))
    assert form.first("name") == "demo-pkg" and form.file is not None and form.file.size == len(b"payload")
    assert sum(consumed) <= len(body) + 2 * 1024 * 1024 + EPILOGUE_ALLOWANCE + 65536
    form.discard()

    form = asyncio.run(parse_upload_form(chunked(body + b"\r\nshort epilogue\r\n"), ctype,
                                         max_file_size=1 << 20, spool_dir=tmp_path))
    assert form.file is not None and form.file.path.read_bytes() == b"payload"
