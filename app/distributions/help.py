"""pubtrail's upload help page, served at ``/help/uploads``.

Every upload refusal ends with "See <public URL>/help/uploads#<section> for
more information."; the sections below are those anchors. The page says what
is checked and why, in the order the checks run.
"""

from __future__ import annotations

__all__ = ["UPLOAD_HELP_HTML"]

UPLOAD_HELP_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pubtrail: uploads</title></head>
<body>
<h1>Uploading to pubtrail</h1>
<p>pubtrail takes uploads exactly as PyPI's legacy API does (<code>twine upload</code>,
<code>pypa/gh-action-pypi-publish</code>). Each accepted file becomes an entry of the
transparency log and the answer carries its receipt. A refused upload leaves nothing
behind: no entry, no stored file. Refusals are reported in the HTTP status line, as on PyPI.</p>

<h2 id="invalid-auth">Authentication</h2>
<p>Use HTTP Basic with the username <code>__token__</code> and, as password, an upload
token minted by <code>POST /_/oidc/mint-token</code> from a CI job's OIDC identity (trusted
publishing). Tokens are short-lived and can be revoked. The token is checked when the
request starts and again when the entry is appended: a token that expired or was revoked
while the body streamed in, or whose trusted publisher was removed from the project
meanwhile, is refused (403) and nothing is stored.</p>

<h2 id="project-name">Project scope</h2>
<p>A token may upload only to the projects whose trusted publisher minted it, and only
while that publisher is still registered for the project (PyPI re-checks the same at
upload time).</p>

<h2 id="metadata">Metadata and filename</h2>
<p>The form fields are checked with PyPI's rules and texts: metadata version, name,
version (PEP 440, no local versions), file type. Sdists must be named
<code>{normalized_name}-{version}.tar.gz</code> (PEP 625); wheels must carry the
project's normalized name and the form's version. At least one digest (sha256, blake2_256
or md5) must be sent, and every digest sent must match the file.</p>

<h2 id="file-size-limit">Size limits</h2>
<p>The file may be at most <code>PUBTRAIL_MAX_UPLOAD_SIZE</code> bytes (100 MiB by
default); the limit is enforced while the body streams in. Form fields have a budget of
their own (1 MiB each, 16 MiB together, 1000 fields). Anything sent after the form's
closing boundary is ignored, and the server stops reading a body that goes on after it.</p>

<h2 id="file-name-reuse">File already exists</h2>
<p>As on PyPI, a file exists when its filename or its content was uploaded before. The
same file again (same name, same content) answers 200 and changes nothing; anything else
is refused with "File already exists", which <code>twine upload --skip-existing</code>
recognises. Filenames are never reused, even for other content.</p>

<h2 id="archive">Archive checks</h2>
<p>Wheels and zip sdists must be readable zip files using only stored or deflated members;
a wheel must hold its <code>.dist-info/WHEEL</code>, <code>METADATA</code> and
<code>RECORD</code>. A <code>.tar.gz</code> sdist must be a gzip tar with one top-level
directory holding <code>PKG-INFO</code>. Every archive: at most 100,000 members, no two
members with the same path (which copy an installer would extract is not something a
reviewer can tell), and no decompression bomb (more than 64 MiB unpacked and more than
50 times the file's size).</p>
</body></html>
"""
