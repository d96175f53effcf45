from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import signatures as independent
from tests.support.signatures import VECTOR, overview_valid
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.signing import (
    generate_secret,
    overview_signature,
    signature_headers,
    standard_signature,
    validate_secret,
)

# The vector's body signed as X-Webhook-Signature, computed once by hand with
# hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().
VECTOR_OVERVIEW_SIGNATURE = (
    "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"
)


def test_standard_webhooks_test_vector() -> None:
    signature = standard_signature(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)
    assert signature == VECTOR.signature


def test_reference_library_signs_the_same() -> None:
    reference = Webhook(VECTOR.secret).sign(
        VECTOR.id, datetime.fromtimestamp(VECTOR.timestamp, tz=UTC), VECTOR.body.decode()
    )
    assert reference == VECTOR.signature


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
    # Computed by hand: hex HMAC-SHA256 of the body, keyed with the secret string as is.
    assert overview_signature(VECTOR.secret, body) == (
        "sha256=47574c76fe0206d6e8966b646eb9dbaa6f6f4a352833a99d5ce342593cbe48f1"
    )
    assert overview_valid(overview_signature(VECTOR.secret, body), body, VECTOR.secret)
    assert not overview_valid(overview_signature(VECTOR.secret, body), b'{"a": 2}', VECTOR.secret)


def test_headers_for_one_secret() -> None:
    headers = signature_headers([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.body)
    assert headers == {
        "webhook-signature": VECTOR.signature,
        "X-Webhook-Signature": VECTOR_OVERVIEW_SIGNATURE,
    }


def test_rotation_signs_with_both_secrets_current_first() -> None:
    current, previous = generate_secret(), generate_secret()
    now = int(time.time())
    body = b'{"type": "product.created"}'
    headers = signature_headers([current, previous], "evt_2", now, body)

    standard = headers["webhook-signature"].split(" ")
    overview = headers["X-Webhook-Signature"].split(" ")
    assert standard == [
        independent.standard_signature(current, "evt_2", now, body),
        independent.standard_signature(previous, "evt_2", now, body),
    ]
    assert overview == [
        independent.overview_signature(current, body),
        independent.overview_signature(previous, body),
    ]
    for secret in (current, previous):
        Webhook(secret).verify(
            body, {"webhook-id": "evt_2", "webhook-timestamp": str(now), **headers}
        )
        assert overview_valid(headers["X-Webhook-Signature"], body, secret)


def test_headers_need_a_secret() -> None:
    with pytest.raises(ValueError):
        signature_headers([], "evt_1", 1, b"{}")


@given(
    body=st.binary(max_size=512), msg_id=st.text(min_size=1, max_size=40), ts=st.integers(0, 2**40)
)
def test_headers_match_an_independent_hmac(body: bytes, msg_id: str, ts: int) -> None:
    headers = signature_headers([VECTOR.secret], msg_id, ts, body)
    assert headers["webhook-signature"] == independent.standard_signature(
        VECTOR.secret, msg_id, ts, body
    )
    assert headers["X-Webhook-Signature"] == independent.overview_signature(VECTOR.secret, body)


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
    validate_secret(VECTOR.secret)


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
