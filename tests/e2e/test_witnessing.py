"""The log asks two witnesses (pubtrail's own, over a real socket, and the independent one of the
tests) to cosign its checkpoints; /checkpoint serves the newest one the policy accepts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.tlog import cosignature as cosig
from app.tlog import note
from app.witness.protocol import Witness
from app.witness.server import make_app
from app.witness.state import WitnessState
from tests.support.server import serve
from tests.witness.spec_witness import SpecWitness, running

OURS_SEED, THEIRS_SEED = b"\x51" * 32, b"\x52" * 32


@pytest.fixture
def log_key(make_settings):
    settings = make_settings()
    return note.Signer(settings.key_file.read_text().strip()).verifier_key


@pytest.fixture
def witnesses(tmp_path: Path, log_key):
    skey, ours_vkey = cosig.generate_key("witness.test/ours", OURS_SEED)
    state = WitnessState(tmp_path / "ours.sqlite3")
    theirs = SpecWitness("witness.test/theirs", THEIRS_SEED, log_key)
    with serve(make_app(Witness(cosig.CosignatureSigner(skey), [log_key], state, time.time))) as ours_url:
        with running(theirs) as theirs_url:
            yield {
                "config": ({"url": ours_url, "key": ours_vkey}, {"url": theirs_url, "key": theirs.vkey}),
                "verifiers": [cosig.CosignatureVerifier(ours_vkey), cosig.CosignatureVerifier(theirs.vkey)],
                "theirs": theirs,
                "state": state,
            }


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def start(make_service, witnesses, required: int, **overrides):
    service = make_service(witnesses=witnesses["config"], witnesses_required=required, **overrides)
    service.runtime.witnessing.poll_interval = 0.05
    return service


def cosigners(service, witnesses, text: str) -> list[str]:
    verifier = note.Verifier(service.client.get("/api/v1/log").json()["verifier_key"])
    return sorted(c.name for c in cosig.verify_cosignatures(text, [verifier], witnesses["verifiers"]))


def witnessed_size(service, size: int, count: int = 2):
    def check():
        response = service.client.get("/checkpoint")
        if response.status_code != 200:
            return None
        lines = response.text.split("\n")
        return response.text if int(lines[1]) >= size and response.text.count("\u2014") >= count + 1 else None

    return check


def test_checkpoints_gather_both_cosignatures(make_service, witnesses) -> None:
    service = start(make_service, witnesses, required=2)
    for i in range(3):
        service.add_github_publisher(project=f"witnessed-{i}")
    size = service.log_size()
    text = wait_for(witnessed_size(service, size))
    assert cosigners(service, witnesses, text) == ["witness.test/ours", "witness.test/theirs"]
    assert text.split("\n")[1] == str(size)
    # the witnesses' own records moved with it
    assert witnesses["state"].latest(service.runtime.settings.origin).size == size
    assert witnesses["theirs"].state[0] == size
    # receipts keep using the newest checkpoint, signed by the log alone
    receipt = service.client.post(
        "/api/v1/projects/more/publishers", headers=service.admin,
        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
    ).json()["receipt"]
    assert receipt["checkpoint"].count("\u2014") == 1


def test_without_enough_cosignatures_checkpoint_is_503(make_service, witnesses) -> None:
    witnesses["theirs"].down = True
    service = start(make_service, witnesses, required=2)
    service.add_github_publisher(project="lonely")
    wait_for(lambda: witnesses["state"].latest(service.runtime.settings.origin).size == service.log_size())
    response = service.client.get("/checkpoint")
    assert response.status_code == 503 and "2 witness cosignatures" in response.json()["detail"]


def test_a_down_or_slow_witness_never_blocks_appends(make_service, witnesses) -> None:
    witnesses["theirs"].delay = 3.0
    service = start(make_service, witnesses, required=1, witness_timeout=10.0)
    started = time.monotonic()
    for i in range(5):
        service.add_github_publisher(project=f"fast-{i}")
    assert time.monotonic() - started < 2.5  # five appends while the witness sits on a request
    size = service.log_size()
    text = wait_for(witnessed_size(service, size, count=1))
    assert "witness.test/ours" in cosigners(service, witnesses, text)
    witnesses["theirs"].delay = 0
    witnesses["theirs"].down = True
    for i in range(5):
        service.add_github_publisher(project=f"still-{i}")
    assert time.monotonic() - started < 6


def test_a_restarted_log_learns_the_witness_size_from_a_409(make_service, witnesses, make_settings) -> None:
    service = start(make_service, witnesses, required=2)
    service.add_github_publisher(project="before")
    wait_for(witnessed_size(service, service.log_size()))
    # a second process of the log (no memory of what the witnesses cosigned)
    service.runtime.witnessing.peers[0].known = None
    service.runtime.witnessing.peers[1].known = None
    service.add_github_publisher(project="after")
    wait_for(witnessed_size(service, service.log_size()))


def test_a_forked_log_gets_no_cosignature(make_service, witnesses, tmp_path, database_url) -> None:
    """A copy of the log's database grown differently, signed with the same key: both witnesses refuse."""
    import shutil
    import sqlite3

    from app.api.app import create_app
    from app.runtime import build_runtime

    if not database_url.startswith("sqlite"):
        pytest.skip("the fork is a copy of the SQLite file")
    service = start(make_service, witnesses, required=2)
    service.add_github_publisher(project="common")
    wait_for(witnessed_size(service, service.log_size()))
    settings = service.runtime.settings
    copy = tmp_path / "fork-data"
    shutil.copytree(settings.data_dir, copy, ignore=shutil.ignore_patterns("*.sqlite3*"))
    source = sqlite3.connect(settings.effective_database_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy / "fork.sqlite3")
    source.backup(target)
    source.close()
    target.close()
    service.add_github_publisher(project="main-line")
    size = service.log_size()
    wait_for(witnessed_size(service, size))

    fork_settings = settings.with_overrides(data_dir=copy, database_url=f"sqlite:///{copy / 'fork.sqlite3'}")
    runtime = build_runtime(fork_settings, clock=service.clock)
    runtime.witnessing.poll_interval = 0.05
    try:
        with serve(create_app(runtime)) as url:
            import httpx

            with httpx.Client(base_url=url) as client:
                for project in ("fork-line-1", "fork-line-2"):
                    response = client.post(
                        f"/api/v1/projects/{project}/publishers", headers=service.admin,
                        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
                    )
                    assert response.status_code == 201, response.text
                fork_size = client.get("/api/v1/log").json()["size"]
                assert fork_size == size + 1
                # both witnesses saw it (a 409 then a refused proof) and neither moved
                wait_for(lambda: all(p.failures for p in runtime.witnessing.peers))
                served = client.get("/checkpoint")
                assert served.status_code == 200 and int(served.text.split("\n")[1]) < size
    finally:
        runtime.close()
    assert witnesses["state"].latest(settings.origin).size == size
    assert witnesses["theirs"].state[0] == size


def _client_flags(witnesses, required: int) -> list[str]:
    flags = []
    for verifier in witnesses["verifiers"]:
        flags += ["--witness", verifier.key_string]
    return flags + ["--witnesses-required", str(required)]


def test_clients_insist_on_the_cosignatures_they_are_told_to(make_service, witnesses, tmp_path, capsys) -> None:
    from app.cli import main
    from tests.e2e.test_upload import _post, build_wheel

    service = start(make_service, witnesses, required=1)
    service.add_github_publisher()
    wheel = build_wheel(tmp_path)
    assert _post(service, wheel, token=service.upload_token()).status_code == 200
    wait_for(witnessed_size(service, service.log_size(), count=2))
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    common = ["--server", service.url, "--key", key]
    blast = ["blast-radius", *common, "--repository", "octo-org/sampleproject", "--json"]
    assert main(["verify", str(wheel), *common, *_client_flags(witnesses, 2)]) == 0
    assert main([*blast, *_client_flags(witnesses, 2)]) == 0
    capsys.readouterr()

    # a newer entry, witnessed by ours only: /checkpoint (policy 1) now carries one cosignature
    witnesses["theirs"].down = True
    service.add_github_publisher(project="later")
    wait_for(lambda: witnessed_size(service, service.log_size(), count=1)())
    assert main(["verify", str(wheel), *common, *_client_flags(witnesses, 2)]) == 1
    assert "witness cosignatures: " in capsys.readouterr().out
    assert main([*blast, *_client_flags(witnesses, 2)]) == 1
    assert "1 valid cosignature(s)" in capsys.readouterr().err
    assert main(["verify", str(wheel), *common, *_client_flags(witnesses, 1)]) == 0
    # a witness key the server's checkpoint does not carry at all
    stranger = cosig.generate_key("witness.test/stranger", b"\x77" * 32)[1]
    assert main(["verify", str(wheel), *common, "--witness", stranger]) == 1
    capsys.readouterr()
    assert main(["verify", str(wheel), *common, "--witness", stranger, "--witnesses-required", "2"]) == 2
    assert main(["verify", str(wheel), *common, "--witness", "nonsense"]) == 2


def test_an_entry_newer_than_the_witnessed_checkpoint_is_refused(make_service, witnesses, tmp_path, capsys) -> None:
    from app.cli import main
    from tests.e2e.test_upload import _post, build_wheel

    witnesses["theirs"].down = True
    service = start(make_service, witnesses, required=1)
    service.add_github_publisher()
    wait_for(witnessed_size(service, service.log_size(), count=1))
    # the witnesses stop answering: the upload is logged but never witnessed
    service.runtime.witnessing.peers[0].retry_at = float("inf")
    wheel = build_wheel(tmp_path)
    assert _post(service, wheel, token=service.upload_token()).status_code == 200
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    flags = ["--witness", witnesses["verifiers"][0].key_string]
    assert main(["verify", str(wheel), "--server", service.url, "--key", key, *flags]) == 1
    assert "not witnessed yet" in capsys.readouterr().out


def test_a_receipt_is_upgraded_to_a_witnessed_checkpoint(make_service, witnesses, tmp_path, capsys) -> None:
    from app.cli import main

    service = start(make_service, witnesses, required=2)
    answer = service.client.post(
        "/api/v1/projects/receipted/publishers", headers=service.admin,
        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
    ).json()
    receipt = answer["receipt"]
    entry = service.client.get(f"/api/v1/log/entries/{receipt['index']}").json()
    proof = tmp_path / "proof.txt"
    proof.write_text(entry["tlog_proof"])
    leaf = ["--leaf-hash", receipt["leaf_hash"]]
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    flags = ["--server", service.url, *_client_flags(witnesses, 2)]
    service.add_github_publisher(project="grown-after")  # the witnessed checkpoint ends up larger
    wait_for(witnessed_size(service, service.log_size()))
    assert main(["verify-receipt", str(proof), "--key", key, *leaf, *flags]) == 0
    assert f"witnessed at size {service.log_size()}" in capsys.readouterr().out
    # an entry the witnesses have not seen yet
    service.runtime.witnessing.peers[0].retry_at = float("inf")
    late = service.client.post(
        "/api/v1/projects/late/publishers", headers=service.admin,
        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
    ).json()["receipt"]
    late_proof = tmp_path / "late.txt"
    late_proof.write_text(service.client.get(f"/api/v1/log/entries/{late['index']}").json()["tlog_proof"])
    assert main(["verify-receipt", str(late_proof), "--key", key, "--leaf-hash", late["leaf_hash"], *flags]) == 1
    assert "not witnessed yet" in capsys.readouterr().err
    assert main(["verify-receipt", str(proof), "--key", key, *leaf, *_client_flags(witnesses, 2)]) == 2


# --- pubtrail monitor --witness: the monitor insists on cosignatures, from a server or a static copy ------------


def _export_env(monkeypatch, service, witnesses, required: int) -> None:
    """The PUBTRAIL_* settings `pubtrail export` reads: the service's database and key, with witnesses."""
    import json

    settings = service.runtime.settings
    monkeypatch.setenv("PUBTRAIL_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("PUBTRAIL_SIGNING_KEY_FILE", str(settings.key_file))
    monkeypatch.setenv("PUBTRAIL_ORIGIN", settings.origin)
    monkeypatch.setenv("PUBTRAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PUBTRAIL_WITNESSES", json.dumps(list(witnesses["config"])))
    monkeypatch.setenv("PUBTRAIL_WITNESSES_REQUIRED", str(required))


def _size_of(note_text: str) -> int:
    return int(note_text.split("\n")[1])


def test_the_monitor_insists_on_cosignatures_from_a_server_and_a_static_copy(
    make_service, witnesses, tmp_path, capsys, monkeypatch
) -> None:
    from app.cli import main
    from app.clients.mirror import Mirror
    from tests.support.static_server import static_server

    service = start(make_service, witnesses, required=1)
    for i in range(3):
        service.add_github_publisher(project=f"both-{i}")
    both = service.log_size()
    wait_for(witnessed_size(service, both, count=2))
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    state = tmp_path / "mirror"

    def monitor(server: str, required: int, folder=state) -> int:
        return main(["monitor", "--server", server, "--key", key, "--state", str(folder), "--once",
                     *_client_flags(witnesses, required)])

    assert monitor(service.url, 2) == 0
    assert Mirror(state).size == both

    # a newer checkpoint that only one witness cosigned: refused under a policy of two, nothing recorded
    witnesses["theirs"].down = True
    service.add_github_publisher(project="one-only")
    one = service.log_size()
    wait_for(lambda: witnessed_size(service, one, count=1)())
    capsys.readouterr()
    assert monitor(service.url, 2) == 1
    out, err = capsys.readouterr()
    assert "ALERT verification failed: witness cosignatures:" in out
    assert f"(size {one}) has 1 valid cosignature(s)" in err and "2 required" in err
    assert Mirror(state).size == both
    assert monitor(service.url, 1) == 0
    assert Mirror(state).size == one

    # `pubtrail export` publishes what /checkpoint would serve under each policy: the static copies
    # carry the cosignatures, and the monitor holds them to the same rule over http.server and file://
    _export_env(monkeypatch, service, witnesses, 2)
    two_dir = tmp_path / "static-2"
    assert main(["export", str(two_dir)]) == 0
    published = (two_dir / "checkpoint").read_text()
    assert _size_of(published) == both and cosigners(service, witnesses, published) == [
        "witness.test/ours", "witness.test/theirs"]
    _export_env(monkeypatch, service, witnesses, 1)
    one_dir = tmp_path / "static-1"
    assert main(["export", str(one_dir)]) == 0
    assert _size_of((one_dir / "checkpoint").read_text()) == one
    capsys.readouterr()
    with static_server(two_dir) as url:
        assert monitor(url, 2, tmp_path / "from-static") == 0
    assert monitor(two_dir.as_uri(), 2, tmp_path / "from-file") == 0
    with static_server(one_dir) as url:
        assert monitor(url, 2, tmp_path / "from-static-1") == 1
        assert "1 valid cosignature(s)" in capsys.readouterr().err
        assert monitor(url, 1, tmp_path / "from-static-1") == 0
    assert Mirror(tmp_path / "from-static-1").size == one
    assert monitor(one_dir.as_uri(), 2, tmp_path / "from-file-1") == 1
    assert Mirror(tmp_path / "from-file-1").latest() is None


def test_cli_export_writes_nothing_until_a_checkpoint_is_witnessed(make_service, witnesses, tmp_path, capsys,
                                                                   monkeypatch) -> None:
    from app.cli import main

    witnesses["theirs"].down = True
    service = start(make_service, witnesses, required=1)
    service.add_github_publisher(project="lonely")
    wait_for(witnessed_size(service, service.log_size(), count=1))
    _export_env(monkeypatch, service, witnesses, 2)
    out = tmp_path / "static"
    assert main(["export", str(out)]) == 1
    assert "no checkpoint has 2 witness cosignatures yet" in capsys.readouterr().err
    assert not (out / "checkpoint").exists()


# --- pubtrail monitor --cosign: the monitor as a push-only witness ----------------------------------------------

MONITOR_SEED = b"\x61" * 32


@pytest.fixture
def monitor_key(tmp_path):
    """The monitor's witness key file and its verifier key."""
    skey, vkey = cosig.generate_key("monitor.test/w", MONITOR_SEED)
    path = tmp_path / "monitor-witness.key"
    path.write_text(skey + "\n")
    return path, vkey


def _cosign(service, key_file, state) -> list[str]:
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    return ["monitor", "--server", service.url, "--key", key, "--state", str(state), "--once", "--cosign", str(key_file)]


def test_a_monitor_cosigns_what_it_verified_and_clients_accept_its_cosignature(
    make_service, monitor_key, tmp_path, capsys
) -> None:
    from app.cli import main

    key_file, vkey = monitor_key
    service = make_service(witnesses=({"url": None, "key": vkey},), witnesses_required=1)
    answer = service.add_github_publisher(project="cosigned")
    service.add_github_publisher(project="cosigned-too")
    size = service.log_size()
    assert service.client.get("/checkpoint").status_code == 503  # waiting for the monitor
    state = tmp_path / "mirror"

    assert main(_cosign(service, key_file, state)) == 0
    assert f"cosigned size {size} as monitor.test/w+" in capsys.readouterr().out
    served = service.client.get("/checkpoint")
    assert served.status_code == 200 and _size_of(served.text) == size
    verifier = note.Verifier(service.client.get("/api/v1/log").json()["verifier_key"])
    (cosignature,) = cosig.verify_cosignatures(served.text, [verifier], [cosig.CosignatureVerifier(vkey)])
    assert cosignature.name == "monitor.test/w"

    # clients that require the monitor's cosignature accept the log
    key = verifier.key_string
    flags = ["--witness", vkey, "--witnesses-required", "1"]
    assert main(["monitor", "--server", service.url, "--key", key, "--state", str(tmp_path / "other"), "--once",
                 *flags]) == 0
    receipt = answer["receipt"]
    proof = tmp_path / "proof.txt"
    proof.write_text(service.client.get(f"/api/v1/log/entries/{receipt['index']}").json()["tlog_proof"])
    assert main(["verify-receipt", str(proof), "--key", key, "--leaf-hash", receipt["leaf_hash"],
                 "--server", service.url, *flags]) == 0
    assert f"witnessed at size {size} by monitor.test/w" in capsys.readouterr().out

    # the log grows: the next round cosigns the new size; a restarted monitor with nothing new resubmits
    # the same line (the log's answer is the same) and signs nothing new
    service.add_github_publisher(project="later")
    assert main(_cosign(service, key_file, state)) == 0
    grown = service.log_size()
    assert _size_of(wait_for(witnessed_size(service, grown, count=1))) == grown
    line = service.client.get("/checkpoint").text.splitlines()[-1]
    assert main(_cosign(service, key_file, state)) == 0
    assert service.client.get("/checkpoint").text.splitlines()[-1] == line


def test_a_monitor_never_cosigns_a_forked_log(make_service, monitor_key, tmp_path, capsys) -> None:
    """An older copy of the log's database grown differently, signed with the same key: the monitor that
    cosigned the original refuses it, and its compare-and-swap holds even when its mirror lost the newer
    checkpoints."""
    import shutil
    import sqlite3

    import httpx

    from app.api.app import create_app
    from app.cli import main
    from app.runtime import build_runtime

    key_file, vkey = monitor_key
    service = make_service(witnesses=({"url": None, "key": vkey},), witnesses_required=1)
    if not service.runtime.settings.effective_database_url.startswith("sqlite"):
        pytest.skip("the fork is a copy of the SQLite file")
    service.add_github_publisher(project="common")
    state = tmp_path / "mirror"
    assert main(_cosign(service, key_file, state)) == 0
    common = service.log_size()
    settings = service.runtime.settings
    copy = tmp_path / "fork-data"
    shutil.copytree(settings.data_dir, copy, ignore=shutil.ignore_patterns("*.sqlite3*"))
    source = sqlite3.connect(settings.effective_database_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy / "fork.sqlite3")
    source.backup(target)
    source.close()
    target.close()
    service.add_github_publisher(project="main-line")
    assert main(_cosign(service, key_file, state)) == 0
    size = service.log_size()
    capsys.readouterr()

    fork_settings = settings.with_overrides(data_dir=copy, database_url=f"sqlite:///{copy / 'fork.sqlite3'}")
    runtime = build_runtime(fork_settings, clock=service.clock)
    try:
        with serve(create_app(runtime)) as url:
            with httpx.Client(base_url=url) as client:
                for project in ("fork-line-1", "fork-line-2"):
                    response = client.post(
                        f"/api/v1/projects/{project}/publishers", headers=service.admin,
                        json={"provider": "github", "repository": "o/r", "repository_owner_id": "1", "workflow": "w.yml"},
                    )
                    assert response.status_code == 201, response.text
                fork = service.__class__(url, runtime, service.issuer, service.clock, client)
                assert fork.log_size() == size + 1
                assert main(_cosign(fork, key_file, state)) == 1
                out, err = capsys.readouterr()
                assert "ALERT verification failed: consistency:" in out and "consistency" in err
                assert runtime.witnessing.cosigners(size + 1) == []
                assert client.get("/checkpoint").status_code == 200
                assert _size_of(client.get("/checkpoint").text) == common  # the copy's old cosignature only

                # a mirror that lost what it verified after the common prefix follows the fork...
                mirror = sqlite3.connect(state / "mirror.sqlite3")
                mirror.execute("DELETE FROM entry WHERE idx >= ?", (common,))
                mirror.execute("DELETE FROM checkpoint WHERE size > ?", (common,))
                mirror.commit()
                mirror.close()
                assert main(_cosign(fork, key_file, state)) == 1
                err = capsys.readouterr().err
                # ...but the last cosigned checkpoint (size `size` of the original) is not a prefix of it
                assert f"cosigned size {size} with root" in err and "never cosigned" in err
                assert runtime.witnessing.cosigners(size + 1) == []
    finally:
        runtime.close()
    assert service.runtime.witnessing.cosigners(size) == [f"monitor.test/w+{cosig.CosignatureVerifier(vkey).key_id:08x}"]


# --- POST /api/v1/log/cosignatures: what the log accepts ------------------------------------------------------------


def test_pushed_cosignatures_are_checked_before_they_are_stored(make_service, monitor_key, make_settings) -> None:
    _key_file, vkey = monitor_key
    signer = cosig.CosignatureSigner(_key_file.read_text().strip())
    service = make_service(witnesses=({"url": None, "key": vkey},), witnesses_required=1)
    service.add_github_publisher(project="pushed")
    size = service.log_size()
    signed = service.client.get(f"/api/v1/log/checkpoints/{size}").text
    body, (log_line,) = cosig.signature_lines(signed)
    witness_id = f"monitor.test/w+{signer.key_id:08x}"

    def post(text: str | bytes):
        data = text.encode() if isinstance(text, str) else text
        return service.client.post("/api/v1/log/cosignatures", content=data,
                                   headers={"Content-Type": "text/plain; charset=utf-8"})

    def refused(text, status: int, words: str) -> None:
        response = post(text)
        assert response.status_code == status, (response.status_code, response.text)
        assert words in response.json()["detail"], response.json()
        assert service.runtime.witnessing.cosigners(size) == []

    line = signer.cosign(body, 1_790_000_000)
    # malformed
    refused("not a note", 400, "not a checkpoint note")
    refused(b"\xff\xfe" + (body + "\n" + line).encode(), 400, "UTF-8")
    refused("just text\n\n" + line, 400, "not a checkpoint note")
    refused(signed, 400, "no cosignature line")
    # unknown key, forged signature
    stranger = cosig.CosignatureSigner(cosig.generate_key("stranger.test/w", b"\x62" * 32)[0])
    refused(body + "\n" + stranger.cosign(body, 1_790_000_000), 403, "does not trust")
    refused(body + "\n" + line + stranger.cosign(body, 1_790_000_000), 403, "stranger.test/w")
    other_body = body.replace(body.split("\n")[1], str(size + 7), 1)
    forged = line.rsplit(" ", 1)[0] + " " + signer.cosign(other_body, 1_790_000_000).rsplit(" ", 1)[1]
    refused(body + "\n" + forged, 403, "does not verify")
    # a checkpoint the log never signed: a size it never reached, another root, another origin
    refused(other_body + "\n" + signer.cosign(other_body, 1_790_000_000), 409, f"size {size + 7}")
    root_line = body.split("\n")[2]
    other_root = body.replace(root_line, "A" * 43 + "=", 1)
    refused(other_root + "\n" + signer.cosign(other_root, 1_790_000_000), 409, f"signed size {size} with root")
    other_origin = body.replace(body.split("\n")[0], "elsewhere.test/log", 1)
    refused(other_origin + "\n" + signer.cosign(other_origin, 1_790_000_000), 409, "elsewhere.test/log")
    assert service.client.get("/checkpoint").status_code == 503

    # accepted, with or without the log's own line, and idempotent
    first = post(body + "\n" + line)
    assert first.status_code == 200, first.text
    assert first.json() == {"tree_size": size, "accepted": [witness_id], "cosigned_by": [witness_id]}
    again = post(signed + line)
    assert again.status_code == 200 and again.json() == first.json()
    served = service.client.get("/checkpoint")
    assert served.status_code == 200 and served.text == signed + line


def test_a_log_without_witnesses_refuses_every_cosignature(service) -> None:
    service.add_github_publisher(project="plain")
    signed = service.client.get("/api/v1/log").json()["checkpoint"]
    body = cosig.signature_lines(signed)[0]
    signer = cosig.CosignatureSigner(cosig.generate_key("monitor.test/w", MONITOR_SEED)[0])
    response = service.client.post("/api/v1/log/cosignatures", content=body + "\n" + signer.cosign(body, 1))
    assert response.status_code == 403 and "trusts no witnesses" in response.json()["detail"]
    assert service.client.post("/api/v1/log/cosignatures", content="nonsense").status_code == 400


def test_monitor_witness_flags_are_checked_before_anything_runs(service, monitor_key, tmp_path, capsys) -> None:
    from app.cli import main

    key_file, vkey = monitor_key
    key = service.client.get("/api/v1/log").json()["verifier_key"]
    base = ["monitor", "--server", service.url, "--key", key, "--state", str(tmp_path / "s"), "--once"]
    assert main([*base, "--cosign", str(key_file), "--witness", vkey]) == 2
    assert "leave out --witness" in capsys.readouterr().err
    assert main([*base, "--witness", "nonsense"]) == 2
    assert main([*base, "--witnesses-required", "1"]) == 2
    assert main([*base, "--cosign", str(tmp_path / "missing.key")]) == 2
    garbage = tmp_path / "garbage.key"
    garbage.write_text("PRIVATE+KEY+nonsense\n")
    assert main([*base, "--cosign", str(garbage)]) == 2
    assert "not a witness key" in capsys.readouterr().err
    static = tmp_path / "static"
    static.mkdir()
    assert main(["monitor", "--server", static.as_uri(), "--key", key, "--state", str(tmp_path / "f"), "--once",
                 "--cosign", str(key_file)]) == 2
    assert "--cosign needs --server to be a pubtrail server" in capsys.readouterr().err
    # a log that does not trust the monitor's key: the round verified, the cosignature is refused (exit 1)
    service.add_github_publisher(project="untrusted")
    assert main([*base, "--cosign", str(key_file)]) == 1
    err = capsys.readouterr().err
    assert "the cosignature of size 1 was not accepted" in err and "trusts no witnesses" in err
