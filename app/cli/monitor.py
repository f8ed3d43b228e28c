"""`pubtrail monitor`: follow a log, verify everything, mirror it locally, alert on watch rules.

Each round is one `app.clients.monitor.Monitor.step`; this module adds the
loop, the output (one line per round; a progress bar while catching up) and
the alerts (printed, a hook command fed the event JSON on stdin, a webhook
POST signed with the Standard Webhooks scheme of `app.webhooks`).
``--witness``/``--witnesses-required`` hold every checkpoint to a witness
policy (`app.clients.witnesses.WitnessPolicy`); ``--cosign`` makes the
monitor a witness of the log (`app.clients.witnesses.Cosigner`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.cli.errors import FAILED, USAGE, CliError
from app.cli.verify import DEFAULT_SERVER, default_server, verifier_of, witness_policy
from app.clients.errors import ClientError, ServerError, Unreachable, VerificationError
from app.clients.http import DEFAULT_TIMEOUT
from app.clients.mirror import Mirror, MirrorError
from app.clients.monitor import Monitor, Step, event_of_failure, event_of_match
from app.clients.tiles import TileSource
from app.clients.witnesses import Cosigner
from app.watch import WatchRuleError, parse_rules

#: a step with more new entries than this shows a progress bar
PROGRESS_THRESHOLD = 4096
HOOK_TIMEOUT = 10.0


def register(commands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "monitor", parents=[common], help="follow a log, verify every entry, keep a verified local mirror",
        description="Each round: fetch the checkpoint and check its signature with the pinned key; check that it "
        "extends the last verified checkpoint in --state (a fork is never accepted); fetch the new entries through "
        "the tiles and entry bundles, re-hash every entry and the root and compare with the signed root; store the "
        "verified entries and checkpoint in the SQLite mirror in --state. Watch rules (--watch, TOML) raise alerts: "
        "printed, --hook CMD run with the event JSON on stdin, --webhook URL POSTed (Standard Webhooks signature). "
        "A verification failure is an alert too, and stops the monitor with exit status 1 and a message naming the "
        "check, the tree size and the entry index.",
    )
    parser.add_argument("--server", default=default_server(), metavar="URL",
                        help=f"the log: a pubtrail server, a static tlog-tiles copy or file:///DIR "
                        f"(default: PUBTRAIL_URL or {DEFAULT_SERVER})")
    parser.add_argument("--key", required=True, metavar="VERIFIER_KEY", help="the log's verifier key (pin it out of band)")
    parser.add_argument("--state", required=True, metavar="DIR", help="folder of the verified mirror (created if absent)")
    parser.add_argument("--once", action="store_true",
                        help="one round, then exit: 0 when the log verified, 1 when anything did not")
    parser.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds between rounds (default 60)")
    parser.add_argument("--watch", metavar="RULES.toml", help="watch rules ([[rule]] tables, see README)")
    parser.add_argument("--hook", metavar="CMD", help="shell command run per alert with the event JSON on stdin")
    parser.add_argument("--hook-timeout", type=float, default=HOOK_TIMEOUT, metavar="S",
                        help=f"seconds a hook may run before it is stopped (default {HOOK_TIMEOUT:g})")
    parser.add_argument("--webhook", metavar="URL", help="POST each alert here, signed with --webhook-secret")
    parser.add_argument("--webhook-secret", metavar="whsec_...", help="Standard Webhooks secret for --webhook")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"connect and read timeout per request (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--witness", action="append", default=[], metavar="VKEY",
                        help="a witness verifier key (repeatable): a checkpoint without valid cosignatures from "
                        "--witnesses-required of these keys is refused (an alert, exit status 1) before anything "
                        "is verified or recorded")
    parser.add_argument("--witnesses-required", type=int, metavar="K",
                        help="how many of the --witness keys must have cosigned (default: all of them)")
    parser.add_argument("--cosign", type=Path, metavar="WITNESS_KEY_FILE",
                        help="act as a witness of the log (`pubtrail keygen --witness NAME --out FILE`): follow its "
                        "newest checkpoint (GET /api/v1/log on --server, a pubtrail server), and after each verified "
                        "round cosign it (cosignature/v1) and POST the line to /api/v1/log/cosignatures; never two "
                        "inconsistent checkpoints (the last one cosigned is kept in --state)")
    parser.set_defaults(run=run)


class Alerts:
    """Sends each event: printed, to the hook, to the webhook. Hook and webhook failures are reported, never fatal."""

    def __init__(self, hook: str | None, hook_timeout: float, webhook: str | None, secret: str | None,
                 timeout: float) -> None:
        self.hook, self.hook_timeout = hook, hook_timeout
        self.webhook, self.secret, self.timeout = webhook, secret, timeout

    def send(self, event: dict[str, Any], line: str) -> None:
        print(f"ALERT {line}", flush=True)
        body = json.dumps(event, sort_keys=True).encode()
        if self.hook:
            try:
                result = subprocess.run(self.hook, shell=True, input=body, timeout=self.hook_timeout,
                                        capture_output=True)
                if result.returncode != 0:
                    err = result.stderr.decode(errors="replace").strip()[:200]
                    print(f"pubtrail: hook exited with status {result.returncode}: {err}", file=sys.stderr)
            except subprocess.TimeoutExpired:
                print(f"pubtrail: hook did not finish within {self.hook_timeout:g} s and was stopped", file=sys.stderr)
            except OSError as exc:
                print(f"pubtrail: hook could not run: {exc}", file=sys.stderr)
        if self.webhook:
            import httpx

            from app.webhooks import sign_headers

            msg_id = "msg_" + hashlib.sha256(body).hexdigest()[:32]
            headers = {"content-type": "application/json", **sign_headers(self.secret, msg_id, body)}
            try:
                response = httpx.post(self.webhook, content=body, headers=headers, timeout=self.timeout)
                if not response.is_success:
                    print(f"pubtrail: webhook {self.webhook} answered {response.status_code}", file=sys.stderr)
            except httpx.HTTPError as exc:
                print(f"pubtrail: webhook {self.webhook} failed: {exc or type(exc).__name__}", file=sys.stderr)


class _Progress:
    """A rich progress bar, shown only for steps with many new entries."""

    def __init__(self) -> None:
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < PROGRESS_THRESHOLD:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=Console(file=sys.stderr), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("verify", total=total)
        self._bar.update(self._task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def run(args: argparse.Namespace) -> int:
    verifier = verifier_of(args.key)
    rules = []
    if args.watch:
        try:
            rules = parse_rules(Path(args.watch).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"--watch: cannot read {args.watch}: {exc.strerror or exc}", USAGE) from exc
        except (WatchRuleError, UnicodeDecodeError) as exc:
            raise CliError(f"--watch {args.watch}: {exc}", USAGE) from exc
    if args.webhook and not args.webhook_secret:
        raise CliError("--webhook needs --webhook-secret whsec_...", USAGE)
    if args.webhook_secret:
        from app.webhooks import SECRET_PREFIX, WebhookError, secret_key

        try:
            if not args.webhook_secret.startswith(SECRET_PREFIX):
                raise WebhookError(f"a secret is written {SECRET_PREFIX}<base64>")
            secret_key(args.webhook_secret)
        except WebhookError as exc:
            raise CliError(f"--webhook-secret: {exc}", USAGE) from exc
    if args.interval <= 0:
        raise CliError("--interval must be positive", USAGE)
    policy = witness_policy(args)
    signer = _cosigner_key(args.cosign) if args.cosign is not None else None
    if signer is not None and policy is not None:
        raise CliError("--cosign follows the log's newest checkpoint, which no witness has cosigned yet: "
                       "leave out --witness", USAGE)
    try:
        source = TileSource(args.server, timeout=args.timeout)
    except Unreachable as exc:
        raise CliError(f"--server: {exc.detail}", USAGE) from exc
    try:
        mirror = Mirror(args.state, key=args.key, create=True)
        cosigner = None if signer is None else Cosigner(signer, mirror, args.server, time.time, timeout=args.timeout)
    except MirrorError as exc:
        raise CliError(f"--state: {exc.detail}", USAGE) from exc
    except Unreachable as exc:
        raise CliError(f"--cosign needs --server to be a pubtrail server: {exc.detail}", USAGE) from exc
    alerts = Alerts(args.hook, args.hook_timeout, args.webhook, args.webhook_secret, args.timeout)
    progress = _Progress()
    monitor = Monitor(source, verifier, mirror, rules=rules, progress=progress, witnesses=policy,
                      checkpoints=cosigner.newest_checkpoint if cosigner else None)
    origin = verifier.name
    with source, mirror, cosigner or contextlib.nullcontext():
        while True:
            started = time.monotonic()
            try:
                step = monitor.step()
            except VerificationError as exc:
                progress.close()
                alerts.send(event_of_failure(exc, origin, args.server), f"verification failed: {exc}")
                raise CliError(f"FAILED: {exc}", FAILED) from exc
            except ServerError as exc:
                progress.close()
                if args.once:
                    raise CliError(f"{exc} (is the log served at {args.server}?)", FAILED) from exc
                print(f"{_now()} cannot read the log: {exc}; retrying in {args.interval:g} s", flush=True)
            else:
                progress.close()
                _report(step, origin, time.monotonic() - started)
                for match in step.matches:
                    entry = match.entry
                    what = " ".join(
                        str(getattr(entry, name)) for name in ("project", "version", "filename") if hasattr(entry, name)
                    )
                    alerts.send(event_of_match(match, step, origin),
                                f"rule {match.rule!r}: {entry.kind} {what} at index {match.index}".replace("  ", " "))
                if cosigner is not None and not step.behind and step.size:
                    _cosign(cosigner, step, verifier, alerts, origin, args)
            if args.once:
                return 0
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def _cosigner_key(path: Path):
    from app import tlog
    from app.tlog.cosignature import CosignatureSigner

    try:
        return CosignatureSigner(path.read_text().strip())
    except OSError as exc:
        raise CliError(f"cannot read --cosign {path}: {exc.strerror or exc}", USAGE) from exc
    except (tlog.TlogError, UnicodeDecodeError) as exc:
        raise CliError(f"--cosign {path} is not a witness key: {exc}", USAGE) from exc


def _cosign(cosigner: Cosigner, step: Step, verifier, alerts: Alerts, origin: str, args: argparse.Namespace) -> None:
    """Cosign the round's verified checkpoint and submit it. The compare-and-swap refusing, or the log
    refusing a checkpoint it signed (a split view), stops the monitor; a refused or failed submission
    is reported (exit status 1 with --once) and tried again next round."""
    from app.clients.items import open_checkpoint

    try:
        done = cosigner.cosign_step(open_checkpoint(step.checkpoint_note, verifier))
    except MirrorError as exc:
        raise CliError(f"FAILED: {exc}", FAILED) from exc
    except VerificationError as exc:
        alerts.send(event_of_failure(exc, origin, args.server), f"verification failed: {exc}")
        raise CliError(f"FAILED: {exc}", FAILED) from exc
    except ServerError as exc:
        if args.once:
            raise CliError(f"the cosignature of size {step.size} was not accepted: {exc}", FAILED) from exc
        print(f"{_now()} the cosignature of size {step.size} was not accepted: {exc}; "
              f"retrying in {args.interval:g} s", flush=True)
        return
    if done.answer is not None:
        print(f"{_now()} cosigned size {done.size} as {cosigner.id}; the log holds cosignatures of it by "
              f"{', '.join(done.answer.get('cosigned_by') or [cosigner.id])}", flush=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _report(step: Step, origin: str, seconds: float) -> None:
    if step.behind:
        print(f"{_now()} {origin}: the server's checkpoint is behind the verified size {step.size} "
              f"(consistent)", flush=True)
        return
    rate = f", {step.new_entries / seconds:,.0f} entries/s" if step.new_entries and seconds > 0 else ""
    print(f"{_now()} {origin}: verified size {step.size} (+{step.new_entries} new, "
          f"{len(step.matches)} matched{rate})", flush=True)


def open_mirror(folder: str, key: str | None) -> Mirror:
    """The mirror in ``folder`` (checked against ``key`` when given) for the --mirror queries."""
    if key is not None:
        verifier_of(key)
    try:
        return Mirror(folder, key=key)
    except MirrorError as exc:
        raise CliError(f"--mirror: {exc.detail}", USAGE) from exc


def mirror_blast_radius(folder: str, key: str | None, criteria: dict[str, str], *, csv: bool = False):
    """`pubtrail blast-radius --mirror DIR`: the answer from the verified mirror, and its CSV when asked."""
    with open_mirror(folder, key) as mirror:
        try:
            result = mirror.blast_radius(criteria, now=int(time.time()))
        except ClientError as exc:
            raise CliError(exc.detail, USAGE) from exc
        return result, (mirror.blast_radius_csv(result) if csv else None)
