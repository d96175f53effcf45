"""Verify that an HTTP delivery really comes from webhook-grpc (for the receiving endpoint).

Every delivery carries two signatures of the same body; either one proves it:

* ``webhook-signature`` (Standard Webhooks): ``v1,`` + base64 HMAC-SHA256 over
  ``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the base64-decoded part of the secret
  after ``whsec_``. It covers the timestamp, so a replayed old delivery is refused.
* ``X-Webhook-Signature``: ``sha256=`` + hex HMAC-SHA256 of the raw body, keyed with the secret
  string exactly as issued (UTF-8). It does not cover a timestamp.

During a secret rotation either header may hold several space-separated signatures; one match is
enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

SECRET_PREFIX = "whsec_"
STANDARD_HEADER = "webhook-signature"
OVERVIEW_HEADER = "x-webhook-signature"

__all__ = ["WebhookVerificationError", "verify"]


class WebhookVerificationError(Exception):
    """The delivery cannot be trusted: a header is missing, the timestamp is stale, or no
    signature matches. Answer it with 400 (or 401) and do not process the body."""


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> None:
    """Check the signature of one delivery; raise `WebhookVerificationError` if it is not genuine.

    Args:
        headers: the request headers, any mapping; names are matched case-insensitively.
        body: the raw request body, exactly as received (before any JSON parsing).
        secret: the subscription's secret, ``whsec_...``, as returned when it was created or
            rotated.
        tolerance: how far ``webhook-timestamp`` may be from `now`, either way.
        now: the current time (for tests); defaults to the system clock.

    When ``webhook-signature`` is present it alone decides (it also protects against replays);
    otherwise ``X-Webhook-Signature`` is checked. Comparisons are constant-time.

    Raises:
        WebhookVerificationError: with a message saying what is wrong.
        ValueError: the secret itself is malformed (a configuration error, not a bad request).
    """
    values = _header_values(headers)
    if STANDARD_HEADER in values:
        _verify_standard(values, body, secret, tolerance, now or datetime.now(UTC))
    elif OVERVIEW_HEADER in values:
        _verify_overview(values[OVERVIEW_HEADER], body, secret)
    else:
        raise WebhookVerificationError(
            "missing signature header: expected webhook-signature or X-Webhook-Signature"
        )


def _header_values(headers: Mapping[str, str]) -> dict[str, list[str]]:
    # items() rather than lookups: multi-dicts (aiohttp, Starlette) may repeat a header.
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), []).append(value)
    return values


def _signatures(values: list[str]) -> list[bytes]:
    return [part.encode() for value in values for part in value.split()]


def _single(values: dict[str, list[str]], name: str) -> str:
    found = values.get(name)
    if not found:
        raise WebhookVerificationError(f"missing header {name} (needed to check {STANDARD_HEADER})")
    return found[0].strip()


def _standard_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"the secret must be '{SECRET_PREFIX}' followed by base64, as issued"
        ) from None


def _verify_standard(
    values: dict[str, list[str]],
    body: bytes,
    secret: str,
    tolerance: timedelta,
    now: datetime,
) -> None:
    msg_id = _single(values, "webhook-id")
    raw_timestamp = _single(values, "webhook-timestamp")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError(
            f"webhook-timestamp is not unix seconds: {raw_timestamp[:40]!r}"
        ) from None
    sent = datetime.fromtimestamp(timestamp, UTC)
    if now - sent > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is too old: {int((now - sent).total_seconds())}s ago, "
            f"tolerance {int(tolerance.total_seconds())}s (a replay, or a clock out of sync)"
        )
    if sent - now > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is in the future: {int((sent - now).total_seconds())}s ahead, "
            f"tolerance {int(tolerance.total_seconds())}s (a clock out of sync)"
        )
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_standard_key(secret), message, hashlib.sha256)
    expected = b"v1," + base64.b64encode(digest)
    if not _any_matches(expected, _signatures(values[STANDARD_HEADER])):
        raise WebhookVerificationError(
            "bad signature: no v1 signature in webhook-signature matches this body and secret"
        )


def _verify_overview(values: list[str], body: bytes, secret: str) -> None:
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if not _any_matches(expected, _signatures(values)):
        raise WebhookVerificationError(
            "bad signature: no sha256 signature in X-Webhook-Signature matches this body and secret"
        )


def _any_matches(expected: bytes, candidates: list[bytes]) -> bool:
    # Every candidate is compared, so the time taken does not reveal which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched
