"""Clients of a pubtrail server that trust nothing but the log's pinned verifier key.

They use only the public HTTP API, so they work against any pubtrail
deployment, and check every answer against the pinned key before using it:
the checkpoint's signature, each item's inclusion proof at the checkpoint's
size, each item's entry bytes against its leaf hash, and every plain field
of the answer against the verified entries.

- :mod:`.errors` -- the error tree under ``ClientError``; each error names its ``check``
- :mod:`.http` -- ``Server``: base URL, timeouts, clear errors for unreachable servers and non-JSON answers
- :mod:`.items` -- ``open_checkpoint`` and ``verify_item``: one proven log item against a signed checkpoint
- :mod:`.provenance` -- ``LocalFile``, ``verify_provenance``, ``fetch_and_verify``: where a file came from
- :mod:`.blast_radius` -- ``fetch_pages``, ``verify_pages``, ``verify_csv``: what an identity published
- :mod:`.receipt` -- ``verify_receipt``: a C2SP tlog-proof receipt, offline
- :mod:`.monitor` -- ``Monitor``: follow a log by its tiles, verify everything, mirror it
- :mod:`.mirror` -- ``Mirror``: the monitor's verified SQLite mirror and its blast-radius and provenance answers

Imports: the standard library, ``httpx``, ``rich``, :mod:`app.tlog`, :mod:`app.entries`,
:mod:`app.identity`, :mod:`app.watch` and :mod:`app.webhooks` only; never storage, services, the sequencer or the
web layer (a test imports every module in a fresh interpreter to prove it).
"""
