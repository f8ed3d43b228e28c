"""Secrets from files (`*_FILE`, as Docker and Kubernetes mount them) and the tile cache setting."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings


def test_the_admin_token_and_database_url_come_from_files(tmp_path):
    token, url = tmp_path / "admin-token", tmp_path / "database-url"
    token.write_text("t" * 40 + "\n")
    url.write_text("postgresql+psycopg://pubtrail:secret@db/pubtrail\n")
    settings = Settings.from_env({"PUBTRAIL_ADMIN_TOKEN_FILE": str(token), "PUBTRAIL_DATABASE_URL_FILE": str(url)})
    assert settings.admin_token == "t" * 40
    assert settings.database_url == "postgresql+psycopg://pubtrail:secret@db/pubtrail"
    assert settings.admin_credentials() == {"admin": "t" * 40}


@pytest.mark.parametrize("name", ["PUBTRAIL_ADMIN_TOKEN", "PUBTRAIL_DATABASE_URL"])
def test_a_secret_set_twice_or_unreadable_is_refused_by_name(tmp_path, name):
    secret = tmp_path / "secret"
    secret.write_text("x" * 40)
    with pytest.raises(ConfigError, match=f"{name} and {name}_FILE are both set"):
        Settings.from_env({name: "y" * 40, f"{name}_FILE": str(secret)})
    with pytest.raises(ConfigError, match=f"{name}_FILE: cannot read"):
        Settings.from_env({f"{name}_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=f"{name}_FILE: .* is empty"):
        Settings.from_env({f"{name}_FILE": str(tmp_path / "empty")})


def test_without_files_the_variables_are_read_as_before():
    settings = Settings.from_env({"PUBTRAIL_ADMIN_TOKEN": "z" * 40})
    assert settings.admin_token == "z" * 40 and settings.database_url is None


def test_the_tile_cache_is_set_in_mib():
    assert Settings.from_env({}).tile_cache_bytes == 64 * 2**20
    assert Settings.from_env({"PUBTRAIL_TILE_CACHE_MIB": "8"}).tile_cache_bytes == 8 * 2**20
    with pytest.raises(ConfigError, match="PUBTRAIL_TILE_CACHE_MIB"):
        Settings.from_env({"PUBTRAIL_TILE_CACHE_MIB": "lots"})
