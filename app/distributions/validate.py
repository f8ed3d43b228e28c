"""PyPI's upload rules as pure functions.

Each check raises :class:`~app.distributions.errors.UploadError` (status
400 unless noted) whose ``reason`` is the text PyPI (pypi/warehouse
``forklift/legacy.py`` and ``forklift/forms.py``) sends for the same fault,
so twine users see familiar messages. Suggested order in the route, which is
PyPI's:

1. :func:`check_action` (410 for retired actions), then
   :func:`validate_metadata_fields` (includes digest presence/format)
2. authorization of ``metadata.normalized_name`` (not here)
3. :func:`validate_filename`, :func:`check_content_type`
4. (size limit: enforced while parsing) :func:`check_digests`
5. duplicate / filename-reuse checks against the database (not here; use
   :func:`~app.distributions.errors.file_already_exists`), then
   :func:`check_release_window` (the release's first file from the database)
6. :func:`check_archive`
"""

from __future__ import annotations

import gzip
import hmac
import os
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from app.distributions.errors import UploadError
from app.distributions.form import StagedFile

__all__ = [
    "Metadata",
    "check_action",
    "check_archive",
    "check_content_type",
    "check_digests",
    "normalize_project_name",
    "validate_filename",
    "validate_metadata_fields",
    "validate_project_name",
    "validate_version",
]

CORE_METADATA_URL = "https://packaging.python.org/specifications/core-metadata"
PEP_527_URL = "https://www.python.org/dev/peps/pep-0527"
PEP_715_URL = "https://peps.python.org/pep-0715/"

#: Metadata-Version values PyPI accepts.
SUPPORTED_METADATA_VERSIONS = frozenset({"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4"})
#: filetype -> allowed extensions (PyPI accepts only these two filetypes).
FILETYPE_EXTENSIONS = {"sdist": frozenset({".zip", ".tar.gz"}), "bdist_wheel": frozenset({".whl"})}
#: Archives larger than this (uncompressed) must not exceed the ratio below.
COMPRESSION_RATIO_MIN_SIZE = 64 * 1024 * 1024
COMPRESSION_RATIO_THRESHOLD = 50
#: Our own cap on archive members (PyPI has none); far above real packages.
MAX_ARCHIVE_MEMBERS = 100_000

# re.ASCII: without it IGNORECASE lets "ſ" (long s) match "S", so "ſix" would pass as a new project
_PROJECT_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE | re.ASCII)
_DIST_FILE_RE = re.compile(r".+?(?P<extension>\.(tar\.gz|zip|whl))$", re.IGNORECASE)
_HEX64_RE = re.compile(r"^[A-F0-9]{64}$", re.IGNORECASE)
_NAME_RULE = "Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'."

_RETIRED_ACTIONS = {
    "submit": "Project pre-registration is no longer required or supported, upload your files instead.",
    "submit_pkg_info": "Project pre-registration is no longer required or supported, upload your files instead.",
    "doc_upload": "Uploading documentation is no longer supported, we recommend using https://readthedocs.org/.",
}


@dataclass(frozen=True)
class Metadata:
    """The validated form fields pubtrail keeps for an upload."""

    name: str
    normalized_name: str
    version: Version
    metadata_version: str
    filetype: str
    pyversion: str
    summary: str | None
    requires_python: str | None
    comment: str | None


# -- names and versions ------------------------------------------------------


def normalize_project_name(name: str) -> str:
    """PEP 503 normalization: runs of ``-_.`` become ``-``, lowercased."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _shown(value: str) -> str:
    return value[:30] + "..." + value[-30:] if len(value) > 60 else value


def _invalid_core_field(value: str, label: str, message: str, field: str) -> UploadError:
    """PyPI's wording for a bad core-metadata field."""
    return UploadError(
        400,
        f"{_shown(value)!r} is an invalid value for {label}. Error: {message} "
        f"See {CORE_METADATA_URL} for more information.",
        field=field,
    )


def _invalid_form_field(field: str, message: str) -> UploadError:
    return UploadError(400, f"Invalid value for {field}. Error: {message}", field=field)


def validate_project_name(name: str) -> str:
    """Return ``name`` if it is a valid PyPI project name, else raise."""
    if not name or not _PROJECT_NAME_RE.match(name) or name != name.strip():
        raise _invalid_core_field(name, "Name", _NAME_RULE, "name")
    return name


def validate_version(version: str) -> Version:
    """Parse a PEP 440 version as PyPI does: no surrounding whitespace, no
    local segment (``+abc``)."""
    if version != version.strip():
        raise _invalid_core_field(version, "Version", "Cannot have leading or trailing whitespace.", "version")
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise _invalid_core_field(version, "Version", _NAME_RULE, "version") from None
    if parsed.local is not None:
        raise _invalid_core_field(version, "Version", "Can't use PEP 440 local versions.", "version")
    return parsed


# -- the form ----------------------------------------------------------------


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    """First value of a field; PyPI drops values equal to ``UNKNOWN`` (a
    distutils placeholder) and treats empty strings as absent."""
    values = fields.get(name)
    if not values:
        return None
    value = values[0]
    if value.strip() in ("", "UNKNOWN"):
        return None
    return value


def check_action(fields: dict[str, list[str]]) -> None:
    """``:action`` must be ``file_upload``. Every other action is gone (410):
    retired ones with PyPI's texts; a missing action is a 400."""
    action = _first(fields, ":action")
    if action == "file_upload":
        return
    if action in _RETIRED_ACTIONS:
        raise UploadError(410, _RETIRED_ACTIONS[action], field=":action")
    if action:
        raise UploadError(410, "Only :action=file_upload is supported.", field=":action")
    raise UploadError(400, "Missing :action.", field=":action")


def validate_metadata_fields(fields: dict[str, list[str]]) -> Metadata:
    """Validate the upload form fields pubtrail stores, in PyPI's order of
    importance (protocol, metadata version, name, version, then the rest).

    Also checks that at least one digest is present and that sha256/blake2
    digests are well-formed hex, as PyPI's form does.
    """
    if (_first(fields, "protocol_version") or "1") != "1":
        raise UploadError(400, "Unknown protocol version.", field="protocol_version")

    metadata_version = _first(fields, "metadata_version")
    if metadata_version is None:
        raise _invalid_core_field("", "Metadata-Version", "This field is required.", "metadata_version")
    if metadata_version not in SUPPORTED_METADATA_VERSIONS:
        raise _invalid_core_field(
            metadata_version, "Metadata-Version", "Unknown Metadata Version", "metadata_version"
        )

    name = validate_project_name(_first(fields, "name") or "")
    raw_version = _first(fields, "version")
    if raw_version is None:
        raise _invalid_core_field("", "Version", "This field is required.", "version")
    version = validate_version(raw_version)

    filetype = _first(fields, "filetype")
    if filetype not in FILETYPE_EXTENSIONS:
        if filetype is None:
            raise _invalid_form_field("filetype", "This field is required.")
        raise _invalid_form_field("filetype", "Use a known file type.")

    pyversion = _first(fields, "pyversion")
    if filetype == "sdist":
        if pyversion is None:
            pyversion = "source"
        elif pyversion != "source":
            raise _invalid_form_field("pyversion", "Use 'source' as Python version for an sdist.")
    elif pyversion is None:
        raise _invalid_form_field("pyversion", "Python version is required for binary distribution uploads.")

    for field, label in (("sha256_digest", "SHA256"), ("blake2_256_digest", "BLAKE2")):
        value = _first(fields, field)
        if value is not None and not _HEX64_RE.match(value):
            raise _invalid_form_field(field, f"Use a valid, hex-encoded, {label} message digest.")
    if not any(_first(fields, f) for f in ("md5_digest", "sha256_digest", "blake2_256_digest")):
        raise UploadError(400, "Error: Include at least one message digest.")

    summary = _first(fields, "summary")
    if summary is not None:
        if "\n" in summary or "\r" in summary:
            raise _invalid_core_field(summary, "Summary", "Use a single line only.", "summary")
        if len(summary) > 512:
            raise _invalid_core_field(summary, "Summary", "Use 512 characters or fewer.", "summary")

    requires_python = _first(fields, "requires_python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise _invalid_core_field(
                requires_python, "Requires-Python", "Invalid specifier in requirement.", "requires_python"
            ) from None

    return Metadata(
        name=name,
        normalized_name=normalize_project_name(name),
        version=version,
        metadata_version=metadata_version,
        filetype=filetype,
        pyversion=pyversion,
        summary=summary,
        requires_python=requires_python,
        comment=_first(fields, "comment"),
    )


# -- the file ----------------------------------------------------------------


def validate_filename(filename: str, project_name: str, version: str | Version, filetype: str) -> None:
    """Check an upload's filename against its project, version and filetype.

    ``project_name`` is the project's display name (used in messages and
    normalized for comparison); ``version`` the form's version. Sdists must
    be named exactly ``{normalized_name_with_underscores}-{version}.tar.gz``
    (PEP 625, as PyPI now enforces; a ``.zip`` sdist passes the extension
    check but fails this one, as on PyPI). Wheels must start with the
    normalized name and carry the same version.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        raise UploadError(
            400,
            "Cannot upload a file with non-printable characters (ordinals 0-31) "
            "or the DEL character (ordinal 127) in the name.",
            field="content",
        )
    if "/" in filename or "\\" in filename:
        raise UploadError(400, "Cannot upload a file with '/' or '\\' in the name.", field="content")
    if filename.startswith("."):
        raise UploadError(400, "Cannot upload a file whose name starts with '.'.", field="content")

    match = _DIST_FILE_RE.match(filename)
    if match is None:
        raise UploadError(
            400,
            f"Invalid file extension: Use .tar.gz, .whl or .zip extension. See {PEP_527_URL} "
            f"and {PEP_715_URL} for more information.",
            field="content",
        )
    extension = match.group("extension")
    if extension not in FILETYPE_EXTENSIONS.get(filetype, ()):
        raise UploadError(
            400,
            f"Invalid file extension: Extension {extension} is invalid for filetype {filetype}. "
            f"See {PEP_527_URL} for more information.",
            field="content",
        )

    expected_version = version if isinstance(version, Version) else Version(version)
    normalized = normalize_project_name(project_name)
    underscored = normalized.replace("-", "_")

    if filetype == "sdist":
        try:
            name_from_filename, _ = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            raise UploadError(400, f"Invalid source distribution filename: {filename}", field="content") from None
        if canonicalize_name(name_from_filename) != normalized:
            raise UploadError(400, f"Start filename for {project_name!r} with {underscored!r}.", field="content")
        expected_filename = f"{underscored}-{expected_version}.tar.gz"
        if filename != expected_filename:
            raise UploadError(
                400, f"Filename {filename!r} is invalid, should be {expected_filename!r}.", field="content"
            )
        return

    # bdist_wheel
    try:
        wheel_name, wheel_version, _, _ = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise UploadError(400, str(exc), field="content") from None
    if wheel_name != normalized:
        raise UploadError(400, f"Start filename for {project_name!r} with {underscored!r}.", field="content")
    raw_name = filename.split("-", 1)[0]
    if raw_name != underscored:
        raise UploadError(
            400,
            f"Filename {filename!r} should contain the normalized project name {underscored!r}, "
            f"not {raw_name!r}.",
            field="content",
        )
    if wheel_version != expected_version:
        raise UploadError(
            400,
            f"Version in filename should be {str(expected_version)!r} not {str(wheel_version)!r}.",
            field="content",
        )


def check_content_type(content_type: str | None) -> None:
    """PyPI refuses a ``content`` part without a type or with an image type."""
    if not content_type or content_type.lower().startswith("image/"):
        raise UploadError(400, "Invalid distribution file.", field="content")


def check_digests(fields: dict[str, list[str]], staged: StagedFile) -> None:
    """Every digest the client sent must match the file (case-insensitive
    hex); at least one must be sent. As on PyPI, ``md5_digest`` alone is
    still accepted (twine >= 5 sends sha256 and blake2 only)."""
    sent = {
        "md5": _first(fields, "md5_digest"),
        "sha256": _first(fields, "sha256_digest"),
        "blake2_256": _first(fields, "blake2_256_digest"),
    }
    if not any(sent.values()):
        raise UploadError(400, "Error: Include at least one message digest.")
    computed = {"md5": staged.md5, "sha256": staged.sha256, "blake2_256": staged.blake2b_256}
    for kind, value in sent.items():
        if value and not hmac.compare_digest(value.strip().lower().encode(), computed[kind].encode()):
            raise UploadError(
                400,
                "The digest supplied does not match a digest calculated from the uploaded file.",
                field=f"{kind}_digest",
            )


DAY = 86_400


def check_release_window(release_created: float | None, now: float, window_days: int) -> None:
    """PyPI's stale-release guard (warehouse ``MAXIMUM_AGE_FOR_NEW_UPLOADS_DAYS``): a new
    file for a release whose first file was uploaded more than ``window_days`` days
    before ``now`` is refused, so a stolen token cannot add files to an old, trusted
    release. ``release_created`` None: a new release, always allowed."""
    if release_created is not None and release_created < now - window_days * DAY:
        raise UploadError(
            400, f"Uploading new files to releases older than {window_days} days is not allowed."
        )


def _invalid_dist(detail: str | None = None) -> UploadError:
    return UploadError(
        400, "Invalid distribution file." + (f" {detail}" if detail else ""), field="content"
    )


def _ratio_exceeded(uncompressed: int, compressed: int) -> bool:
    return (
        uncompressed > COMPRESSION_RATIO_MIN_SIZE
        and uncompressed / max(compressed, 1) > COMPRESSION_RATIO_THRESHOLD
    )


def check_archive(path: Path, filename: str) -> None:
    """Check that the file is a well-formed distribution for its extension.

    Wheels and zips: a readable zip (central directory), only stored/deflate
    members, no decompression bomb (more than 64 MiB uncompressed *and* more
    than 50x the file size); a wheel needs ``{name}-{version}.dist-info/``
    ``WHEEL``, ``METADATA`` and ``RECORD`` (named from the filename); a zip
    sdist one top-level directory with ``PKG-INFO``. ``.tar.gz``: a gzip tar,
    decompressed as a stream under the same bomb limit, with exactly one
    top-level directory holding ``PKG-INFO``. Every archive: at most
    :data:`MAX_ARCHIVE_MEMBERS` members (counted, whatever their names) and
    no two members with one path (``./a`` and ``a`` are one path). Raises
    ``UploadError`` with "Invalid distribution file. <why>".

    CPU-bound (up to 64 MiB inflated): call it from a worker thread.
    """
    path = Path(path)
    lowered = filename.lower()
    if lowered.endswith((".whl", ".zip")):
        _check_zip(path, filename)
    elif lowered.endswith(".tar.gz"):
        _check_sdist_tar(path)
    else:
        raise _invalid_dist()


def _check_zip(path: Path, filename: str) -> None:
    if not zipfile.is_zipfile(path):
        raise _invalid_dist("File is not a zipfile")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ARCHIVE_MEMBERS:
                raise _invalid_dist(f"Archive has more than {MAX_ARCHIVE_MEMBERS} members")
            if _ratio_exceeded(sum(info.file_size for info in infos), path.stat().st_size):
                raise _invalid_dist(f"File exceeds compression ratio of {COMPRESSION_RATIO_THRESHOLD}")
            if any(info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for info in infos):
                raise _invalid_dist("File does not use a supported compression type")
            names = _unique_names(info.filename for info in infos)
            if filename.lower().endswith(".zip"):
                top = _single_top_level(names)
                if f"{top}/PKG-INFO" not in names:
                    raise _invalid_dist(f"PKG-INFO not found at {top}/PKG-INFO")
                return
            try:
                name, version, _ = os.path.basename(filename).split("-", 2)
            except ValueError:
                raise _invalid_dist("Unable to parse name and version from wheel filename") from None
            dist_info = f"{name}-{version}.dist-info"
            if f"{dist_info}/WHEEL" not in names:
                raise _invalid_dist(f"WHEEL not found at {dist_info}/WHEEL")
            for required in ("METADATA", "RECORD"):
                if f"{dist_info}/{required}" not in names:
                    raise UploadError(
                        400,
                        f"Wheel {filename!r} does not contain the required {required} file: "
                        f"{dist_info}/{required}",
                        field="content",
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise _invalid_dist() from None


def _member_key(name: str) -> str:
    """A member's path as an extractor would resolve it (``./a/b/`` and ``a/b`` are one path)."""
    return name.removeprefix("./").lstrip("/").rstrip("/")


def _duplicate(name: str) -> UploadError:
    return _invalid_dist(f"Archive has more than one member named {name!r}")


def _unique_names(names) -> set[str]:
    """The member names, refusing a repeated one (by :func:`_member_key`): which of two
    members an installer would extract is not something a reviewer can tell."""
    seen: set[str] = set()
    keys: set[str] = set()
    for name in names:
        key = _member_key(name)
        if key in keys:
            raise _duplicate(name)
        keys.add(key)
        seen.add(name)
    return seen


def _single_top_level(names: set[str]) -> str:
    stripped = (name.removeprefix("./").lstrip("/") for name in names)
    tops = {name.split("/", 1)[0] for name in stripped if name}
    if len(tops) != 1:
        raise _invalid_dist("Incorrect number of top-level directories in sdist")
    return tops.pop()


class _Budget:
    """Read-through wrapper that stops decompression past a byte budget."""

    def __init__(self, raw: gzip.GzipFile, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.total += len(data)
        if self.total > self._limit:
            raise _invalid_dist(f"File exceeds compression ratio of {COMPRESSION_RATIO_THRESHOLD}")
        return data


def _check_sdist_tar(path: Path) -> None:
    compressed = path.stat().st_size
    limit = max(COMPRESSION_RATIO_MIN_SIZE, compressed * COMPRESSION_RATIO_THRESHOLD)
    names: set[str] = set()
    keys: set[str] = set()
    count = 0
    try:
        with gzip.open(path, "rb") as raw:
            stream = _Budget(raw, limit)
            with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
                while (member := archive.next()) is not None:
                    archive.members.clear()  # a stream needs no index; it would grow with every member
                    count += 1  # members, not names: repeated names count too
                    if count > MAX_ARCHIVE_MEMBERS:
                        raise _invalid_dist(f"Archive has more than {MAX_ARCHIVE_MEMBERS} members")
                    key = _member_key(member.name)
                    if key in keys:
                        raise _duplicate(member.name)
                    keys.add(key)
                    names.add(member.name)
    except UploadError:
        raise
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError, ValueError):
        raise _invalid_dist("File is not a tarfile") from None
    if not names:
        raise _invalid_dist("File is not a tarfile")
    top = _single_top_level(names)
    prefix = "./" if any(name.startswith("./") for name in names) else ""
    if f"{prefix}{top}/PKG-INFO" not in names and f"{top}/PKG-INFO" not in names:
        raise _invalid_dist(f"PKG-INFO not found at {top}/PKG-INFO")
