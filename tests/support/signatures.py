"""Signatures computed independently of the code under test, and the Standard Webhooks test
vector (tests/vectors/standard_webhooks.json, which the TypeScript tests read too)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass(frozen=True)
class SigningVector:
    id: str
    secret: str
    timestamp: int
    body: bytes
    signature: str


def _load_vector() -> SigningVector:
    path = Path(__file__).parent.parent / "vectors" / "standard_webhooks.json"
    raw = json.loads(path.read_text())
    return SigningVector(
        raw["id"], raw["secret"], raw["timestamp"], raw["body"].encode(), raw["signature"]
    )


VECTOR = _load_vector()


def overview_signature(secret: str, body: bytes) -> str:
    """`X-Webhook-Signature` as the README's three lines compute it: hex HMAC-SHA256 of the body,
    keyed with the whole secret string."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def overview_valid(header: str, body: bytes, secret: str) -> bool:
    """The README's check of `X-Webhook-Signature`: any of its signatures matches."""
    expected = overview_signature(secret, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split(" "))


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` by the Standard Webhooks specification: base64 HMAC-SHA256 of
    "{id}.{timestamp}.{body}", keyed with the base64-decoded part of the secret after whsec_."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def ed25519_valid(
    public_key: str, signature: str, msg_id: str, timestamp: int, body: bytes
) -> bool:
    """A `v1a,` signature checked with plain `cryptography` Ed25519 against a `whpk_` key."""
    raw = base64.b64decode(public_key.removeprefix("whpk_"))
    message = f"{msg_id}.{timestamp}.".encode() + body
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            base64.b64decode(signature.removeprefix("v1a,")), message
        )
    except InvalidSignature:
        return False
    return True
