"""The scheduled static export: PUBTRAIL_EXPORT_DIR kept up to date while serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app import jobs, tlog
from app.tlog import note
from app.config import Settings
from app.runtime import build_runtime


def test_settings_read_the_export_variables():
    settings = Settings.from_env({"PUBTRAIL_EXPORT_DIR": "/srv/log", "PUBTRAIL_EXPORT_INTERVAL": "15"})
    assert (settings.export_dir, settings.export_interval) == (Path("/srv/log"), 15.0)
    assert Settings.from_env({}).export_dir is None


def test_the_job_exports_and_follows_the_log(make_settings, tmp_path):
    out = tmp_path / "public"
    runtime = build_runtime(make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", export_dir=out))
    try:
        sequencer = runtime.log.sequencer
        sequencer.append_batch_sync([("test", b"first %d" % i) for i in range(3)])
        assert jobs.export_static_copy(runtime).size == 3
        sequencer.append_batch_sync([("test", b"second %d" % i) for i in range(300)])
        result = jobs.export_static_copy(runtime)
        assert (result.previous_size, result.size) == (3, 303)
        note = (out / "checkpoint").read_text()
        assert tlog.Checkpoint.parse(note.split("\n\n")[0] + "\n").size == 303
    finally:
        runtime.close()


def test_the_scheduler_runs_the_export_only_when_a_directory_is_set(make_settings, tmp_path):
    async def job_ids(settings) -> set[str]:
        runtime = build_runtime(settings)
        scheduler = jobs.start_scheduler(runtime)
        try:
            return {job.id for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)
            runtime.close()

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert "static-export" not in asyncio.run(job_ids(make_settings(database_url=url)))
    assert "static-export" in asyncio.run(job_ids(make_settings(database_url=url, export_dir=tmp_path / "o")))


class _Witnessing:
    """What the job asks of the runtime's witnessing service: the checkpoint /checkpoint serves."""

    def __init__(self, note: str | None) -> None:
        self.note = note

    def witnessed(self) -> str | None:
        return self.note


def test_with_witnesses_the_job_publishes_the_witnessed_checkpoint(make_settings, tmp_path):
    out = tmp_path / "public"
    runtime = build_runtime(make_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", export_dir=out))
    try:
        sequencer = runtime.log.sequencer
        runtime.witnessing = _Witnessing(None)
        sequencer.append_batch_sync([("test", b"first %d" % i) for i in range(3)])
        assert jobs.export_static_copy(runtime) is None and not (out / "checkpoint").exists()
        signed = runtime.log.reader.latest().note
        body = signed.split("\n\n")[0] + "\n"
        other = note.sign(body, [note.Signer(note.generate_key("witness.example")[0])])
        witnessed = signed + other.splitlines(keepends=True)[-1]  # plus a (here: unknown) witness's line
        sequencer.append_batch_sync([("test", b"second %d" % i) for i in range(300)])
        runtime.witnessing = _Witnessing(witnessed)
        result = jobs.export_static_copy(runtime)
        assert result.size == 3 and (out / "checkpoint").read_text() == witnessed
        assert not (out / "tile/0/001.p/47").exists()
    finally:
        runtime.close()
