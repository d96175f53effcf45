"""SigningKeys.active: which secrets sign an attempt while a secret is being rotated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webhook_grpc.domain.signing import SigningKeys

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_only_the_current_secret_signs_without_a_previous_one() -> None:
    assert SigningKeys("current", None, None).active(NOW) == ["current"]


def test_the_previous_secret_signs_too_during_its_grace_period() -> None:
    keys = SigningKeys("current", "previous", NOW + timedelta(seconds=1))
    assert keys.active(NOW) == ["current", "previous"]


def test_the_previous_secret_stops_signing_when_its_grace_period_ends() -> None:
    keys = SigningKeys("current", "previous", NOW)
    assert keys.active(NOW) == ["current"]
    assert keys.active(NOW + timedelta(hours=1)) == ["current"]


def test_a_previous_secret_without_an_expiry_never_signs() -> None:
    # Rotation always sets an expiry; a row without one has no grace period to honour.
    assert SigningKeys("current", "previous", None).active(NOW) == ["current"]


def test_keys_never_show_in_a_repr() -> None:
    keys = SigningKeys("whsec_current", "whsec_previous", None)
    assert "whsec_" not in repr(keys)
