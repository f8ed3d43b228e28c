"""Test helpers: real minimal wheels and sdists, and upload bodies encoded
exactly as twine encodes them (requests_toolbelt.MultipartEncoder)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from requests_toolbelt import MultipartEncoder


def build_wheel(path: Path, name: str = "demo_pkg", version: str = "1.0", *, extra: dict[str, bytes] | None = None,
                skip: Iterable[str] = ()) -> Path:
    """Write a minimal valid wheel (METADATA, WHEEL, RECORD + one module)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/RECORD": b"",
    }
    files.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            if any(member.endswith(s) for s in skip):
                continue
            zf.writestr(member, data)
    return path


def build_sdist(path: Path, top: str = "demo_pkg-1.0", *, members: dict[str, bytes] | None = None) -> Path:
    """Write a minimal sdist: ``top/PKG-INFO`` and ``top/setup.py``."""
    if members is None:
        members = {
            f"{top}/PKG-INFO": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
            f"{top}/pyproject.toml": b"[project]\nname='demo-pkg'\n",
        }
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def digests(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2b_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }


def twine_fields(filename: str, data: bytes, **overrides: object) -> list[tuple[str, object]]:
    """The (name, value) list twine's Repository._upload sends, in its order."""
    d = digests(data)
    fields: dict[str, object] = {
        "metadata_version": "2.1",
        "name": "demo-pkg",
        "version": "1.0",
        "summary": "A demo",
        "classifiers": ["Programming Language :: Python :: 3", "License :: OSI Approved :: MIT License"],
        "requires_python": ">=3.8",
        "pyversion": "py3" if filename.endswith(".whl") else "source",
        "filetype": "bdist_wheel" if filename.endswith(".whl") else "sdist",
        "sha256_digest": d["sha256"],
        "blake2_256_digest": d["blake2b_256"],
    }
    fields.update(overrides)
    out: list[tuple[str, object]] = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, list):
            out.extend((key, v) for v in value)
        else:
            out.append((key, value))
    out.append((":action", "file_upload"))
    out.append(("protocol_version", "1"))
    out.append(("content", (filename, io.BytesIO(data), "application/octet-stream")))
    return out


def encode(fields: list[tuple[str, object]]) -> tuple[bytes, str]:
    """Encode like twine: returns (body, content_type)."""
    encoder = MultipartEncoder(fields)
    return encoder.to_string(), encoder.content_type


async def chunked(body: bytes, size: int = 7919, consumed: list[int] | None = None) -> AsyncIterator[bytes]:
    """Yield ``body`` in chunks; record how many bytes were handed out."""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        if consumed is not None:
            consumed.append(len(piece))
        yield piece
