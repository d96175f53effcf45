"""Where the encryption keys come from: the `secret_keys` setting (first seals, all open), or,
on a SQLite development setup with none configured, a key file generated beside the database."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from webhook_grpc.storage.urls import sqlite_file

from .box import SecretBox

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_FILE_SUFFIX = ".secret-key"


class SecretKeyError(Exception):
    """No usable key: the service does not start. The message never carries a key."""


def generate_key() -> str:
    """A new encryption key as configured: standard base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_key(text: str) -> bytes:
    """The 32 bytes of a configured key; ValueError (without the key) otherwise."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a secret key is standard base64 of 32 bytes") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"a secret key decodes to {KEY_BYTES} bytes, this one to {len(key)}")
    return key


def resolve_box(configured: Sequence[str], database_url: str) -> SecretBox:
    """The box of the configured keys; without any, a development key file on SQLite."""
    if configured:
        return SecretBox([parse_key(text) for text in configured])
    database = sqlite_file(database_url)
    if database is None:
        if database_url.startswith("sqlite"):
            log.warning(
                "secret_keys is not set: in-memory database, secrets sealed with a key "
                "that lives only as long as this process"
            )
            return SecretBox([secrets.token_bytes(KEY_BYTES)])
        raise SecretKeyError(
            "secret_keys is not set: on PostgreSQL subscription secrets must be encrypted with "
            "a configured key (create one with `webhook-grpc secrets generate-key`, set it in "
            "secret_keys or WEBHOOK_GRPC_SECRET_KEYS)"
        )
    return SecretBox([_development_key(Path(f"{database}{KEY_FILE_SUFFIX}"))])


def _development_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        log.warning(
            "secret_keys is not set: subscription secrets are encrypted with the development key "
            "file %s; anyone who can read it and the database can sign as this service. "
            "Configure secret_keys for production (README: Secrets at rest)",
            path,
        )
        try:
            return parse_key(path.read_text())
        except ValueError as error:
            raise SecretKeyError(f"the development key file {path} is not a key: {error}") from None
    with os.fdopen(fd, "w") as file:
        file.write(generate_key() + "\n")
    log.warning(
        "secret_keys is not set: GENERATED a development encryption key in %s (mode 0600). "
        "Keep it with the database: without it the subscription secrets cannot be used. "
        "Configure secret_keys for production (README: Secrets at rest)",
        path,
    )
    return parse_key(path.read_text())
