"""AES-256-GCM sealing of secrets with key rotation.

A sealed value is ``whenc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``. The key id (the
first 8 hex digits of a SHA-256 of the key) names the key that sealed it, so any configured key
opens what it sealed while only the first key seals. The subscription id is the associated data:
a sealed secret copied onto another subscription's row does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webhook_grpc.domain.signing import SigningKeys

SEALED_PREFIX = "whenc:v1:"
KEY_ID_LENGTH = 8
# What a sealed value starts with, up to and including its key id: what storage groups by.
SEALED_HEAD_LENGTH = len(SEALED_PREFIX) + KEY_ID_LENGTH
_NONCE_BYTES = 12


class SealedSecretError(Exception):
    """A sealed value that no configured key opens. The message never carries the value."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"webhook-grpc secret key id\0" + key).hexdigest()[:KEY_ID_LENGTH]


def sealed_key_id(value: str) -> str | None:
    """The key id a sealed value names, or None when `value` is not sealed (plain text)."""
    if not value.startswith(SEALED_PREFIX):
        return None
    return value[len(SEALED_PREFIX) : SEALED_HEAD_LENGTH]


class SecretBox:
    """Seals with the first key; opens with whichever configured key sealed the value."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self._current = key_id(keys[0])

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={self.key_ids})"

    @property
    def key_ids(self) -> list[str]:
        """The configured keys' ids, the sealing key first."""
        return list(self._ciphers)

    @property
    def current_key_id(self) -> str:
        return self._current

    def seal(self, secret: str, subscription_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(
            nonce, secret.encode(), subscription_id.encode()
        )
        token = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{SEALED_PREFIX}{self._current}:{token}"

    def open(self, sealed: str, subscription_id: str) -> str:
        kid = sealed_key_id(sealed)
        if kid is None:
            raise SealedSecretError(
                f"subscription {subscription_id}: its secret is not encrypted "
                "(run the migrations: `webhook-grpc migrate`)"
            )
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SealedSecretError(
                f"subscription {subscription_id}: its secret is encrypted with key id {kid}, "
                "which no configured secret_keys entry matches"
            )
        try:
            raw = base64.urlsafe_b64decode(sealed[SEALED_HEAD_LENGTH + 1 :])
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], subscription_id.encode())
        except (InvalidTag, ValueError):
            raise SealedSecretError(
                f"subscription {subscription_id}: its secret does not decrypt with key id {kid} "
                "(altered, or moved from another subscription)"
            ) from None
        return plain.decode()

    def reseal(self, sealed: str, subscription_id: str) -> str:
        """`sealed` under the current key (unchanged when it already is); plain text is sealed."""
        kid = sealed_key_id(sealed)
        if kid == self._current:
            return sealed
        plain = sealed if kid is None else self.open(sealed, subscription_id)
        return self.seal(plain, subscription_id)


def open_signing_keys(box: SecretBox, subscription_id: str, keys: SigningKeys) -> SigningKeys:
    """`keys` as stored (sealed) → the keys to sign with."""
    previous = keys.previous_secret
    return replace(
        keys,
        secret=box.open(keys.secret, subscription_id),
        previous_secret=box.open(previous, subscription_id) if previous else previous,
    )
