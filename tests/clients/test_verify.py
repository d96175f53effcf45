"""`webhook_grpc_client.verify`: both schemes, the Standard Webhooks test vector, interop with the
`standardwebhooks` reference library, and clear refusals."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook
from webhook_grpc_client import WebhookVerificationError, verify

from tests.support.signatures import VECTOR, overview_signature

VECTOR_NOW = datetime.fromtimestamp(VECTOR.timestamp, UTC)


def vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR.id,
        "webhook-timestamp": str(VECTOR.timestamp),
        "webhook-signature": VECTOR.signature,
    }
    headers.update(overrides)
    return headers


def test_standard_webhooks_test_vector() -> None:
    verify(vector_headers(), VECTOR.body, VECTOR.secret, now=VECTOR_NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in vector_headers().items()}
    verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW + timedelta(minutes=4))


def test_one_matching_signature_in_a_list_is_enough() -> None:
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    headers = vector_headers(**{"webhook-signature": f"v1a,abc {other} {VECTOR.signature}"})
    verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW)


def test_a_tampered_body_or_a_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="bad signature"):
        verify(vector_headers(), b'{"test": 2432232315}', VECTOR.secret, now=VECTOR_NOW)
    wrong = "whsec_" + base64.b64encode(b"k" * 24).decode()
    with pytest.raises(WebhookVerificationError, match="bad signature"):
        verify(vector_headers(), VECTOR.body, wrong, now=VECTOR_NOW)
    # The id and timestamp are signed too.
    with pytest.raises(WebhookVerificationError, match="bad signature"):
        verify(
            vector_headers(**{"webhook-id": "msg_other"}),
            VECTOR.body,
            VECTOR.secret,
            now=VECTOR_NOW,
        )


def test_stale_and_future_timestamps_are_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(vector_headers(), VECTOR.body, VECTOR.secret, now=VECTOR_NOW + timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify(vector_headers(), VECTOR.body, VECTOR.secret, now=VECTOR_NOW - timedelta(minutes=6))
    # The tolerance is configurable.
    verify(
        vector_headers(),
        VECTOR.body,
        VECTOR.secret,
        now=VECTOR_NOW + timedelta(hours=1),
        tolerance=timedelta(hours=2),
    )
    with pytest.raises(WebhookVerificationError, match="not unix seconds"):
        verify(
            vector_headers(**{"webhook-timestamp": "yesterday"}),
            VECTOR.body,
            VECTOR.secret,
            now=VECTOR_NOW,
        )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp"])
def test_missing_standard_headers_are_named(missing: str) -> None:
    headers = vector_headers()
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=f"missing header {missing}"):
        verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW)


def test_no_signature_header_at_all() -> None:
    with pytest.raises(WebhookVerificationError, match="missing signature header"):
        verify({"content-type": "application/json"}, VECTOR.body, VECTOR.secret)


def test_x_webhook_signature_scheme() -> None:
    body = b'{"id":"evt_1"}'
    signature = overview_signature(VECTOR.secret, body)
    verify({"X-Webhook-Signature": signature}, body, VECTOR.secret)
    verify({"x-webhook-signature": f"sha256={'0' * 64} {signature}"}, body, VECTOR.secret)
    with pytest.raises(WebhookVerificationError, match="X-Webhook-Signature"):
        verify({"X-Webhook-Signature": signature}, body + b" ", VECTOR.secret)


def test_the_standard_signature_decides_when_present() -> None:
    # A valid body-only signature cannot rescue a stale (replayed) Standard Webhooks delivery.
    headers = vector_headers(
        **{"X-Webhook-Signature": overview_signature(VECTOR.secret, VECTOR.body)}
    )
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW + timedelta(days=1))


def test_a_malformed_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        verify(vector_headers(), VECTOR.body, "whsec_not base64!", now=VECTOR_NOW)


def test_accepts_what_the_reference_library_signs() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    now = datetime.now(UTC)
    body = '{"id":"evt_1","data":{"name":"Widget ü"}}'
    signature = Webhook(secret).sign("evt_1", now, body)
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    verify(headers, body.encode(), secret)
    # And the reference library agrees with the test vector we accept.
    assert (
        Webhook(VECTOR.secret).sign(VECTOR.id, VECTOR_NOW, VECTOR.body.decode()) == VECTOR.signature
    )
