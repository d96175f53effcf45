"""Webhook secrets and the two signature schemes an endpoint can verify (SPEC §4).

Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 over ``{id}.{timestamp}.{body}``, keyed with the
base64-decoded part of the secret after ``whsec_``. The overview's scheme: ``sha256=`` + hex
HMAC-SHA256 of the raw body, keyed with the secret string exactly as issued. Ed25519 (SPEC §12):
``v1a,`` + base64 Ed25519 signature over the same ``{id}.{timestamp}.{body}``, in place of ``v1,``;
the overview's header stays, keyed with the subscription's shared secret.

What a subscription signs with (one sealed value in storage) is its *signing key*: an HMAC
subscription's ``whsec_`` secret, or an Ed25519 subscription's private key and shared secret
together, ``whsk_… whsec_…`` (they rotate together). A lone ``whsk_`` key signs ``v1a,`` only: the
previous key of a rotation begun before Ed25519 subscriptions had a shared secret.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from secrets import token_bytes

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from webhook_grpc.domain.errors import InvalidArgument

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64

# Ed25519 keys as Standard Webhooks names them: the private key is the 32-byte seed.
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

STANDARD_SIGNATURE_HEADER = "webhook-signature"
OVERVIEW_SIGNATURE_HEADER = "X-Webhook-Signature"

_SECRET_RULE = (
    f"must be '{SECRET_PREFIX}' followed by standard base64 of "
    f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
)


def generate_secret() -> str:
    """Return a new secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def validate_secret(secret: str, field: str = "secret") -> None:
    """Raise InvalidArgument unless `secret` is a well-formed ``whsec_`` secret."""
    # Messages never echo the value: it is a credential.
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidArgument(field, f"secret {_SECRET_RULE}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, f"secret is not valid base64; it {_SECRET_RULE}") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidArgument(field, f"secret decodes to {len(key)} bytes; it {_SECRET_RULE}")


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _standard_message(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature of one message: ``v1,<base64 HMAC-SHA256>``."""
    digest = hmac.digest(
        _standard_key(secret), _standard_message(msg_id, timestamp, body), "sha256"
    )
    return "v1," + base64.b64encode(digest).decode("ascii")


def ed25519_signing_key(private_key: str, secret: str) -> str:
    """An Ed25519 subscription's signing key: its private key and its shared secret."""
    return f"{private_key} {secret}"


def generate_ed25519_private_key() -> str:
    """Return a new Ed25519 private key: ``whsk_`` + base64 of its 32-byte seed."""
    return PRIVATE_KEY_PREFIX + base64.b64encode(token_bytes(32)).decode("ascii")


# Loading a key costs as much as a signature (it derives the public key); the dispatcher signs
# with the same few keys over and over. Only in this process's memory, like the opened keys.
@functools.lru_cache(maxsize=4096)
def _ed25519_key(private_key: str) -> Ed25519PrivateKey:
    if not private_key.startswith(PRIVATE_KEY_PREFIX):
        raise ValueError(f"an Ed25519 private key starts with '{PRIVATE_KEY_PREFIX}'")
    seed = base64.b64decode(private_key.removeprefix(PRIVATE_KEY_PREFIX), validate=True)
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_key(private_key: str) -> str:
    """The public key receivers verify with: ``whpk_`` + base64 of its 32 raw bytes."""
    raw = _ed25519_key(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def ed25519_signature(private_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks asymmetric signature of one message: ``v1a,<base64 Ed25519>``."""
    signature = _ed25519_key(private_key).sign(_standard_message(msg_id, timestamp, body))
    return "v1a," + base64.b64encode(signature).decode("ascii")


def overview_signature(secret: str, body: bytes) -> str:
    """The overview's signature of a body: ``sha256=<hex HMAC-SHA256>``, keyed with the secret."""
    return "sha256=" + hmac.digest(secret.encode(), body, "sha256").hex()


def _signing_key_parts(signing_key: str) -> tuple[str, str]:
    """(the Ed25519 private key or "", the shared secret or "") of a signing key."""
    first, _, second = signing_key.partition(" ")
    if first.startswith(PRIVATE_KEY_PREFIX):
        return first, second
    return "", first


@dataclass(frozen=True)
class _Signer:
    """One signing key, decoded for signing: what `signature_headers` needs per attempt."""

    ed25519: Ed25519PrivateKey | None
    """The Ed25519 private key (``v1a,``), or None for an HMAC secret (``v1,``)."""
    standard: bytes
    """The HMAC key of ``v1,`` (the base64-decoded part of the secret), when not Ed25519."""
    overview: bytes | None
    """The HMAC key of ``X-Webhook-Signature`` (the secret as issued), when there is a secret."""


# Decoding a key costs as much as the signature it makes, and the dispatcher signs with the
# same few keys over and over; only in this process's memory, like the opened keys.
@functools.lru_cache(maxsize=4096)
def _signer(signing_key: str) -> _Signer:
    private_key, secret = _signing_key_parts(signing_key)
    if private_key:
        return _Signer(_ed25519_key(private_key), b"", secret.encode() if secret else None)
    return _Signer(None, _standard_key(secret), secret.encode() if secret else None)


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The signature headers of one attempt, one signature per signing key (current first).

    A ``whsec_`` secret signs ``v1,`` and the overview's ``X-Webhook-Signature``; an Ed25519
    signing key ``whsk_… whsec_…`` signs ``v1a,`` with the private key and
    ``X-Webhook-Signature`` with the shared secret (SPEC §12: ``webhook-signature`` carries
    ``v1a`` only)."""
    headers: dict[str, str] = {}
    _sign_into(headers, secrets, msg_id, timestamp, body)
    return headers


def _sign_into(
    headers: dict[str, str], secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> None:
    if not secrets:
        raise ValueError("at least one secret is needed to sign a delivery")
    # Built once and shared by every secret: the body can be up to max_payload_bytes.
    message = _standard_message(msg_id, timestamp, body)
    standard = []
    overview = []
    for signing_key in secrets:
        signer = _signer(signing_key)
        if signer.ed25519 is not None:
            signature = signer.ed25519.sign(message)
            standard.append("v1a," + binascii.b2a_base64(signature, newline=False).decode())
        else:
            digest = hmac.digest(signer.standard, message, "sha256")
            standard.append("v1," + binascii.b2a_base64(digest, newline=False).decode())
        if signer.overview is not None:
            overview.append("sha256=" + hmac.digest(signer.overview, body, "sha256").hex())
    headers[STANDARD_SIGNATURE_HEADER] = " ".join(standard)
    if overview:
        headers[OVERVIEW_SIGNATURE_HEADER] = " ".join(overview)


def delivery_headers(
    secrets: Sequence[str], event_id: str, event_type: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header of one delivery attempt except User-Agent (SPEC §4), signed with `secrets`."""
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "X-Webhook-Event": event_type,
    }
    _sign_into(headers, secrets, event_id, timestamp, body)
    return headers


@dataclass(frozen=True)
class SigningKeys:
    """What the dispatcher signs with: the current signing key (a secret, or an Ed25519 private
    key with its shared secret), and the previous one while rotating.

    Sealed as storage holds them, or opened (encryption/) to sign; never in a repr, so an
    opened key cannot reach a log line or an error through a printed record."""

    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None

    def active(self, now: datetime) -> list[str]:
        """The secrets to sign with at `now`, current first.

        The previous secret keeps signing until its grace period ends, so a receiver can move to
        the new secret without rejecting deliveries in between; at the expiry instant it is gone.
        """
        keys = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            keys.append(self.previous_secret)
        return keys

    def rotated(self, new_secret: str, now: datetime, grace: timedelta) -> SigningKeys:
        """The keys after a rotation to `new_secret`: the current secret keeps signing for
        `grace` (none at all when it is zero)."""
        if grace > timedelta(0):
            return SigningKeys(new_secret, self.secret, now + grace)
        return SigningKeys(new_secret, None, None)
