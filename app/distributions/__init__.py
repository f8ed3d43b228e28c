"""Distribution files: the reusable pieces behind PyPI's upload and simple APIs.

- :mod:`.errors`   ``UploadError(status, reason)``: PyPI's reason-phrase texts
- :mod:`.form`     streaming ``multipart/form-data`` parsing into a staged,
                   hashed temporary file
- :mod:`.validate` PyPI's rules (names, versions, filenames, digests,
                   archives, metadata fields) as pure functions
- :mod:`.blobs`    content-addressed file store (fsync + atomic rename)
- :mod:`.simple`   PEP 503 / PEP 691 simple index rendering and negotiation

No web framework, database or log code here; the route wires them.
"""
