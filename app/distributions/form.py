"""Streaming parser for the legacy upload form (``POST /legacy/``).

twine sends ``multipart/form-data``: metadata fields first (``name``,
``version``, ``filetype``, ``sha256_digest``, repeated ``classifiers``, ...)
and the distribution file last, as the part named ``content`` with a
filename. :func:`parse_upload_form` consumes the request body chunk by chunk
with ``python_multipart``'s callback parser:

- text parts are decoded as UTF-8 into ``fields`` (every value kept, in
  order, so repeated fields stay lists), each capped by ``max_field_size``;
- the ``content`` part is streamed into a temporary file inside
  ``spool_dir`` while sha256, blake2b-256 and md5 are computed; the file is
  never held in memory;
- the moment ``content`` grows past ``max_file_size`` the parse stops (the
  rest of the body is not read) and the temporary file is deleted;
- once the closing boundary is parsed the form is complete: at most
  :data:`EPILOGUE_ALLOWANCE` more bytes are read (and dropped, as RFC 2046
  says of an epilogue); past that the parse returns without reading the rest
  (the route then closes the connection instead of letting the server drain
  it).

Any failure raises :class:`~app.distributions.errors.UploadError`, and no
temporary file survives a failed parse.

A body under 1 MiB is parsed on the event loop (cheaper than a thread hop);
a larger one in a worker thread in batches of about 1 MiB, so the event loop
stays responsive during a large upload; hashing releases the GIL.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.distributions.errors import DEFAULT_HELP_URL, FileTooLarge, UploadError

__all__ = ["EPILOGUE_ALLOWANCE", "StagedFile", "UploadForm", "parse_upload_form", "FILE_FIELD"]

#: The form field that carries the distribution file.
FILE_FIELD = "content"
#: File parts PyPI tolerates and ignores (legacy detached PGP signatures).
_IGNORED_FILE_FIELDS = frozenset({"gpg_signature"})

ONE_MIB = 1024 * 1024
#: Bytes read and dropped after the closing boundary before the parse stops reading.
EPILOGUE_ALLOWANCE = 64 * 1024
_BATCH_BYTES = ONE_MIB
_WRITE_BUFFER = ONE_MIB


@dataclass(frozen=True)
class StagedFile:
    """The uploaded distribution, written to ``path`` (inside the spool
    directory) and fully hashed. Hex digests are lowercase.

    The caller owns the file: hand it to ``BlobStore.commit`` or call
    :meth:`discard`.
    """

    path: Path
    filename: str
    content_type: str | None
    size: int
    sha256: str
    blake2b_256: str
    md5: str

    def discard(self) -> None:
        """Delete the temporary file (no error if it is already gone)."""
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class UploadForm:
    """A parsed upload: text ``fields`` (name -> every value sent, in order)
    and the staged ``content`` file, if the request had one."""

    fields: dict[str, list[str]]
    file: StagedFile | None

    def first(self, name: str) -> str | None:
        """The first value of field ``name``, or ``None`` if it was not sent."""
        values = self.fields.get(name)
        return values[0] if values else None

    def discard(self) -> None:
        """Delete the staged file, if any."""
        if self.file is not None:
            self.file.discard()


def _malformed(detail: str) -> UploadError:
    return UploadError(400, f"Malformed multipart request: {detail}")


class _Sink:
    """Callback target for ``MultipartParser``: routes part bytes either to a
    field buffer or to the spool file + hashers. Not thread-safe; used by one
    parse at a time (always from one worker thread at a time)."""

    def __init__(
        self,
        *,
        spool_dir: Path,
        max_file_size: int,
        max_field_size: int,
        max_fields: int,
        max_fields_total_size: int,
        help_url: str,
    ) -> None:
        self.help_url = help_url
        self.spool_dir = spool_dir
        self.max_file_size = max_file_size
        self.max_field_size = max_field_size
        self.max_fields = max_fields
        self.max_fields_total_size = max_fields_total_size

        self.fields: dict[str, list[str]] = {}
        self.field_count = 0
        self.fields_total_size = 0
        self.finished = False

        # current part
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part_kind: str | None = None  # "field" | "file" | "ignore"
        self._part_name = ""
        self._field_value = bytearray()

        # the content file
        self.file_seen = False
        self.file_name: str | None = None
        self.file_content_type: str | None = None
        self.file_path: Path | None = None
        self._file: BinaryIO | None = None
        self.file_size = 0
        self._sha256 = hashlib.sha256()
        self._blake2b = hashlib.blake2b(digest_size=32)
        self._md5 = hashlib.md5(usedforsecurity=False)

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    # -- headers -------------------------------------------------------
    def on_part_begin(self) -> None:
        self._headers = {}
        self._header_name.clear()
        self._header_value.clear()
        self._part_kind = None
        self._part_name = ""
        self._field_value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).strip().lower()] = bytes(self._header_value).strip()
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise _malformed("a part has no Content-Disposition header.")
        kind, params = parse_options_header(disposition)
        if kind.lower() != b"form-data" or b"name" not in params:
            raise _malformed("a part is not a named form-data part.")
        name = _decode(params[b"name"], "field name")
        filename = params.get(b"filename")
        self._part_name = name

        if name == FILE_FIELD:
            if filename is None:
                raise UploadError(400, "Upload payload does not have a file.", field=FILE_FIELD)
            if self.file_seen:
                raise UploadError(400, "Upload payload has more than one file.", field=FILE_FIELD)
            self.file_seen = True
            self.file_name = _decode(filename, "filename")
            content_type = self._headers.get(b"content-type")
            self.file_content_type = content_type.decode("latin-1") if content_type else None
            self._open_spool()
            self._part_kind = "file"
            return

        self.field_count += 1
        if self.field_count > self.max_fields:
            raise UploadError(400, f"Too many form fields (limit {self.max_fields}).")
        if filename is not None:
            if name in _IGNORED_FILE_FIELDS:
                self._part_kind = "ignore"
                return
            # PyPI's text for a metadata field sent as a file tuple.
            raise UploadError(400, f"{name}: Should not be a tuple.", field=name)
        self._part_kind = "field"

    # -- data ----------------------------------------------------------
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        kind = self._part_kind
        if kind == "file":
            size = self.file_size + (end - start)
            if size > self.max_file_size:
                raise FileTooLarge(self.max_file_size, self._project_name(), help_url=self.help_url)
            self.file_size = size
            view = memoryview(data)[start:end]
            assert self._file is not None
            self._file.write(view)
            self._sha256.update(view)
            self._blake2b.update(view)
            self._md5.update(view)
        elif kind == "field":
            length = len(self._field_value) + (end - start)
            if length > self.max_field_size:
                raise UploadError(
                    400,
                    f"Invalid value for {self._part_name}. Error: larger than {self.max_field_size} bytes.",
                    field=self._part_name,
                )
            self.fields_total_size += end - start
            if self.fields_total_size > self.max_fields_total_size:
                raise UploadError(400, "Form fields too large.")
            self._field_value += data[start:end]
        elif kind == "ignore":  # bytes dropped, but counted against the field budget
            self.fields_total_size += end - start
            if self.fields_total_size > self.max_fields_total_size:
                raise UploadError(400, "Form fields too large.")
        else:  # data before headers were finished: the parser would not do this
            raise _malformed("part data outside a part.")

    def on_part_end(self) -> None:
        if self._part_kind == "field":
            value = _decode(bytes(self._field_value), f"field {self._part_name!r}")
            self.fields.setdefault(self._part_name, []).append(value)
        elif self._part_kind == "file":
            assert self._file is not None
            self._file.close()  # flush; durability is BlobStore.commit's job
        self._field_value = bytearray()
        self._part_kind = None

    def on_end(self) -> None:
        self.finished = True

    # -- spool ---------------------------------------------------------
    def _open_spool(self) -> None:
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.spool_dir)
        self.file_path = Path(name)
        self._file = open(fd, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115 - closed in on_part_end/cleanup

    def _project_name(self) -> str | None:
        names = self.fields.get("name")
        return names[0] if names else None

    def cleanup(self) -> None:
        """Close and delete the spool file (after a failure)."""
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)

    def staged(self) -> StagedFile | None:
        if not self.file_seen:
            return None
        assert self.file_path is not None and self.file_name is not None
        return StagedFile(
            path=self.file_path,
            filename=self.file_name,
            content_type=self.file_content_type,
            size=self.file_size,
            sha256=self._sha256.hexdigest(),
            blake2b_256=self._blake2b.hexdigest(),
            md5=self._md5.hexdigest(),
        )


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(400, f"Invalid {what}: not valid UTF-8.") from None


def boundary_from_content_type(content_type: str | None) -> bytes:
    """Return the multipart boundary of a ``multipart/form-data`` content
    type, or raise :class:`UploadError` (400)."""
    if not content_type:
        raise UploadError(400, "Use a multipart/form-data request to upload.")
    kind, params = parse_options_header(content_type)
    if kind.lower() != b"multipart/form-data":
        raise UploadError(400, "Use a multipart/form-data request to upload.")
    boundary = params.get(b"boundary")
    if not boundary:
        raise _malformed("missing boundary.")
    if len(boundary) > 70:  # RFC 2046 section 5.1.1
        raise _malformed("boundary longer than 70 characters.")
    return boundary


async def parse_upload_form(
    chunks: AsyncIterable[bytes],
    content_type: str | None,
    *,
    max_file_size: int,
    spool_dir: Path,
    max_field_size: int = ONE_MIB,
    max_fields: int = 1000,
    max_fields_total_size: int = 16 * ONE_MIB,
    help_url: str = DEFAULT_HELP_URL,
) -> UploadForm:
    """Parse a ``multipart/form-data`` upload body streamed as ``chunks``.

    ``content_type`` is the request's Content-Type header (with its
    boundary). ``max_file_size`` caps the ``content`` part in bytes; crossing
    it raises :class:`FileTooLarge` at once without reading further.
    ``max_field_size`` caps each text field, ``max_fields`` the number of
    non-file parts, ``max_fields_total_size`` their combined size.

    Reading stops once the form is complete and :data:`EPILOGUE_ALLOWANCE`
    more bytes came; the rest of ``chunks`` is left unread. ``help_url`` is the
    base of the link in the file-too-large text.

    Returns an :class:`UploadForm` whose ``file`` (if any) is a staged
    temporary file in ``spool_dir`` that the caller must commit or discard.
    Raises :class:`UploadError` for anything malformed; then no temporary
    file is left behind.
    """
    boundary = boundary_from_content_type(content_type)
    sink = _Sink(
        spool_dir=Path(spool_dir),
        max_file_size=max_file_size,
        max_field_size=max_field_size,
        max_fields=max_fields,
        max_fields_total_size=max_fields_total_size,
        help_url=help_url,
    )
    try:
        parser = MultipartParser(boundary, sink.callbacks())
        pending = bytearray()
        threaded = False  # small bodies are parsed inline: a thread hop costs more than the work
        epilogue = 0
        async for chunk in chunks:
            if not chunk:
                continue
            if sink.finished:  # after the closing boundary: drop a little, then stop reading
                epilogue += len(chunk)
                if epilogue > EPILOGUE_ALLOWANCE:
                    break
                continue
            pending += chunk
            if len(pending) >= _BATCH_BYTES:
                batch, pending = pending, bytearray()
                threaded = True
                await asyncio.to_thread(_feed, parser, sink, batch)
        if pending:
            if threaded:
                await asyncio.to_thread(_feed, parser, sink, pending)
            else:
                _feed(parser, sink, pending)
        if not sink.finished:
            raise _malformed("the body ended before the closing boundary.")
        return UploadForm(fields=sink.fields, file=sink.staged())
    except BaseException:
        sink.cleanup()
        raise


def _feed(parser: MultipartParser, sink: _Sink, data: bytearray) -> None:
    if sink.finished:
        return  # epilogue after the closing boundary: ignored, as RFC 2046 says
    try:
        parser.write(data)
    except FormParserError as exc:
        raise _malformed(str(exc).rstrip(".") + ".") from exc
