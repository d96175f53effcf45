from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from typing import Any

from webhook_grpc.config import SETTING_FIELDS, Settings, load_settings

GROUPS = (
    "server",
    "database",
    "delivery",
    "targets",
    "auto_disable",
    "publishing",
    "subscriptions",
    "feed",
    "retention",
    "secrets",
)


def _groups(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in GROUPS}


def test_every_setting_reaches_a_group() -> None:
    grouped = {f.name for group in _groups(Settings()).values() for f in fields(group)}
    assert set(SETTING_FIELDS) - grouped == set()


def test_groups_carry_the_loaded_values() -> None:
    settings = load_settings(
        None,
        env={"WEBHOOK_GRPC_POLL_INTERVAL": "20ms"},
        overrides={"backoff_schedule": "2s, 1m", "retention_days": 3, "allow_http_targets": True},
    )
    for name, group in _groups(settings).items():
        for f in fields(group):
            if f.name in SETTING_FIELDS:
                assert getattr(group, f.name) == getattr(settings, f.name), (name, f.name)
    assert (
        settings.delivery.poll_interval == settings.feed.poll_interval == timedelta(milliseconds=20)
    )
    assert settings.publishing.first_attempt_delay == timedelta(seconds=2)
    assert settings.targets.allow_http_targets is True
    assert settings.retention.retention_days == settings.feed.retention_days == 3
