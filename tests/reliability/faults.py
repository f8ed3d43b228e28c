"""Fault injection at every write step of pubtrail's append path (test harness).

`FaultInjector` wraps the storage layer of one service:

- the database: SQLAlchemy `before_cursor_execute` / `after_cursor_execute`
  and `commit` events on the engine, counting only statements of the log's
  write connections (`execution_options(pubtrail_write=True)`: the
  sequencer's batch transaction), and `LogStore._insert_entries` (entries are
  written through the driver's bulk path, SQLite `executemany` or PostgreSQL
  `COPY`, which SQLAlchemy's events do not see);
- the blob store: the upload's spool file (`form._Sink._open_spool`: its
  first write), `blobs._fsync_file`, `blobs._fsync_dir` and the `os.replace`
  that moves a file under its content address.

Every such call is a numbered *step*. `start()` ... `stop()` around a normal
round traces it, giving the list of steps; `start((n, mode))` makes step `n`
of that round fail: mode "before" raises `InjectedFault` without doing the
work, "after" does the work and then raises (for the commit: the
transaction is committed, then the caller hears an error, as when a commit
succeeds but its acknowledgement is lost). Reads, BEGIN and SAVEPOINT
statements are not steps, nor is anything outside the log's write
connections (the exchange failure audit, for one).
"""

from __future__ import annotations

import errno
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

import app.distributions.blobs as blobs_module
import app.distributions.form as form_module

MODES = ("before", "after")
_WRITE_STATEMENT = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)


class InjectedFault(OSError):
    """The failure the harness injects (an I/O error, as a failing disk or connection gives)."""

    def __init__(self, step: int, label: str, mode: str):
        super().__init__(errno.EIO, f"injected fault {mode} step {step} ({label})")
        self.step, self.label, self.mode = step, label, mode


@dataclass
class FaultInjector:
    """Numbers every write step while `active`; fails the armed one."""

    active: bool = False
    trace: list[str] = field(default_factory=list)
    armed: tuple[int, str] | None = None
    fired: InjectedFault | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _raise_after: dict[int, InjectedFault] = field(default_factory=dict)

    # --- control -------------------------------------------------------------

    def start(self, armed: tuple[int, str] | None = None) -> None:
        """Begin a round: clear the trace; fail step `armed[0]` in mode `armed[1]`, if given."""
        self.trace, self.armed, self.fired, self.active = [], armed, None, True

    def stop(self) -> list[str]:
        self.active = False
        return list(self.trace)

    def _step(self, label: str) -> str | None:
        """Record one write step; the fault mode if it is the armed one."""
        with self._lock:
            if not self.active:
                return None
            number = len(self.trace)
            self.trace.append(label)
            if self.armed is not None and self.armed[0] == number and self.fired is None:
                self.fired = InjectedFault(number, label, self.armed[1])
                return self.armed[1]
            return None

    def run(self, label: str, work, *args, **kwargs) -> Any:
        """Run `work` as one step, failing before or after it when armed."""
        mode = self._step(label)
        if mode == "before":
            raise self.fired
        result = work(*args, **kwargs)
        if mode == "after":
            raise self.fired
        return result

    # --- wiring --------------------------------------------------------------

    def install_modules(self, monkeypatch) -> None:
        """Wrap the blob store's and the upload spool's file operations (module-wide)."""
        injector = self
        fsync_file, fsync_dir = blobs_module._fsync_file, blobs_module._fsync_dir
        monkeypatch.setattr(blobs_module, "_fsync_file", lambda path: injector.run("blob fsync file", fsync_file, path))
        monkeypatch.setattr(blobs_module, "_fsync_dir", lambda path: injector.run("blob fsync dir", fsync_dir, path))

        class _Os:
            """`os` as the blob store sees it, with `replace` (the rename into place) wrapped."""

            def __getattr__(self, name):
                return getattr(os, name)

            @staticmethod
            def replace(source, target):
                return injector.run("blob rename", os.replace, source, target)

        monkeypatch.setattr(blobs_module, "os", _Os())

        open_spool = form_module._Sink._open_spool

        def wrapped_open_spool(sink) -> None:
            open_spool(sink)
            sink._file = _SpoolFile(sink._file, injector)

        monkeypatch.setattr(form_module._Sink, "_open_spool", wrapped_open_spool)

    def install_runtime(self, runtime) -> None:
        """Wrap one runtime's engine (statement and commit events) and LogStore entry insert."""
        injector = self
        engine = runtime.engine
        store = runtime.log.sequencer.store

        def scoped(conn) -> bool:
            return injector.active and bool(conn.get_execution_options().get("pubtrail_write"))

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):
            if not scoped(conn):
                return
            match = _WRITE_STATEMENT.match(statement)
            if match is None:
                return  # reads, BEGIN, SAVEPOINT / RELEASE
            verb = match.group(1).split()[0].upper()
            mode = injector._step(f"{verb} {match.group(2)}")
            if mode == "before":
                raise injector.fired
            if mode == "after":
                injector._raise_after[id(context)] = injector.fired

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):
            fault = injector._raise_after.pop(id(context), None)
            if fault is not None:
                raise fault

        @event.listens_for(engine, "commit")
        def commit(conn):
            if not scoped(conn):
                return
            mode = injector._step("COMMIT")
            if mode == "before":
                raise injector.fired
            if mode == "after":
                conn.connection.dbapi_connection.commit()  # durable; then the acknowledgement is lost
                raise injector.fired

        insert_entries = store._insert_entries
        store._insert_entries = lambda conn, rows: injector.run("INSERT log_entry (bulk)", insert_entries, conn, rows)


class _SpoolFile:
    """An upload's spool file whose first write is a step (the blob write)."""

    def __init__(self, file, injector: FaultInjector):
        self._file, self._injector, self._written = file, injector, False

    def write(self, data) -> int:
        if self._written:
            return self._file.write(data)
        self._written = True
        return self._injector.run("blob write (spool)", self._file.write, data)

    def __getattr__(self, name):
        return getattr(self._file, name)

