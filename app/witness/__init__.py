"""pubtrail as a C2SP tlog-witness: cosign checkpoints of configured logs, never two inconsistent ones.

- :mod:`.state` -- the latest cosigned size and root per origin, in SQLite, compare-and-swap
- :mod:`.protocol` -- parse and check one ``add-checkpoint`` request (pure)
- :mod:`.server` -- the ASGI app serving ``POST /add-checkpoint``

The cosignature format itself is :mod:`app.tlog.cosignature` (pure, for clients too).
"""
