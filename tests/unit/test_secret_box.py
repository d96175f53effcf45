"""Sealing secrets at rest: AES-GCM with key ids, rotation, and keys from configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from webhook_grpc.config import ConfigError, load_settings
from webhook_grpc.domain.signing import SigningKeys, generate_secret
from webhook_grpc.encryption import (
    SealedSecretError,
    SecretBox,
    SecretKeyError,
    generate_key,
    open_signing_keys,
    parse_key,
    resolve_box,
)
from webhook_grpc.encryption.box import sealed_key_id

KEY_A, KEY_B = generate_key(), generate_key()


def box(*keys: str) -> SecretBox:
    return SecretBox([parse_key(key) for key in keys])


def test_sealed_value_opens_and_holds_no_trace_of_the_secret() -> None:
    secret = generate_secret()
    sealed = box(KEY_A).seal(secret, "sub_1")
    assert sealed.startswith("whenc:v1:")
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert box(KEY_A).open(sealed, "sub_1") == secret
    # A fresh nonce each time: equal secrets do not look equal at rest.
    assert box(KEY_A).seal(secret, "sub_1") != sealed


def test_the_first_key_seals_and_every_key_opens() -> None:
    old = box(KEY_A).seal("whsec_x", "sub_1")
    rotated = box(KEY_B, KEY_A)
    assert rotated.open(old, "sub_1") == "whsec_x"
    assert sealed_key_id(rotated.seal("whsec_x", "sub_1")) == rotated.current_key_id
    resealed = rotated.reseal(old, "sub_1")
    assert sealed_key_id(resealed) == rotated.current_key_id != sealed_key_id(old)
    assert box(KEY_B).open(resealed, "sub_1") == "whsec_x"
    assert rotated.reseal(resealed, "sub_1") == resealed  # already current: unchanged


def test_a_wrong_key_or_another_row_does_not_open() -> None:
    sealed = box(KEY_A).seal("whsec_x", "sub_1")
    with pytest.raises(SealedSecretError, match="no configured secret_keys entry matches"):
        box(KEY_B).open(sealed, "sub_1")
    with pytest.raises(SealedSecretError, match="moved from another subscription"):
        box(KEY_A).open(sealed, "sub_2")
    with pytest.raises(SealedSecretError, match="not encrypted"):
        box(KEY_A).open("whsec_plain", "sub_1")


def test_signing_keys_open_current_and_previous() -> None:
    sealer = box(KEY_A)
    stored = SigningKeys(sealer.seal("whsec_new", "s"), sealer.seal("whsec_old", "s"), None)
    opened = open_signing_keys(sealer, "s", stored)
    assert (opened.secret, opened.previous_secret) == ("whsec_new", "whsec_old")


def test_box_repr_shows_key_ids_only() -> None:
    assert KEY_A not in repr(box(KEY_A))


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ=", generate_key() + "AAAA"])
def test_bad_configured_keys_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, env={"WEBHOOK_GRPC_SECRET_KEYS": f"{KEY_A},{value}"})
    assert "item 1" in str(refused.value)
    assert value not in str(refused.value) and KEY_A not in str(refused.value)


def test_keys_from_toml_list_and_never_in_the_settings_repr(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'secret_keys = ["{KEY_A}", "{KEY_B}"]\n')
    settings = load_settings(config, env={})
    assert settings.secret_keys == (KEY_A, KEY_B)
    assert KEY_A not in repr(settings) and KEY_A not in repr(settings.secrets)


def test_development_key_file_is_private_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = resolve_box((), url)
    key_file = tmp_path / "w.db.secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "GENERATED" in caplog.text
    assert resolve_box((), url).key_ids == first.key_ids


def test_postgresql_needs_configured_keys() -> None:
    with pytest.raises(SecretKeyError, match="on PostgreSQL"):
        resolve_box((), "postgresql+psycopg://postgres@127.0.0.1/x")
    assert resolve_box((KEY_A,), "postgresql://postgres@127.0.0.1/x").key_ids == box(KEY_A).key_ids
