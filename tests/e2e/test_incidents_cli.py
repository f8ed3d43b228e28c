"""`pubtrail incidents declare|list|show` against a running server."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.e2e.blast_corpus import Corpus, _add, mint


@pytest.fixture
def cli(service, monkeypatch, capsys):
    monkeypatch.setenv("PUBTRAIL_ADMIN_TOKEN", ADMIN_TOKEN)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv[:2], "--url", service.url, *argv[2:]])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_declare_list_show(service, cli):
    corpus = Corpus()
    _add(service, "octo-org/app-1", "release.yml")
    exchange = mint(service, corpus, "octo-org/app-1", "release.yml", "refs/tags/v1", "pypi", "rsa-1")
    code, out, err = cli("incidents", "declare", "--description", "leaked token", "--token-id", exchange.token_id)
    assert (code, err) == (0, "")
    declared = json.loads(out)
    assert declared["revoked_tokens"] == [exchange.token_id]

    code, out, _ = cli("incidents", "list")
    assert code == 0
    assert [(i["id"], i["totals"]["exchanges"]) for i in json.loads(out)["incidents"]] == [(declared["id"], 1)]

    code, out, _ = cli("incidents", "show", declared["id"], "--limit", "5")
    assert code == 0
    shown = json.loads(out)
    assert shown["criteria"] == {"token_id": exchange.token_id}
    assert [i["token_state"] for i in shown["blast_radius"]["exchanges"]] == ["revoked"]


def test_refusals_are_one_line(service, cli):
    code, _, err = cli("incidents", "declare", "--description", "x", "--since", "2026-01-01T00:00:00Z")
    assert code == 2 and err.startswith("pubtrail: give at least one criterion")
    code, _, err = cli("incidents", "declare", "--description", "x", "--since", "soon", "--repository", "a/b")
    assert code == 1 and err.startswith("pubtrail: 400 Bad Request: since must be an RFC 3339 time")
    code, _, err = cli("incidents", "show", "inc-nope")
    assert code == 1 and err.startswith("pubtrail: 404 Not Found: no incident inc-nope")
