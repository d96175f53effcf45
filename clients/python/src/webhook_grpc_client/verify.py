"""Verify that an HTTP delivery really comes from webhook-grpc (for the receiving endpoint).

A delivery carries up to two signatures of the same body:

* ``webhook-signature`` (Standard Webhooks), checked by default: signatures over
  ``{webhook-id}.{webhook-timestamp}.{body}``, so the id and the time of sending are signed too and
  a delivery replayed later than the tolerance is refused. ``v1,`` + base64 HMAC-SHA256 keyed with
  the base64-decoded part of the secret after ``whsec_``; or, for subscriptions signing with
  Ed25519, ``v1a,`` + base64 Ed25519 signature, checked with the public key ``whpk_...``.
* ``X-Webhook-Signature``: ``sha256=`` + hex HMAC-SHA256 of the raw body, keyed with the secret
  string exactly as issued (UTF-8). It covers no timestamp: a captured delivery stays valid for
  ever, so it is accepted only when the caller opts in with ``allow_body_only=True``.

During a rotation either header may hold several space-separated signatures; one match is enough.
The kind of key decides the algorithm: a ``whsec_`` secret only ever checks ``v1`` (HMAC)
signatures and a ``whpk_`` public key only ``v1a`` (Ed25519) ones, so neither can be passed off as
the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SECRET_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"
PRIVATE_KEY_PREFIX = "whsk_"
STANDARD_HEADER = "webhook-signature"
OVERVIEW_HEADER = "x-webhook-signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)

# Unix seconds, digits only (as the TypeScript SDK): what is signed is the header exactly as sent.
_TIMESTAMP = re.compile(r"\d{1,15}")

__all__ = [
    "HeaderSource",
    "SupportsHeaderItems",
    "VerificationFailure",
    "WebhookVerificationError",
    "verify",
]

VerificationFailure = Literal[
    "missing_signature",
    "missing_header",
    "invalid_timestamp",
    "timestamp_too_old",
    "timestamp_in_future",
    "bad_signature",
]
"""Why a delivery was refused (`WebhookVerificationError.reason`), in the TypeScript SDK's words:

* ``missing_signature``: no ``webhook-signature`` (``X-Webhook-Signature`` alone counts only with
  ``allow_body_only=True``);
* ``missing_header``: ``webhook-id`` or ``webhook-timestamp`` is missing (both are signed);
* ``invalid_timestamp``: ``webhook-timestamp`` is not unix seconds;
* ``timestamp_too_old``: older than the tolerance, a replay (or a clock out of sync);
* ``timestamp_in_future``: ahead by more than the tolerance, a clock out of sync;
* ``bad_signature``: no signature in the header matches this body and key.
"""


class WebhookVerificationError(Exception):
    """The delivery cannot be trusted: a header is missing, the timestamp is stale, or no
    signature matches. Answer it with 400 (or 401) and do not process the body.

    Attributes:
        reason: a stable code for what is wrong (`VerificationFailure`); the message says it in
            words.
    """

    def __init__(self, reason: VerificationFailure, message: str) -> None:
        super().__init__(message)
        self.reason: VerificationFailure = reason


@runtime_checkable
class SupportsHeaderItems(Protocol):
    """Anything with ``.items()`` giving (name, value) pairs: a dict, aiohttp's and multidict's
    ``CIMultiDict``, Werkzeug's (Flask) and Starlette's (FastAPI) ``Headers``,
    ``http.client.HTTPMessage``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


HeaderSource = SupportsHeaderItems | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
"""Request headers in any usual shape: a mapping or a framework's header object, or a list of
(name, value) pairs (an ASGI scope's ``headers``, bytes and all). Names are matched
case-insensitively and a repeated header keeps all its values."""


def verify(
    headers: HeaderSource,
    body: bytes,
    key: str,
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: datetime | None = None,
    allow_body_only: bool = False,
) -> None:
    """Check the signature of one delivery; raise `WebhookVerificationError` if it is not genuine.

    Args:
        headers: the request headers, in any usual shape (see `HeaderSource`).
        body: the raw request body, exactly as received (before any JSON parsing).
        key: the subscription's secret ``whsec_...`` as returned when it was created or rotated,
            or its public key ``whpk_...`` when it signs with Ed25519.
        tolerance: how far ``webhook-timestamp`` may be from `now`, either way.
        now: the current time (for tests); defaults to the system clock.
        allow_body_only: also accept a delivery that has only ``X-Webhook-Signature``. That
            signature covers no timestamp, so a captured delivery can be replayed at any time:
            enable it only where the ``webhook-*`` headers cannot reach you (a proxy that drops
            them), and then drop repeated event ids (the body's signed ``id``) for as long as a
            replay matters. ``webhook-signature`` still decides when present.

    Comparisons are constant-time.

    Raises:
        WebhookVerificationError: with a `reason` and a message saying what is wrong.
        ValueError: the key itself is malformed (a configuration error, not a bad request).
    """
    checker = _signature_checker(key)
    values = _header_values(headers)
    if STANDARD_HEADER in values:
        _verify_standard(values, body, checker, tolerance, now or datetime.now(UTC))
    elif OVERVIEW_HEADER in values and allow_body_only:
        if not isinstance(checker, _HmacChecker):
            raise WebhookVerificationError(
                "missing_signature",
                "missing header webhook-signature: X-Webhook-Signature is an HMAC of the shared "
                "secret, which a public key cannot check",
            )
        _verify_overview(values[OVERVIEW_HEADER], body, key)
    elif OVERVIEW_HEADER in values:
        raise WebhookVerificationError(
            "missing_signature",
            "missing header webhook-signature: X-Webhook-Signature alone covers no timestamp, so "
            "a replayed delivery would pass; it is accepted only with allow_body_only=True",
        )
    else:
        raise WebhookVerificationError(
            "missing_signature", "missing signature header: expected webhook-signature"
        )


def _header_values(headers: HeaderSource) -> dict[str, list[str]]:
    # items() rather than lookups: multi-dicts (aiohttp, Werkzeug, Starlette) may repeat a header.
    pairs = headers.items() if isinstance(headers, SupportsHeaderItems) else headers
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(_text(name).lower(), []).append(_text(value))
    return values


def _text(value: str | bytes) -> str:
    # HTTP header bytes are Latin-1 (what ASGI servers hand over undecoded).
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _HmacChecker:
    """``v1`` entries: HMAC-SHA256 keyed with the decoded ``whsec_`` secret."""

    def __init__(self, secret: str) -> None:
        try:
            self._key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"the secret must be '{SECRET_PREFIX}' followed by base64, as issued"
            ) from None
        if not self._key:
            raise ValueError(f"the secret must be '{SECRET_PREFIX}' followed by base64, as issued")

    def matches(self, message: bytes, signatures: list[str]) -> bool:
        digest = hmac.digest(self._key, message, hashlib.sha256)
        expected = b"v1," + base64.b64encode(digest)
        # Every candidate is compared, so the time taken does not reveal which one matched.
        matched = False
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate.encode())
        return matched


class _Ed25519Checker:
    """``v1a`` entries: Ed25519 signatures checked with the ``whpk_`` public key."""

    def __init__(self, public_key: str) -> None:
        try:
            raw = base64.b64decode(public_key.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"the public key must be '{PUBLIC_KEY_PREFIX}' followed by base64 of 32 bytes, "
                "as issued"
            ) from None

    def matches(self, message: bytes, signatures: list[str]) -> bool:
        for candidate in signatures:
            version, _, encoded = candidate.partition(",")
            if version != "v1a":
                continue
            try:
                self._key.verify(base64.b64decode(encoded, validate=True), message)
            except (binascii.Error, ValueError, InvalidSignature):
                continue
            return True
        return False


def _signature_checker(key: str) -> _HmacChecker | _Ed25519Checker:
    if key.startswith(PUBLIC_KEY_PREFIX):
        return _Ed25519Checker(key)
    if key.startswith(PRIVATE_KEY_PREFIX):
        raise ValueError(
            f"this is an Ed25519 private key ('{PRIVATE_KEY_PREFIX}'): verify with the "
            f"subscription's public key ('{PUBLIC_KEY_PREFIX}'), and keep the private one secret"
        )
    return _HmacChecker(key)


def _single(values: dict[str, list[str]], name: str) -> str:
    found = values.get(name)
    value = found[0].strip() if found else ""
    if not value:
        raise WebhookVerificationError(
            "missing_header", f"missing header {name} (needed to check {STANDARD_HEADER})"
        )
    return value


def _verify_standard(
    values: dict[str, list[str]],
    body: bytes,
    checker: _HmacChecker | _Ed25519Checker,
    tolerance: timedelta,
    now: datetime,
) -> None:
    msg_id = _single(values, "webhook-id")
    raw_timestamp = _single(values, "webhook-timestamp")
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        raise WebhookVerificationError(
            "invalid_timestamp", f"webhook-timestamp is not unix seconds: {raw_timestamp[:40]!r}"
        )
    # Whole seconds on both sides, as the header has them (and as the TypeScript SDK counts).
    age = int(now.timestamp()) - int(raw_timestamp)
    allowed = int(tolerance.total_seconds())
    if age > allowed:
        raise WebhookVerificationError(
            "timestamp_too_old",
            f"webhook-timestamp is too old: {age}s ago, tolerance {allowed}s "
            "(a replay, or a clock out of sync)",
        )
    if -age > allowed:
        raise WebhookVerificationError(
            "timestamp_in_future",
            f"webhook-timestamp is in the future: {-age}s ahead, tolerance {allowed}s "
            "(a clock out of sync)",
        )
    message = f"{msg_id}.{raw_timestamp}.".encode() + body
    if not checker.matches(message, _signatures(values[STANDARD_HEADER])):
        kind = "v1a" if isinstance(checker, _Ed25519Checker) else "v1"
        raise WebhookVerificationError(
            "bad_signature",
            f"bad signature: no {kind} signature in webhook-signature matches this body and key",
        )


def _verify_overview(values: list[str], body: bytes, secret: str) -> None:
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    matched = False
    for candidate in _signatures(values):
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise WebhookVerificationError(
            "bad_signature",
            "bad signature: no sha256 signature in X-Webhook-Signature matches this body and "
            "secret",
        )


def _signatures(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split()]
