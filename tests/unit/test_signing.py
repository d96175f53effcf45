from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.signing import (
    generate_secret,
    overview_signature,
    signature_headers,
    standard_signature,
    validate_secret,
)

VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def overview_verify(header: str, body: bytes, secret: str) -> bool:
    """The three-line check a consumer of the overview's scheme writes."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split(" "))


def test_standard_webhooks_test_vector() -> None:
    signature = standard_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert signature == VECTOR_SIGNATURE


def test_reference_library_signs_the_same() -> None:
    reference = Webhook(VECTOR_SECRET).sign(
        VECTOR_ID, datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC), VECTOR_BODY.decode()
    )
    assert reference == VECTOR_SIGNATURE


def test_headers_verify_with_the_reference_library() -> None:
    secret = generate_secret()
    now = int(time.time())
    body = b'{"id": "evt_1", "data": {"name": "caf\xc3\xa9"}}'
    headers = signature_headers([secret], "evt_1", now, body)
    Webhook(secret).verify(
        body,
        {"webhook-id": "evt_1", "webhook-timestamp": str(now), **headers},
    )


def test_reference_library_rejects_another_secret() -> None:
    now = int(time.time())
    headers = signature_headers([generate_secret()], "evt_1", now, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(
            b"{}", {"webhook-id": "evt_1", "webhook-timestamp": str(now), **headers}
        )


def test_overview_signature_is_hex_hmac_keyed_with_the_whole_secret() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(VECTOR_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert overview_signature(VECTOR_SECRET, body) == "sha256=" + expected
    assert overview_verify(overview_signature(VECTOR_SECRET, body), body, VECTOR_SECRET)
    assert not overview_verify(overview_signature(VECTOR_SECRET, body), b'{"a": 2}', VECTOR_SECRET)


def test_headers_for_one_secret() -> None:
    headers = signature_headers([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert headers == {
        "webhook-signature": VECTOR_SIGNATURE,
        "X-Webhook-Signature": overview_signature(VECTOR_SECRET, VECTOR_BODY),
    }


def test_rotation_signs_with_both_secrets_current_first() -> None:
    current, previous = generate_secret(), generate_secret()
    now = int(time.time())
    body = b'{"type": "product.created"}'
    headers = signature_headers([current, previous], "evt_2", now, body)

    standard = headers["webhook-signature"].split(" ")
    overview = headers["X-Webhook-Signature"].split(" ")
    assert standard == [
        standard_signature(current, "evt_2", now, body),
        standard_signature(previous, "evt_2", now, body),
    ]
    assert overview == [overview_signature(current, body), overview_signature(previous, body)]
    for secret in (current, previous):
        Webhook(secret).verify(
            body, {"webhook-id": "evt_2", "webhook-timestamp": str(now), **headers}
        )
        assert overview_verify(headers["X-Webhook-Signature"], body, secret)


def test_headers_need_a_secret() -> None:
    with pytest.raises(ValueError):
        signature_headers([], "evt_1", 1, b"{}")


@given(
    body=st.binary(max_size=512), msg_id=st.text(min_size=1, max_size=40), ts=st.integers(0, 2**40)
)
def test_headers_match_the_single_signatures(body: bytes, msg_id: str, ts: int) -> None:
    headers = signature_headers([VECTOR_SECRET], msg_id, ts, body)
    assert headers["webhook-signature"] == standard_signature(VECTOR_SECRET, msg_id, ts, body)
    assert headers["X-Webhook-Signature"] == overview_signature(VECTOR_SECRET, body)


def test_generated_secret_has_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    validate_secret(secret)
    assert generate_secret() != secret


@pytest.mark.parametrize("size", [24, 32, 64])
def test_valid_secret_sizes(size: int) -> None:
    validate_secret("whsec_" + base64.b64encode(bytes(range(size))).decode())


def test_test_vector_secret_is_valid() -> None:
    validate_secret(VECTOR_SECRET)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # too short
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # too long
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # url-safe alphabet
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # bad padding
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La LaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSé",
    ],
)
def test_invalid_secrets_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_secret(secret, field="new_secret")
    assert caught.value.field == "new_secret"
    assert "whsec_" in caught.value.description
    if len(secret) > len("whsec_"):
        assert secret not in str(caught.value)
