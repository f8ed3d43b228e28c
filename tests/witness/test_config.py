"""PUBTRAIL_WITNESSES and PUBTRAIL_WITNESSES_REQUIRED: parsed strictly, refused with the variable named."""

from __future__ import annotations

import json

import pytest

from app.config import ConfigError, Settings
from app.tlog import cosignature as cosig

KEY1 = cosig.generate_key("w1.example", b"\x01" * 32)[1]
KEY2 = cosig.generate_key("w2.example", b"\x02" * 32)[1]


def test_witnesses_and_the_default_policy() -> None:
    assert (Settings.from_env({}).witnesses, Settings.from_env({}).witnesses_required) == ((), 0)
    env = {"PUBTRAIL_WITNESSES": json.dumps([{"url": "http://w1/", "key": KEY1}, {"url": "https://w2", "key": KEY2}])}
    settings = Settings.from_env(env)
    assert settings.witnesses == ({"url": "http://w1", "key": KEY1}, {"url": "https://w2", "key": KEY2})
    assert settings.witnesses_required == 1
    assert Settings.from_env({**env, "PUBTRAIL_WITNESSES_REQUIRED": "2"}).witnesses_required == 2


@pytest.mark.parametrize(
    "witnesses, required, message",
    [
        ("not json", None, "not valid JSON"),
        ('{"url": "http://w", "key": "k"}', None, "JSON list"),
        (json.dumps([{"url": "http://w"}]), None, "each witness"),
        (json.dumps([{"url": "ftp://w", "key": KEY1}]), None, "not http"),
        (json.dumps([{"url": "http://w", "key": "w+00000000+AAAA"}]), None, "witness key"),
        (json.dumps([{"url": "http://w", "key": KEY1}, {"url": "http://v", "key": KEY1}]), None, "two witnesses"),
        (json.dumps([{"url": "http://w", "key": KEY1}]), "2", "names 1 witnesses"),
        (None, "1", "names 0 witnesses"),
    ],
)
def test_bad_witness_settings_are_refused(witnesses, required, message) -> None:
    env = {}
    if witnesses is not None:
        env["PUBTRAIL_WITNESSES"] = witnesses
    if required is not None:
        env["PUBTRAIL_WITNESSES_REQUIRED"] = required
    with pytest.raises(ConfigError, match=message) as error:
        Settings.from_env(env)
    assert "PUBTRAIL_WITNESSES" in str(error.value)


def test_a_log_key_is_not_a_witness_key() -> None:
    from app.tlog import note

    log_key = note.generate_key("log.example", b"\x01" * 32)[1]
    with pytest.raises(ConfigError, match="0x04"):
        Settings.from_env({"PUBTRAIL_WITNESSES": json.dumps([{"url": "http://w", "key": log_key}])})


def test_a_witness_without_url_is_push_only() -> None:
    env = {"PUBTRAIL_WITNESSES": json.dumps([{"key": KEY1}, {"url": "http://w2", "key": KEY2}])}
    settings = Settings.from_env(env)
    assert settings.witnesses == ({"url": None, "key": KEY1}, {"url": "http://w2", "key": KEY2})
    with pytest.raises(ConfigError, match="push-only"):
        Settings.from_env({"PUBTRAIL_WITNESSES": json.dumps([{"url": None, "key": KEY1}])})
