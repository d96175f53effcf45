"""`webhook_grpc_client.verify`: the cases both SDKs share (tests/vectors/verification.json), the
header shapes of the usual frameworks, interop with the `standardwebhooks` reference library, and
replays of real deliveries from a real server."""

from __future__ import annotations

import base64
import email.message
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook
from webhook_grpc_client import (
    VerificationFailure,
    WebhooksClient,
    WebhookVerificationError,
    verify,
)

from tests.support.receiver import Receiver
from tests.support.server import RunningServer
from tests.support.signatures import VECTOR

VERIFICATION = json.loads(
    (Path(__file__).parent.parent / "vectors" / "verification.json").read_text()
)
VECTOR_NOW = datetime.fromtimestamp(VECTOR.timestamp, UTC)


def vector_headers() -> dict[str, str]:
    return {
        "webhook-id": VECTOR.id,
        "webhook-timestamp": str(VECTOR.timestamp),
        "webhook-signature": VECTOR.signature,
    }


def refused(reason: VerificationFailure) -> Any:
    """`pytest.raises` for a refusal with `reason`; the message must say something too."""
    return pytest.raises(WebhookVerificationError, check=lambda e: e.reason == reason and str(e))


# The cases both SDKs share


def test_the_reasons_are_the_shared_vocabulary() -> None:
    assert set(get_args(VerificationFailure)) == set(VERIFICATION["reasons"])
    expected = {case["expect"] for case in VERIFICATION["cases"]}
    assert set(VERIFICATION["reasons"]) <= expected, "every reason has a shared case"


@pytest.mark.parametrize("case", VERIFICATION["cases"], ids=lambda case: case["name"])
def test_shared_case(case: dict[str, Any]) -> None:
    pairs = [(name, value) for name, value in case["headers"]]
    tolerance = timedelta(
        seconds=case.get("tolerance_seconds", VERIFICATION["default_tolerance_seconds"])
    )

    def run() -> None:
        verify(
            pairs,
            case["body"].encode(),
            case["key"],
            now=datetime.fromtimestamp(case["now"], UTC),
            tolerance=tolerance,
            allow_body_only=case.get("allow_body_only", False),
        )

    if case["expect"] == "ok":
        run()
    elif case["expect"] == "invalid_key":
        with pytest.raises(ValueError, match=r"whsec_|whpk_"):
            run()
    else:
        with refused(case["expect"]):
            run()


# Header shapes


class FrameworkHeaders:
    """What Werkzeug's (Flask) and Starlette's (FastAPI) header objects have in common for this
    purpose: .get and .items, case-insensitive, not a `Mapping`."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self._pairs if k.lower() == name.lower()), default)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)


def header_shapes() -> Iterator[Any]:
    pairs = [(name.title(), value) for name, value in vector_headers().items()]
    yield dict(pairs)
    yield pairs
    yield [(name.lower().encode(), value.encode()) for name, value in pairs]  # an ASGI scope's
    yield CIMultiDict(pairs)  # aiohttp's request.headers
    yield FrameworkHeaders(pairs)
    message = email.message.Message()  # http.client / http.server headers
    for name, value in pairs:
        message[name] = value
    yield message


@pytest.mark.parametrize("headers", list(header_shapes()), ids=lambda h: type(h).__name__)
def test_any_header_shape(headers: Any) -> None:
    verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW)


def test_a_repeated_signature_header_is_read_whole() -> None:
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    headers = CIMultiDict(vector_headers())
    headers["webhook-signature"] = other  # replaces; then the real one again, as a second line
    headers.add("Webhook-Signature", VECTOR.signature)
    verify(headers, VECTOR.body, VECTOR.secret, now=VECTOR_NOW)


# The reference library


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


# Real deliveries from a real server


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[WebhooksClient]:
    async with WebhooksClient(server.target) as sdk:
        yield sdk


def without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in names}


async def test_a_replayed_real_delivery_is_refused_even_with_its_webhook_headers_stripped(
    client: WebhooksClient, receiver: Receiver
) -> None:
    created = await client.subscriptions.create(receiver.url("/hook"), ["*"], tenant_id="acme")
    secret = created.secret
    await client.publish("acme", "product.created", "p1", {"id": "p1", "name": "Widget"})
    await receiver.wait_count(1, "/hook")
    delivery = receiver.at("/hook")[0]
    sent = datetime.fromtimestamp(int(delivery.headers["webhook-timestamp"]), UTC)

    # Genuine now, for this SDK and for the reference library.
    verify(delivery.headers, delivery.body, secret)
    Webhook(secret).verify(delivery.body, delivery.headers)

    # Captured and sent again ten minutes later: refused...
    replayed_at = sent + timedelta(minutes=10)
    with refused("timestamp_too_old"):
        verify(delivery.headers, delivery.body, secret, now=replayed_at)
    # ...and still refused once the headers that carry the timestamp are deleted (a downgrade to
    # the body-only X-Webhook-Signature, which is valid for ever).
    stripped = without(delivery.headers, "webhook-id", "webhook-timestamp", "webhook-signature")
    assert "X-Webhook-Signature" in stripped
    with refused("missing_signature"):
        verify(stripped, delivery.body, secret, now=replayed_at)
    with refused("missing_signature"):
        verify(without(delivery.headers, "webhook-signature"), delivery.body, secret)
    # Only a receiver that opts in takes the body-only scheme (and must then dedupe webhook-id).
    verify(stripped, delivery.body, secret, now=replayed_at, allow_body_only=True)
    with refused("bad_signature"):
        tampered = delivery.body.replace(b"Widget", b"Gadget")
        verify(stripped, tampered, secret, allow_body_only=True)

    # A clock far behind the sender's is told apart from a replay.
    with refused("timestamp_in_future"):
        verify(delivery.headers, delivery.body, secret, now=sent - timedelta(minutes=10))


async def test_an_ed25519_subscription_made_with_the_sdk_verifies_with_its_public_key(
    client: WebhooksClient, receiver: Receiver
) -> None:
    created = await client.subscriptions.create(
        receiver.url("/ed"), ["*"], tenant_id="acme", signing_algorithm="ed25519"
    )
    public_key = created.subscription.public_key
    await client.publish("acme", "product.created", "p1", {"id": "p1", "name": "Widget"})
    await receiver.wait_count(1, "/ed")
    delivery = receiver.at("/ed")[0]
    assert delivery.headers["webhook-signature"].startswith("v1a,")
    verify(delivery.headers, delivery.body, public_key)
    with refused("bad_signature"):
        verify(delivery.headers, delivery.body.replace(b"Widget", b"Gadget"), public_key)
    # The shared secret keys X-Webhook-Signature, for the opt-in body-only check.
    stripped = without(delivery.headers, "webhook-signature")
    verify(stripped, delivery.body, created.secret, allow_body_only=True)
