#!/usr/bin/env python3
"""Benchmark PEP 740 attestation checking: what an attested upload adds, per upload.

    .venv/bin/python scripts/bench_attestations.py [--rounds 40]

Parses and verifies, offline against the embedded production trust root, the two
real attestations of tests/testdata/pep740 (publish/v1 and SLSA provenance) for
their sdist, as `Uploads._verify_attestations` does on an upload worker thread
(`app.attestations.parse_attestations` + `verify_all`), and prints p50/min/max in
milliseconds. The Verifier is built once, as the server builds it at start.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from app import attestations as pep740

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "testdata" / "pep740"
SDIST = "pypi_attestations-0.0.19.tar.gz"
SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    texts = [(ASSETS / f"{SDIST}.{kind}.attestation").read_text() for kind in ("publish", "slsa")]
    field = "[" + ",".join(texts) + "]"
    identity = pep740.attestation_identity(
        {"provider": "github", "repository": "trailofbits/pypi-attestations", "workflow": "release.yml"}
    )
    started = time.perf_counter()
    verifier = pep740.verifier()
    built = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        parsed = pep740.parse_attestations(field)
        pep740.verify_all(parsed, identity, SDIST, SHA256, verifier)
        times.append((time.perf_counter() - started) * 1000)
    print(f"verifier built from the trust root once: {built:.1f} ms")
    print(
        f"parse + verify 2 attestations (publish/v1, SLSA provenance v1): p50 {statistics.median(times):.1f} ms, "
        f"min {min(times):.1f} ms, max {max(times):.1f} ms ({args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
