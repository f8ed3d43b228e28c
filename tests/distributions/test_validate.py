"""validate.py: every refusal asserts PyPI's status and reason text."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from app.distributions.errors import UploadError, file_already_exists
from app.distributions.form import StagedFile
from app.distributions.validate import (
    check_action,
    check_archive,
    check_content_type,
    check_digests,
    normalize_project_name,
    validate_filename,
    validate_metadata_fields,
    validate_project_name,
    validate_version,
)
from tests.distributions.builders import build_sdist, build_wheel, digests

SEE = "See https://packaging.python.org/specifications/core-metadata for more information."


def refused(fn, *args) -> UploadError:
    with pytest.raises(UploadError) as info:
        fn(*args)
    return info.value


def form(**overrides) -> dict[str, list[str]]:
    base = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": "Demo.Pkg",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": "a" * 64,
        "summary": "demo",
        "requires_python": ">=3.8",
    }
    base.update(overrides)
    return {k: (v if isinstance(v, list) else [v]) for k, v in base.items() if v is not None}


# -- names / versions ----------------------------------------------------------

@pytest.mark.parametrize(("raw", "want"), [("Foo.Bar_baz--Q", "foo-bar-baz-q"), ("a", "a"), ("A__B", "a-b")])
def test_normalize(raw: str, want: str) -> None:
    assert normalize_project_name(raw) == want


@given(st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?\Z"))
def test_valid_names_accepted_and_normalization_idempotent(name: str) -> None:
    assert validate_project_name(name) == name
    once = normalize_project_name(name)
    assert normalize_project_name(once) == once


@pytest.mark.parametrize("name", ["", "-foo", "foo-", "fo o", "föo", "foo/bar", " foo"])
def test_invalid_names(name: str) -> None:
    err = refused(validate_project_name, name)
    assert err.status == 400 and err.field == "name"
    assert err.reason == (
        f"{name!r} is an invalid value for Name. Error: Start and end with a letter or numeral "
        f"containing only ASCII numeric and '.', '_' and '-'. {SEE}"
    )


def test_versions() -> None:
    assert validate_version("1.0.post1") == Version("1.0.post1")
    err = refused(validate_version, "1.0+local")
    assert err.reason == f"'1.0+local' is an invalid value for Version. Error: Can't use PEP 440 local versions. {SEE}"
    err = refused(validate_version, "not a version")
    assert err.reason.startswith("'not a version' is an invalid value for Version. Error: Start and end")
    err = refused(validate_version, " 1.0")
    assert "Cannot have leading or trailing whitespace." in err.reason


# -- the form --------------------------------------------------------------------

def test_metadata_ok() -> None:
    meta = validate_metadata_fields(form())
    assert (meta.name, meta.normalized_name, meta.version, meta.filetype) == ("Demo.Pkg", "demo-pkg", Version("1.0"), "bdist_wheel")
    assert meta.requires_python == ">=3.8" and meta.pyversion == "py3"
    sdist = validate_metadata_fields(form(filetype="sdist", pyversion=None, summary="UNKNOWN"))
    assert sdist.pyversion == "source" and sdist.summary is None


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"protocol_version": "2"}, 400, "Unknown protocol version."),
        ({"metadata_version": "9.9"}, 400, f"'9.9' is an invalid value for Metadata-Version. Error: Unknown Metadata Version {SEE}"),
        ({"version": "1.0+abc"}, 400, f"'1.0+abc' is an invalid value for Version. Error: Can't use PEP 440 local versions. {SEE}"),
        ({"filetype": "bdist_egg"}, 400, "Invalid value for filetype. Error: Use a known file type."),
        ({"filetype": "bdist_wininst"}, 400, "Invalid value for filetype. Error: Use a known file type."),
        ({"filetype": None}, 400, "Invalid value for filetype. Error: This field is required."),
        ({"pyversion": None}, 400, "Invalid value for pyversion. Error: Python version is required for binary distribution uploads."),
        ({"filetype": "sdist", "pyversion": "py3"}, 400, "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist."),
        ({"sha256_digest": "xyz"}, 400, "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest."),
        ({"blake2_256_digest": "0" * 63}, 400, "Invalid value for blake2_256_digest. Error: Use a valid, hex-encoded, BLAKE2 message digest."),
        ({"sha256_digest": None}, 400, "Error: Include at least one message digest."),
        ({"summary": "two\nlines"}, 400, f"'two\\nlines' is an invalid value for Summary. Error: Use a single line only. {SEE}"),
        ({"requires_python": "=>3.8"}, 400, f"'=>3.8' is an invalid value for Requires-Python. Error: Invalid specifier in requirement. {SEE}"),
    ],
)
def test_metadata_refusals(overrides, status, reason) -> None:
    err = refused(validate_metadata_fields, form(**overrides))
    assert (err.status, err.reason) == (status, reason)


def test_md5_alone_is_enough_like_pypi() -> None:
    validate_metadata_fields(form(sha256_digest=None, md5_digest="0" * 32))


def test_long_values_are_shortened_in_reason() -> None:
    err = refused(validate_metadata_fields, form(summary="x" * 600))
    assert err.reason.startswith("'" + "x" * 30 + "..." + "x" * 30 + "' is an invalid value for Summary.")


def test_actions() -> None:
    check_action({":action": ["file_upload"]})
    err = refused(check_action, {":action": ["submit"]})
    assert err.status == 410
    assert err.reason == "Project pre-registration is no longer required or supported, upload your files instead."
    err = refused(check_action, {":action": ["doc_upload"]})
    assert err.status == 410 and err.reason.startswith("Uploading documentation is no longer supported")
    assert refused(check_action, {}).status == 400
    other = refused(check_action, {":action": ["remove_pkg"]})
    assert (other.status, other.reason) == (410, "Only :action=file_upload is supported.")


# -- filenames ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("filename", "project", "version", "filetype"),
    [
        ("demo_pkg-1.0.tar.gz", "Demo.Pkg", "1.0", "sdist"),
        ("demo_pkg-1.0.post1.tar.gz", "demo-pkg", "1.0-1", "sdist"),
        ("demo_pkg-1.0-py3-none-any.whl", "Demo.Pkg", "1.0", "bdist_wheel"),
        ("demo_pkg-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl", "demo_pkg", "1.0", "bdist_wheel"),
        ("demo_pkg-1.0.0-py3-none-any.whl", "demo_pkg", "1.0", "bdist_wheel"),  # 1.0 == 1.0.0
    ],
)
def test_good_filenames(filename, project, version, filetype) -> None:
    validate_filename(filename, project, version, filetype)


@pytest.mark.parametrize(
    ("filename", "filetype", "reason"),
    [
        ("demo_pkg-1.0\n.tar.gz", "sdist", "Cannot upload a file with non-printable characters (ordinals 0-31) or the DEL character (ordinal 127) in the name."),
        ("../demo_pkg-1.0.tar.gz", "sdist", "Cannot upload a file with '/' or '\\' in the name."),
        ("dir\\demo_pkg-1.0.tar.gz", "sdist", "Cannot upload a file with '/' or '\\' in the name."),
        (".demo_pkg-1.0.tar.gz", "sdist", "Cannot upload a file whose name starts with '.'."),
        ("demo_pkg-1.0.tar.bz2", "sdist", "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information."),
        ("demo_pkg-1.0.egg", "bdist_egg", "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ for more information."),
        ("demo_pkg-1.0.tar.gz", "bdist_wheel", "Invalid file extension: Extension .tar.gz is invalid for filetype bdist_wheel. See https://www.python.org/dev/peps/pep-0527 for more information."),
        ("demo_pkg-1.0-py3-none-any.whl", "sdist", "Invalid file extension: Extension .whl is invalid for filetype sdist. See https://www.python.org/dev/peps/pep-0527 for more information."),
        ("demo_pkg.tar.gz", "sdist", "Invalid source distribution filename: demo_pkg.tar.gz"),
        ("other-1.0.tar.gz", "sdist", "Start filename for 'Demo.Pkg' with 'demo_pkg'."),
        ("Demo.Pkg-1.0.tar.gz", "sdist", "Filename 'Demo.Pkg-1.0.tar.gz' is invalid, should be 'demo_pkg-1.0.tar.gz'."),
        ("demo_pkg-1.0.zip", "sdist", "Filename 'demo_pkg-1.0.zip' is invalid, should be 'demo_pkg-1.0.tar.gz'."),
        ("demo_pkg-2.0.tar.gz", "sdist", "Filename 'demo_pkg-2.0.tar.gz' is invalid, should be 'demo_pkg-1.0.tar.gz'."),
        ("other-1.0-py3-none-any.whl", "bdist_wheel", "Start filename for 'Demo.Pkg' with 'demo_pkg'."),
        ("Demo_Pkg-1.0-py3-none-any.whl", "bdist_wheel", "Filename 'Demo_Pkg-1.0-py3-none-any.whl' should contain the normalized project name 'demo_pkg', not 'Demo_Pkg'."),
        ("demo_pkg-2.0-py3-none-any.whl", "bdist_wheel", "Version in filename should be '1.0' not '2.0'."),
    ],
)
def test_bad_filenames(filename, filetype, reason) -> None:
    err = refused(validate_filename, filename, "Demo.Pkg", "1.0", filetype)
    assert (err.status, err.reason) == (400, reason)


def test_unparseable_wheel_name_uses_packaging_message() -> None:
    err = refused(validate_filename, "demo_pkg-1.0.whl", "demo-pkg", "1.0", "bdist_wheel")
    assert err.status == 400 and err.reason.startswith("Invalid wheel filename")


def test_content_type() -> None:
    check_content_type("application/octet-stream")
    for bad in (None, "", "image/png"):
        err = refused(check_content_type, bad)
        assert (err.status, err.reason) == (400, "Invalid distribution file.")


# -- digests -------------------------------------------------------------------------

def staged(data: bytes, tmp_path: Path) -> StagedFile:
    path = tmp_path / "f"
    path.write_bytes(data)
    d = digests(data)
    return StagedFile(path, "f", "application/octet-stream", len(data), d["sha256"], d["blake2b_256"], d["md5"])


def test_digests_match_case_insensitively(tmp_path: Path) -> None:
    s = staged(b"abc", tmp_path)
    d = digests(b"abc")
    check_digests({"sha256_digest": [d["sha256"].upper()], "blake2_256_digest": [d["blake2b_256"]]}, s)
    check_digests({"md5_digest": [d["md5"]]}, s)


@pytest.mark.parametrize("field", ["sha256_digest", "blake2_256_digest", "md5_digest"])
def test_digest_mismatch(tmp_path: Path, field: str) -> None:
    s = staged(b"abc", tmp_path)
    d = digests(b"abc")
    fields = {"sha256_digest": [d["sha256"]], "blake2_256_digest": [d["blake2b_256"]], "md5_digest": [d["md5"]]}
    fields[field] = ["0" * len(fields[field][0])]
    err = refused(check_digests, fields, s)
    assert (err.status, err.reason, err.field) == (
        400, "The digest supplied does not match a digest calculated from the uploaded file.", field)


def test_no_digest(tmp_path: Path) -> None:
    err = refused(check_digests, {}, staged(b"abc", tmp_path))
    assert err.reason == "Error: Include at least one message digest."


def test_file_already_exists_text() -> None:
    err = file_already_exists("demo_pkg-1.0.tar.gz", "ab" * 32)
    assert err.status == 400
    assert err.reason == (
        f"File already exists ('demo_pkg-1.0.tar.gz', with blake2_256 hash '{'ab' * 32}'). "
        "See http://127.0.0.1:8000/help/uploads#file-name-reuse for more information."
    )
    assert "already exist" in err.reason.lower()  # what twine --skip-existing looks for


# -- archives ---------------------------------------------------------------------------

def test_valid_archives(tmp_path: Path) -> None:
    check_archive(build_wheel(tmp_path / "demo_pkg-1.0-py3-none-any.whl"), "demo_pkg-1.0-py3-none-any.whl")
    check_archive(build_sdist(tmp_path / "demo_pkg-1.0.tar.gz"), "demo_pkg-1.0.tar.gz")
    zpath = tmp_path / "demo_pkg-1.0.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("demo_pkg-1.0/PKG-INFO", "Metadata-Version: 2.1\n")
    check_archive(zpath, "demo_pkg-1.0.zip")


def bad_archive(path: Path, filename: str) -> str:
    err = refused(check_archive, path, filename)
    assert err.status == 400
    return err.reason


def test_wheel_refusals(tmp_path: Path) -> None:
    name = "demo_pkg-1.0-py3-none-any.whl"
    p = tmp_path / name
    p.write_bytes(b"not a zip")
    assert bad_archive(p, name) == "Invalid distribution file. File is not a zipfile"
    build_wheel(p, skip=["WHEEL"])
    assert bad_archive(p, name) == "Invalid distribution file. WHEEL not found at demo_pkg-1.0.dist-info/WHEEL"
    build_wheel(p, skip=["METADATA"])
    assert bad_archive(p, name) == (
        f"Wheel {name!r} does not contain the required METADATA file: demo_pkg-1.0.dist-info/METADATA")
    build_wheel(p, skip=["RECORD"])
    assert bad_archive(p, name) == (
        f"Wheel {name!r} does not contain the required RECORD file: demo_pkg-1.0.dist-info/RECORD")
    with zipfile.ZipFile(p, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("demo_pkg-1.0.dist-info/WHEEL", "x")
    assert bad_archive(p, name) == "Invalid distribution file. File does not use a supported compression type"


def test_zip_bomb_refused(tmp_path: Path) -> None:
    name = "demo_pkg-1.0-py3-none-any.whl"
    p = build_wheel(tmp_path / name, extra={"demo_pkg/zeros.bin": b"\0" * (80 * 1024 * 1024)})
    assert bad_archive(p, name) == "Invalid distribution file. File exceeds compression ratio of 50"


def test_sdist_refusals(tmp_path: Path) -> None:
    name = "demo_pkg-1.0.tar.gz"
    p = tmp_path / name
    p.write_bytes(b"garbage")
    assert bad_archive(p, name) == "Invalid distribution file. File is not a tarfile"
    p.write_bytes(gzip.compress(b"not a tar" * 100))
    assert bad_archive(p, name) == "Invalid distribution file. File is not a tarfile"
    build_sdist(p, members={"a/PKG-INFO": b"x", "b/setup.py": b"y"})
    assert bad_archive(p, name) == "Invalid distribution file. Incorrect number of top-level directories in sdist"
    build_sdist(p, members={"demo_pkg-1.0/setup.py": b"y"})
    assert bad_archive(p, name) == "Invalid distribution file. PKG-INFO not found at demo_pkg-1.0/PKG-INFO"
    build_sdist(p)
    raw = p.read_bytes()
    p.write_bytes(raw[:-20])
    assert bad_archive(p, name) == "Invalid distribution file. File is not a tarfile"


def test_tar_bomb_stops_early(tmp_path: Path) -> None:
    name = "demo_pkg-1.0.tar.gz"
    p = tmp_path / name
    with tarfile.open(p, "w:gz") as tf:
        info = tarfile.TarInfo("demo_pkg-1.0/PKG-INFO")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"x\n"))
        info = tarfile.TarInfo("demo_pkg-1.0/zeros")
        info.size = 100 * 1024 * 1024
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    assert p.stat().st_size < 1024 * 1024
    assert bad_archive(p, name) == "Invalid distribution file. File exceeds compression ratio of 50"


@pytest.mark.parametrize("name", ["\u017fix", "\u212aeras", "p\u0131p"])
def test_non_ascii_lookalike_project_names_are_refused(name):
    """Long s, Kelvin sign and dotless i case-fold to ASCII letters; they must not pass as names."""
    from app.distributions.validate import validate_project_name

    with pytest.raises(UploadError):
        validate_project_name(name)


def test_repeated_member_names_are_refused(tmp_path: Path) -> None:
    """130,000 members all named PKG-INFO once passed: the member cap counted distinct names.
    A name repeated even once is refused (which copy an installer extracts is anyone's guess)."""
    name = "demo_pkg-1.0.tar.gz"
    p = tmp_path / name
    with tarfile.open(p, "w:gz") as tf:
        for _ in range(1000):
            info = tarfile.TarInfo("demo_pkg-1.0/PKG-INFO")
            info.size = 2
            tf.addfile(info, io.BytesIO(b"x\n"))
    assert bad_archive(p, name) == (
        "Invalid distribution file. Archive has more than one member named 'demo_pkg-1.0/PKG-INFO'")
    build_sdist(p, members={"demo_pkg-1.0/PKG-INFO": b"x", "./demo_pkg-1.0/PKG-INFO": b"y"})
    assert bad_archive(p, name) == (
        "Invalid distribution file. Archive has more than one member named './demo_pkg-1.0/PKG-INFO'")

    wheel = "demo_pkg-1.0-py3-none-any.whl"
    w = build_wheel(tmp_path / wheel)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(w, "a") as zf:
        zf.writestr("demo_pkg/__init__.py", b"VALUE = 2\n")
    assert bad_archive(w, wheel) == (
        "Invalid distribution file. Archive has more than one member named 'demo_pkg/__init__.py'")


def test_member_cap_counts_members(tmp_path: Path, monkeypatch) -> None:
    import app.distributions.validate as validate

    monkeypatch.setattr(validate, "MAX_ARCHIVE_MEMBERS", 3)
    name = "demo_pkg-1.0.tar.gz"
    members = {f"demo_pkg-1.0/{n}": b"x" for n in ("PKG-INFO", "a", "b")}
    check_archive(build_sdist(tmp_path / name, members=members), name)
    members["demo_pkg-1.0/c"] = b"x"
    assert bad_archive(build_sdist(tmp_path / name, members=members), name) == (
        "Invalid distribution file. Archive has more than 3 members")
