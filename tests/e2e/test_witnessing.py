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
