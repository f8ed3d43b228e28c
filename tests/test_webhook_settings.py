"""Webhook settings read from the environment."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings


def test_webhook_settings_from_env() -> None:
    settings = Settings.from_env({
        "PUBTRAIL_WEBHOOK_ALLOWED_HOSTS": " Hooks.Example.com, 127.0.0.1:8443 ,,",
        "PUBTRAIL_WEBHOOK_TIMEOUT": "3",
        "PUBTRAIL_WEBHOOK_POLL_INTERVAL": "0.5",
    })
    assert settings.webhook_allowed_hosts == frozenset({"hooks.example.com", "127.0.0.1:8443"})
    assert (settings.webhook_timeout, settings.webhook_poll_interval) == (3.0, 0.5)
    defaults = Settings.from_env({})
    assert (defaults.webhook_allowed_hosts, defaults.webhook_timeout, defaults.webhook_poll_interval) == (
        frozenset(), 10.0, 0.2)


def test_bad_webhook_timeout_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="PUBTRAIL_WEBHOOK_TIMEOUT"):
        Settings.from_env({"PUBTRAIL_WEBHOOK_TIMEOUT": "soon"})
