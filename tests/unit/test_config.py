from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from webhook_grpc.config import (
    ConfigError,
    Settings,
    TokenConfig,
    env_var,
    load_settings,
    settings_table,
)
from webhook_grpc.domain.access import Role

DIGEST = hashlib.sha256(b"token").hexdigest()
OTHER_DIGEST = hashlib.sha256(b"other").hexdigest()


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webhook-grpc.toml"
    path.write_text(text)
    return path


def _error(**overrides: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, overrides=overrides)
    return caught.value


def test_defaults_are_the_seed() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.retention_days == 30
    assert settings.max_subscriptions == 25
    assert settings.max_retry_attempts == 5
    assert settings.backoff_schedule == tuple(timedelta(minutes=m) for m in (0, 1, 5, 30, 120))
    assert settings.failure_threshold == 0.95
    assert settings.failure_window == timedelta(hours=24)
    assert settings.min_deliveries_for_disable == 10
    assert settings.delivery_timeout == timedelta(seconds=10)
    assert settings.database_url == "sqlite:///./webhook-grpc.db"
    assert settings.listen == "127.0.0.1:50051"
    assert settings.allow_http_targets is False
    assert settings.allow_private_targets is False
    assert settings.feed_heartbeat == timedelta(seconds=15)
    assert settings.max_payload_bytes == 262_144
    assert settings.tokens == ()
    assert settings.metrics_listen == ""
    assert settings.rotation_grace == timedelta(hours=24)
    assert settings.lease_duration == timedelta(seconds=60)
    assert settings.dispatcher_concurrency == 256
    assert settings.endpoint_concurrency == 16
    assert settings.poll_interval == timedelta(seconds=1)
    assert settings.retention_interval == timedelta(hours=1)
    assert settings.log_level == "INFO"
    assert settings.log_format == "auto"
    assert settings.is_open


def test_toml_file(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        f"""
retention_days = 7
backoff_schedule = [0, "500ms", 2]
failure_threshold = "90%"
delivery_timeout = 3
database_url = "postgresql+psycopg://app@db/webhooks"
listen = "[::]:50051"
allow_private_targets = true
metrics_listen = "127.0.0.1:9464"
log_level = "debug"
log_format = "TEXT"

[[tokens]]
role = "tenant"
tenant = "acme"
sha256 = "{DIGEST.upper()}"

[[tokens]]
role = "admin"
sha256 = "{OTHER_DIGEST}"
""",
    )
    settings = load_settings(path, env={})
    assert settings.retention_days == 7
    assert settings.backoff_schedule == (
        timedelta(0),
        timedelta(milliseconds=500),
        timedelta(minutes=2),
    )
    assert settings.failure_threshold == pytest.approx(0.9)
    assert settings.delivery_timeout == timedelta(seconds=3)
    assert settings.database_url == "postgresql+psycopg://app@db/webhooks"
    assert settings.listen == "[::]:50051"
    assert settings.allow_private_targets is True
    assert settings.metrics_listen == "127.0.0.1:9464"
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "text"
    assert settings.tokens == (
        TokenConfig(Role.TENANT, "acme", DIGEST),
        TokenConfig(Role.ADMIN, None, OTHER_DIGEST),
    )
    assert not settings.is_open
    # Untouched settings keep their defaults.
    assert settings.max_subscriptions == 25


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "delivery_timout = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.setting == "delivery_timout"
    assert "delivery_timeout" in str(caught.value)  # the suggestion
    assert str(path) in str(caught.value)


def test_unknown_table_in_file_is_an_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "[server]\nlisten = '0.0.0.0:1'\n")
    with pytest.raises(ConfigError, match="'server'"):
        load_settings(path, env={})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "retention_days = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, env={})


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_settings(tmp_path / "nope.toml", env={})


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    path = _file(tmp_path, "retention_days = 7\nmax_subscriptions = 3\nlisten = '127.0.0.1:1'\n")
    env = {"WEBHOOK_GRPC_MAX_SUBSCRIPTIONS": "4", "WEBHOOK_GRPC_LISTEN": "127.0.0.1:2"}
    settings = load_settings(path, env=env, overrides={"listen": "127.0.0.1:3"})
    assert settings.retention_days == 7  # file
    assert settings.max_subscriptions == 4  # env beats file
    assert settings.listen == "127.0.0.1:3"  # overrides beat env
    assert settings.max_retry_attempts == 5  # default


def test_none_overrides_are_ignored() -> None:
    assert load_settings(env={}, overrides={"listen": None}).listen == "127.0.0.1:50051"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = _file(tmp_path, "retention_days = 9\n")
    assert load_settings(env={"WEBHOOK_GRPC_CONFIG": str(path)}).retention_days == 9


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_GRPC_RETENTION_DAYS", "12")
    assert load_settings().retention_days == 12


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("backoff_schedule", "0, 1, 5", tuple(timedelta(minutes=m) for m in (0, 1, 5))),
        ("backoff_schedule", "[0, 1, 5]", tuple(timedelta(minutes=m) for m in (0, 1, 5))),
        ("backoff_schedule", '["0ms", "50ms"]', (timedelta(0), timedelta(milliseconds=50))),
        ("backoff_schedule", "0s,500ms", (timedelta(0), timedelta(milliseconds=500))),
        ("backoff_schedule", "2", (timedelta(minutes=2),)),
        ("allow_http_targets", "true", True),
        ("allow_http_targets", "YES", True),
        ("allow_http_targets", "1", True),
        ("allow_http_targets", "no", False),
        ("allow_http_targets", "0", False),
        ("allow_http_targets", "False", False),
        ("failure_threshold", "95", 0.95),
        ("failure_threshold", "95%", 0.95),
        ("failure_threshold", "0.95", 0.95),
        ("failure_threshold", "1", 1.0),
        ("max_payload_bytes", " 1024 ", 1024),
        ("delivery_timeout", "500ms", timedelta(milliseconds=500)),
        ("metrics_listen", "", ""),
        ("feed_heartbeat", "2", timedelta(seconds=2)),
    ],
)
def test_environment_values(name: str, value: str, expected: object) -> None:
    settings = load_settings(env={env_var(name): value})
    assert getattr(settings, name) == expected


def test_tokens_from_environment() -> None:
    value = f'[{{role = "publisher", sha256 = "{DIGEST}"}}]'
    settings = load_settings(env={"WEBHOOK_GRPC_TOKENS": value})
    assert settings.tokens == (TokenConfig(Role.PUBLISHER, None, DIGEST),)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # Bare numbers are in the seed's unit for the setting.
        ("backoff_schedule", [0, 1, 5], tuple(timedelta(minutes=m) for m in (0, 1, 5))),
        ("failure_window", 2, timedelta(hours=2)),
        ("delivery_timeout", 3, timedelta(seconds=3)),
        ("feed_heartbeat", 4, timedelta(seconds=4)),
        ("lease_duration", 30, timedelta(seconds=30)),
        ("poll_interval", 0.25, timedelta(milliseconds=250)),
        ("rotation_grace", 6, timedelta(hours=6)),
        ("retention_interval", 90, timedelta(seconds=90)),
        # A unit wins everywhere.
        ("backoff_schedule", ["0ms", "50ms"], (timedelta(0), timedelta(milliseconds=50))),
        ("failure_window", "30m", timedelta(minutes=30)),
        ("delivery_timeout", "500ms", timedelta(milliseconds=500)),
        ("feed_heartbeat", "1s", timedelta(seconds=1)),
        ("lease_duration", "2m", timedelta(minutes=2)),
        ("poll_interval", "100ms", timedelta(milliseconds=100)),
        ("rotation_grace", "90m", timedelta(minutes=90)),
        ("retention_interval", "1h", timedelta(hours=1)),
        ("rotation_grace", "0s", timedelta(0)),
        # Already-typed values pass through.
        ("delivery_timeout", timedelta(seconds=2), timedelta(seconds=2)),
        ("failure_threshold", 95, 0.95),
        ("failure_threshold", 0.5, 0.5),
    ],
)
def test_durations_and_units(name: str, value: object, expected: object) -> None:
    assert getattr(load_settings(env={}, overrides={name: value}), name) == expected


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": "thirty"}, "retention_days"),
        ({"retention_days": 1.5}, "retention_days"),
        ({"retention_days": True}, "retention_days"),
        ({"max_subscriptions": -1}, "max_subscriptions"),
        ({"max_retry_attempts": 0}, "max_retry_attempts"),
        ({"min_deliveries_for_disable": 0}, "min_deliveries_for_disable"),
        ({"max_payload_bytes": 0}, "max_payload_bytes"),
        ({"dispatcher_concurrency": 0}, "dispatcher_concurrency"),
        ({"endpoint_concurrency": 0}, "endpoint_concurrency"),
        ({"backoff_schedule": []}, "backoff_schedule"),
        ({"backoff_schedule": ""}, "backoff_schedule"),
        ({"backoff_schedule": [0, "-1m"]}, "backoff_schedule"),
        ({"backoff_schedule": [0, "soon"]}, "backoff_schedule"),
        ({"backoff_schedule": "[0, 1"}, "backoff_schedule"),
        ({"backoff_schedule": 5}, "backoff_schedule"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": "0%"}, "failure_threshold"),
        ({"failure_threshold": 101}, "failure_threshold"),
        ({"failure_threshold": "150%"}, "failure_threshold"),
        ({"failure_threshold": -0.5}, "failure_threshold"),
        ({"failure_threshold": "nan"}, "failure_threshold"),
        ({"failure_threshold": "most"}, "failure_threshold"),
        ({"failure_window": 0}, "failure_window"),
        ({"delivery_timeout": "0s"}, "delivery_timeout"),
        ({"delivery_timeout": "10 parsecs"}, "delivery_timeout"),
        ({"delivery_timeout": "-1s"}, "delivery_timeout"),
        ({"delivery_timeout": False}, "delivery_timeout"),
        ({"feed_heartbeat": 0}, "feed_heartbeat"),
        ({"poll_interval": "0ms"}, "poll_interval"),
        ({"retention_interval": 0}, "retention_interval"),
        ({"lease_duration": "0s"}, "lease_duration"),
        ({"lease_duration": "19s"}, "lease_duration"),  # < 2 x the 10 s delivery_timeout
        ({"lease_duration": "10s", "delivery_timeout": "6s"}, "lease_duration"),
        ({"database_url": "mysql://db/x"}, "database_url"),
        ({"database_url": "postgres://db/x"}, "database_url"),
        ({"database_url": ""}, "database_url"),
        ({"listen": "50051"}, "listen"),
        ({"listen": "127.0.0.1:"}, "listen"),
        ({"listen": ":50051"}, "listen"),
        ({"listen": "127.0.0.1:70000"}, "listen"),
        ({"listen": "::1:50051"}, "listen"),
        ({"listen": "[nope]:50051"}, "listen"),
        ({"listen": "my host:50051"}, "listen"),
        ({"listen": 50051}, "listen"),
        ({"metrics_listen": "9464"}, "metrics_listen"),
        ({"allow_http_targets": "maybe"}, "allow_http_targets"),
        ({"allow_private_targets": 1}, "allow_private_targets"),
        ({"log_level": "chatty"}, "log_level"),
        ({"log_format": "xml"}, "log_format"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_invalid_values_name_the_setting(overrides: dict[str, object], setting: str) -> None:
    error = _error(**overrides)
    assert error.setting == setting
    assert str(error).startswith(f"invalid setting {setting!r}: ")


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"WEBHOOK_GRPC_DELIVERY_TIMEOUT": "soon"})
    assert caught.value.setting == "delivery_timeout"
    assert "WEBHOOK_GRPC_DELIVERY_TIMEOUT" in str(caught.value)


def test_lease_must_cover_two_delivery_timeouts() -> None:
    settings = load_settings(env={}, overrides={"delivery_timeout": "2s", "lease_duration": "4s"})
    assert settings.lease_duration == timedelta(seconds=4)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_retry_attempts"):
        Settings(max_retry_attempts=0)
    with pytest.raises(ConfigError, match="lease_duration"):
        Settings(delivery_timeout=timedelta(minutes=1))


def test_direct_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings(...) is defaults and arguments: the environment and the file are load_settings'.
    monkeypatch.setenv("WEBHOOK_GRPC_RETENTION_DAYS", "12")
    assert Settings().retention_days == 30
    assert Settings(retention_days=3).retention_days == 3


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, 'delivery_timeout = "soon"\n[[tokens]]\nrole = "root"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.setting == "delivery_timeout"
    assert str(path) in str(caught.value)
    path.write_text('[[tokens]]\nrole = "root"\nsha256 = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.setting == "tokens[0].role"
    assert str(path) in str(caught.value)


def test_later_layers_are_named_in_errors(tmp_path: Path) -> None:
    path = _file(tmp_path, "max_streams = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"WEBHOOK_GRPC_MAX_STREAMS": "0"})
    assert caught.value.setting == "max_streams"
    assert "WEBHOOK_GRPC_MAX_STREAMS" in str(caught.value)
    assert str(path) not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"WEBHOOK_GRPC_MAX_STREAMS": "0"}, overrides={"max_streams": "x"})
    assert caught.value.setting == "max_streams"
    assert "WEBHOOK_GRPC" not in str(caught.value)


@pytest.mark.parametrize(
    ("token", "setting"),
    [
        ({"role": "tenant", "sha256": DIGEST}, "tokens[0].tenant"),
        ({"role": "tenant", "tenant": "", "sha256": DIGEST}, "tokens[0].tenant"),
        ({"role": "admin", "tenant": "acme", "sha256": DIGEST}, "tokens[0].tenant"),
        ({"role": "publisher", "tenant": "acme", "sha256": DIGEST}, "tokens[0].tenant"),
        ({"role": "root", "sha256": DIGEST}, "tokens[0].role"),
        ({"sha256": DIGEST}, "tokens[0].role"),
        ({"role": "admin"}, "tokens[0].sha256"),
        ({"role": "admin", "sha256": DIGEST[:-1]}, "tokens[0].sha256"),
        ({"role": "admin", "sha256": DIGEST[:-1] + "g"}, "tokens[0].sha256"),
        ({"role": "admin", "sha256": "token"}, "tokens[0].sha256"),
        ({"role": "admin", "sha256": DIGEST, "token": "plain"}, "tokens[0].token"),
        ({"role": "tenant", "tenant": 7, "sha256": DIGEST}, "tokens[0].tenant"),
        ({"role": "tenant", "tenant": "ac me!", "sha256": DIGEST}, "tokens[0].tenant"),
    ],
)
def test_invalid_tokens_name_the_setting(token: dict[str, object], setting: str) -> None:
    assert _error(tokens=[token]).setting == setting


def test_second_token_error_names_its_index() -> None:
    tokens = [{"role": "admin", "sha256": DIGEST}, {"role": "admin", "sha256": "x"}]
    assert _error(tokens=tokens).setting == "tokens[1].sha256"


def test_duplicate_token_hashes_are_refused() -> None:
    tokens = [{"role": "admin", "sha256": DIGEST}, {"role": "publisher", "sha256": DIGEST}]
    assert _error(tokens=tokens).setting == "tokens"


def test_tokens_not_a_list() -> None:
    assert _error(tokens={"role": "admin"}).setting == "tokens"
    assert _error(tokens=["admin"]).setting == "tokens[0]"


def test_token_config_normalises() -> None:
    token = TokenConfig("admin", "", " " + DIGEST.upper())  # type: ignore[arg-type]
    assert token == TokenConfig(Role.ADMIN, None, DIGEST)
    assert token.role is Role.ADMIN


def test_settings_table_covers_every_setting() -> None:
    table = settings_table()
    assert [row[0] for row in table] == list(Settings.model_fields)
    shown = {name: default for name, default, _ in table}
    assert shown["backoff_schedule"] == "[0s, 1m, 5m, 30m, 2h]"
    assert shown["failure_threshold"] == "95%"
    assert shown["failure_window"] == "24h"
    assert shown["delivery_timeout"] == "10s"
    assert shown["allow_http_targets"] == "false"
    assert shown["max_payload_bytes"] == "262144"
    assert shown["database_url"] == "sqlite:///./webhook-grpc.db"
    assert all(description for _, _, description in table)
