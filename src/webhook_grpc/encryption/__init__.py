"""Subscription secrets encrypted at rest (SPEC §12): the sealing box and where its keys come
from. The database holds only sealed values; the dispatcher opens them to sign."""

from .box import SealedSecretError, SecretBox, open_signing_keys
from .keys import (
    SecretKeyError,
    generate_key,
    parse_key,
    resolve_box,
)

__all__ = [
    "SealedSecretError",
    "SecretBox",
    "SecretKeyError",
    "generate_key",
    "open_signing_keys",
    "parse_key",
    "resolve_box",
]
