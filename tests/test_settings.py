"""Settings from the environment: defaults that just work, clear errors otherwise."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings

SID = "AC" + "a" * 32


def test_defaults_need_no_configuration(tmp_path):
    settings = load_settings({}, instance_path=tmp_path)

    assert settings.database_url == f"sqlite:///{tmp_path / 'polku.db'}"
    assert settings.uses_embedded_redis
    assert not settings.twilio_enabled
    assert settings.twilio_api_url == "https://api.twilio.com"


def test_generated_secret_key_survives_a_restart(tmp_path):
    first = load_settings({}, instance_path=tmp_path).secret_key

    assert len(first) > 40
    assert load_settings({}, instance_path=tmp_path).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_whatsapp_sender_may_have_the_prefix(tmp_path):
    env = {"TWILIO_WHATSAPP_FROM": "whatsapp:+358401234567"}

    settings = load_settings(env, instance_path=tmp_path)

    assert settings.twilio_whatsapp_from == "+358401234567"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL 'mysql://x/y' must start"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL 'localhost:6379' must start"),
        ({"TWILIO_API_URL": "ftp://x"}, "TWILIO_API_URL 'ftp://x' must start"),
        ({"PUBLIC_BASE_URL": "polku.fi"}, "PUBLIC_BASE_URL 'polku.fi' must start"),
        ({"TWILIO_ACCOUNT_SID": SID}, "must be set together"),
        (
            {"TWILIO_ACCOUNT_SID": "SK123", "TWILIO_AUTH_TOKEN": "t"},
            "copy the one that starts with AC",
        ),
        ({"TWILIO_SMS_FROM": "0401234567"}, "write it like \\+358401234567"),
        ({"TWILIO_WHATSAPP_FROM": "whatsapp:040"}, "TWILIO_WHATSAPP_FROM"),
        ({"RETRY_INTERVALS": "10,soon"}, "like 10,30,120"),
        ({"TWILIO_TIMEOUT": "long"}, "TWILIO_TIMEOUT 'long' is not a number"),
        ({"MAX_REQUEST_BYTES": "100"}, "use at least 1024"),
    ],
)
def test_bad_setting_is_named_with_what_to_do(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"SECRET_KEY": "k", **env}, instance_path=tmp_path)


def test_postgresql_url_is_accepted(tmp_path):
    url = "postgresql://polku@db.internal/polku"

    assert load_settings({"DATABASE_URL": url}, instance_path=tmp_path).database_url


def test_embedded_redis_refuses_a_socket_path_it_cannot_bind(tmp_path):
    from bot.embedded_redis import ensure_embedded_redis

    deep = tmp_path / ("very-long-folder-name-" * 5)
    settings = load_settings({}, instance_path=deep)

    with pytest.raises(ConfigError, match="POLKU_INSTANCE_PATH to a shorter"):
        ensure_embedded_redis(settings)
