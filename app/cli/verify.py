"""`pubtrail verify` and `pubtrail verify-receipt`: check files and receipts against a pinned verifier key.

    pubtrail verify FILE... --server URL --key VKEY [--strict-identity] [--sigstore-trust-root FILE]
        each FILE (or every file of a folder, e.g. `pip download -d`) is hashed and its
        provenance fetched and verified (app.clients.provenance), and its PEP 740
        attestations, when its upload logged some, verified offline for that file and
        the logged publisher (app.clients.attestations); exit 0 only if all pass
    pubtrail verify-receipt PROOF --key VKEY (--entry FILE | --leaf-hash HEX)
        a receipt (C2SP tlog-proof text) offline
    pubtrail verify --key VKEY PROOF (--entry FILE | --leaf-hash HEX)
        the older spelling of verify-receipt, kept: --entry or --leaf-hash with a single
        file that starts with `c2sp.org/tlog-proof@v1` selects it
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app import tlog
from app.cli.errors import FAILED, USAGE, CliError
from app.clients.attestations import VerifiedAttestations, fetch_and_verify_attestations
from app.clients.errors import ClientError, ServerError, Unreachable
from app.clients.http import DEFAULT_TIMEOUT, Server
from app.clients.provenance import LocalFile, Provenance, expand_paths, fetch_and_verify
from app.clients.receipt import HEADER, is_receipt, verify_receipt
from app.clients.witnesses import WitnessPolicy
from app.tlog import note

DEFAULT_SERVER = "http://127.0.0.1:8000"


def default_server() -> str:
    return os.environ.get("PUBTRAIL_URL") or DEFAULT_SERVER


def register(commands, common: argparse.ArgumentParser) -> None:
    verify = commands.add_parser(
        "verify", parents=[common], help="verify downloaded files' provenance against a pinned verifier key",
        description="Hash each FILE (a wheel or sdist; a folder stands for every file in it, e.g. a "
        "`pip download -d` folder), fetch its provenance from --server and check it against the pinned key: "
        "the checkpoint's signature, the inclusion proofs of the upload and exchange entries, the file's hashes, "
        "size and name against the upload entry, the upload's link to its exchange, and every field of the "
        "answer against the entries, and, when the upload logged PEP 740 attestations, that the server's attestations "
        "hash to the logged digests and verify offline (Sigstore) for the file and the publisher the log recorded. "
        "Prints who published each file. A change of publisher identity since the "
        "project's previous release is a warning (a failure with --strict-identity). Exit status 0 only when "
        "every file passed, 1 when one failed (each failure names its check). With --entry or --leaf-hash and "
        "one PROOF file holding C2SP tlog-proof text, checks that receipt instead (as verify-receipt).",
    )
    verify.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a downloaded file, or a folder of them")
    verify.add_argument("--server", default=default_server(), metavar="URL",
                        help=f"the pubtrail server (default: PUBTRAIL_URL or {DEFAULT_SERVER})")
    _key(verify)
    verify.add_argument("--strict-identity", action="store_true",
                        help="fail a file whose publisher identity differs from the previous release's")
    verify.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"connect and read timeout per request (default {DEFAULT_TIMEOUT:g})")
    verify.add_argument("--sigstore-trust-root", type=Path, metavar="FILE",
                        default=os.environ.get("PUBTRAIL_SIGSTORE_TRUST_ROOT") or None,
                        help="Sigstore trusted_root.json to verify attestations with (default: "
                        "PUBTRAIL_SIGSTORE_TRUST_ROOT, else the production root embedded in sigstore; never fetched)")
    witness_flags(verify)
    legacy = verify.add_mutually_exclusive_group()
    legacy.add_argument("--entry", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    legacy.add_argument("--leaf-hash", metavar="HEX", help=argparse.SUPPRESS)
    verify.set_defaults(run=run)

    receipt = commands.add_parser(
        "verify-receipt", parents=[common], help="verify a receipt offline against a pinned verifier key",
        description="Check that an entry is in the log: the proof's checkpoint must be signed by the pinned "
        "key and its inclusion proof must lead from the entry to the checkpoint's root. Prints `OK: ...`; "
        "exit status 1 when the proof does not verify, 2 when the input cannot be read.",
    )
    _key(receipt)
    receipt.add_argument("proof", metavar="PROOF", type=Path, help="file with C2SP tlog-proof text ('-' for stdin)")
    what = receipt.add_mutually_exclusive_group(required=True)
    what.add_argument("--entry", type=Path, metavar="FILE", help="file with the exact entry bytes")
    what.add_argument("--leaf-hash", metavar="HEX", help="the entry's leaf hash, hex")
    receipt.add_argument("--server", metavar="URL",
                         help="with --witness: the pubtrail whose witnessed /checkpoint must vouch for the receipt")
    receipt.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=argparse.SUPPRESS)
    witness_flags(receipt)
    receipt.set_defaults(run=run_receipt)


def _key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, metavar="VERIFIER_KEY",
                        help="the log's verifier key string (pin it out of band)")


def witness_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--witness", action="append", default=[], metavar="VKEY",
                        help="a witness verifier key (repeatable): the server's /checkpoint must carry its "
                        "cosignature and be consistent with the answer, which may only rely on witnessed entries")
    parser.add_argument("--witnesses-required", type=int, metavar="K",
                        help="how many of the --witness keys must have cosigned (default: all of them)")


def witness_policy(args: argparse.Namespace) -> WitnessPolicy | None:
    try:
        return WitnessPolicy.parse(args.witness, args.witnesses_required)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from exc


def verifier_of(key: str) -> note.Verifier:
    try:
        return note.Verifier(key)
    except tlog.TlogError as exc:
        raise CliError(f"--key is not a note verifier key: {exc}", USAGE) from exc


# --- files -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    verifier = verifier_of(args.key)
    policy = witness_policy(args)
    if args.entry is not None or args.leaf_hash is not None:
        proof = args.files[0]
        if len(args.files) != 1 or (str(proof) != "-" and not is_receipt(_read_text(proof, "proof"))):
            raise CliError(
                f"--entry and --leaf-hash take one PROOF file of C2SP tlog-proof text (starting {HEADER!r}); "
                "to verify downloaded files, leave them out", USAGE,
            )
        args.proof = proof
        return run_receipt(args)
    try:
        paths = list(expand_paths(args.files))
    except OSError as exc:
        raise CliError(f"cannot list {exc.filename}: {exc.strerror or exc}", USAGE) from exc
    if not paths:
        raise CliError("no file to verify (the folders given are empty)", USAGE)
    files = []
    for path in paths:
        try:
            files.append(LocalFile.read(path))
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}", USAGE) from exc

    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    failures: list[str] = []
    try:
        server = Server(args.server, timeout=args.timeout)
    except Unreachable as exc:
        raise CliError(f"--server: {exc.detail}", USAGE) from exc
    with server:
        for file in files:
            try:
                provenance = fetch_and_verify(server, verifier, file)
                if policy is not None:
                    c = provenance.continuity
                    authorising = provenance.exchange_index if provenance.exchange_index is not None else provenance.api_token_index
                    indexes = [provenance.upload_index, authorising]
                    policy.vouch(server, verifier, provenance.checkpoint, indexes + [c.previous_index] * (c.previous_index is not None))
                attested = fetch_and_verify_attestations(
                    server, provenance, file, trust_root=args.sigstore_trust_root
                )
            except Unreachable as exc:
                raise CliError(f"{exc} (is pubtrail serve running there? set --server or PUBTRAIL_URL)", FAILED) from exc
            except ClientError as exc:
                failures.append(f"{file.path}: {_failure(exc, server)}")
                console.print(f"[bold red]FAILED[/] {file.path}: {_failure(exc, server)}")
                continue
            changed = provenance.continuity.changed
            show(console, provenance, attested)
            if changed and args.strict_identity:
                failures.append(f"{file.path}: identity continuity: the publisher identity changed (--strict-identity)")
                console.print(f"[bold red]FAILED[/] {file.path}: identity continuity: --strict-identity")
    if failures:
        counted = f"{len(failures)} of {len(files)} files failed verification" if len(files) > 1 else "FAILED"
        raise CliError(f"{counted}: {failures[0]}", FAILED)
    return 0


def _failure(exc: ClientError, server: Server) -> str:
    if isinstance(exc, ServerError) and exc.check == "known to the server":
        return f"known to the server: this file was never uploaded to {server.url} ({exc.detail})"
    return str(exc)


def show(console, provenance: Provenance, attested: VerifiedAttestations | None = None) -> None:
    """Who published the file, from the verified entries (and its verified attestations)."""
    from rich.markup import escape

    p = provenance
    who = p.publisher
    name = p.file.path if p.file is not None else p.filename
    console.print(f"[bold green]OK[/] {escape(str(name))}: {escape(p.project)} {escape(p.version)} ({escape(p.packagetype)})")
    rows = [("authorised", p.authorised_by)]
    if who is not None:
        rows += [
            ("repository", f"{who['repository'] or '-'} ({who['provider']})"),
            ("workflow", who["workflow"] or who["workflow_ref"] or "-"),
            ("ref", who["ref"] or "-"),
            ("commit", who["sha"] or "-"),
            ("environment", who["environment"] or "-"),
            ("actor", who["actor"] or "-"),
        ]
    authorising = (
        f"exchange entry {p.exchange_index}" if p.exchange_index is not None
        else f"API token {p.token_id} created in entry {p.api_token_index}"
    )
    rows += [
        ("uploaded", p.uploaded_at),
        ("log", f"upload entry {p.upload_index}, {authorising}, proven at size {p.tree_size} of {p.origin}"),
    ]
    if p.flags:
        rows.append(("flags", ", ".join(p.flags) + " (the server's word, not proven)"))
    incidents = "; ".join(f"#{i['id']} (entry {i['log_index']}): {i['description']}" for i in p.incidents)
    rows.append(("incidents", incidents or "none"))
    if attested is not None:
        kinds = ", ".join(t.removeprefix("https://") for t in attested.predicate_types)
        rows.append(("attestations", f"{kinds}: verified offline (Sigstore), signed by the logged publisher"))
    else:
        rows.append(("attestations", "none"))
    for label, value in rows:
        console.print(f"  {label:<12} {escape(str(value))}")
    c = p.continuity
    if c.changed:
        def describe(identity):
            return ", ".join(f"{k} {identity[k]}" for k in identity)

        console.print(
            f"  [bold yellow]WARNING[/] publisher identity changed since {escape(str(c.previous_version))} "
            f"({escape(str(c.previous_filename))}, entry {c.previous_index}): was {escape(describe(c.previous))}, "
            f"now {escape(describe(c.current))}"
        )


# --- receipts ----------------------------------------------------------------------


def run_receipt(args: argparse.Namespace) -> int:
    verifier = verifier_of(args.key)
    policy = witness_policy(args)
    if policy is not None and not getattr(args, "server", None):
        raise CliError("--witness needs --server: the witnessed checkpoint comes from the log's /checkpoint", USAGE)
    if args.entry is not None:
        leaf = tlog.leaf_hash(_read_bytes(args.entry, "entry"))
    else:
        try:
            leaf = bytes.fromhex(args.leaf_hash)
        except ValueError as exc:
            raise CliError(f"--leaf-hash is not hex: {args.leaf_hash!r}", USAGE) from exc
    text = sys.stdin.read() if str(args.proof) == "-" else _read_text(args.proof, "proof")
    try:
        verified = verify_receipt(text, leaf, verifier)
    except ClientError as exc:
        raise CliError(f"FAILED: {exc}", FAILED) from exc
    print(f"OK: entry {verified.index} is in {verified.checkpoint.origin} at size {verified.checkpoint.size}")
    if policy is not None:
        # the receipt upgraded: a witnessed checkpoint, consistent with the receipt's, covers the entry
        try:
            with Server(args.server, timeout=args.timeout) as server:
                policy.vouch(server, verifier, verified.checkpoint, [verified.index])
                witnessed, names = policy.witnessed(server, verifier)
        except ClientError as exc:
            raise CliError(f"FAILED: {exc}", FAILED) from exc
        print(f"OK: witnessed at size {witnessed.size} by {', '.join(names)}")
    return 0


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} file {path}: {exc.strerror or exc}", USAGE) from exc


def _read_text(path: Path, what: str) -> str:
    return _read_bytes(path, what).decode("utf-8", "replace")
