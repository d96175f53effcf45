"""Ed25519 subscriptions end to end (SPEC §12), both backends: the service generates the key
pair, shows only the public key, and signs `v1a,`; receivers verify with the Python SDK and
with plain `cryptography`. X-Webhook-Signature keeps the overview's HMAC with the subscription's
shared secret, checked by hand. A rotation sends both of each during its grace period."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from webhook_grpc_client import WebhookVerificationError, verify

from tests.support.factories import publish, subscribe
from tests.support.http import Http
from tests.support.receiver import Receiver
from tests.support.rpc import invalid_field
from tests.support.server import RunningServer
from tests.support.signatures import ed25519_valid, overview_signature
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.domain.signing import generate_secret

ED25519 = spb.SIGNING_ALGORITHM_ED25519


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def test_an_ed25519_subscription_signs_v1a_and_the_body_only_hmac(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    subscription = created.subscription
    assert created.secret.startswith("whsec_")  # the shared secret, shown once like HMAC ones
    assert subscription.signing_algorithm == ED25519
    assert subscription.public_key.startswith("whpk_")
    got = await server.subscriptions.GetSubscription(spb.GetSubscriptionRequest(id=subscription.id))
    assert got.subscription.public_key == subscription.public_key
    assert b"whsk_" not in created.SerializeToString() + got.SerializeToString()

    event = await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    headers = _lower(request.headers)
    [signature] = headers["webhook-signature"].split(" ")  # v1a only (SPEC §12)
    assert signature.startswith("v1a,")
    timestamp = int(headers["webhook-timestamp"])
    assert ed25519_valid(subscription.public_key, signature, event.id, timestamp, request.body)
    assert headers["x-webhook-signature"] == overview_signature(created.secret, request.body)
    verify(headers, request.body, subscription.public_key)
    # Another subscription's public key does not verify it.
    other = await subscribe(server, receiver.url("/other"), signing_algorithm=ED25519)
    with pytest.raises(WebhookVerificationError):
        verify(headers, request.body, other.subscription.public_key)
    assert other.secret != created.secret
    # The SDK's opt-in body-only check, for a receiver behind a proxy that drops webhook-*.
    stripped = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    verify(stripped, request.body, created.secret, allow_body_only=True)


async def test_hmac_stays_the_default(server: RunningServer, receiver: Receiver) -> None:
    created = await subscribe(server, receiver.url())
    assert created.subscription.signing_algorithm == spb.SIGNING_ALGORITHM_HMAC_SHA256
    assert created.subscription.public_key == ""
    assert created.secret.startswith("whsec_")


async def test_an_ed25519_subscription_takes_a_supplied_secret(
    server: RunningServer, receiver: Receiver
) -> None:
    secret = generate_secret()
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519, secret=secret)
    assert created.secret == secret
    await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    assert _lower(request.headers)["x-webhook-signature"] == overview_signature(
        secret, request.body
    )
    field = await invalid_field(
        subscribe(server, receiver.url(), signing_algorithm=ED25519, secret="whsec_short")
    )
    assert field == "secret"


async def test_rotation_sends_both_v1a_and_both_hmac_signatures_during_the_grace_period(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    old_key = created.subscription.public_key
    rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    )
    new_key = rotated.subscription.public_key
    assert new_key.startswith("whpk_") and new_key != old_key
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret

    event = await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    headers = _lower(request.headers)
    current, previous = headers["webhook-signature"].split(" ")
    timestamp = int(headers["webhook-timestamp"])
    assert ed25519_valid(new_key, current, event.id, timestamp, request.body)
    assert ed25519_valid(old_key, previous, event.id, timestamp, request.body)
    for key in (old_key, new_key):
        verify(headers, request.body, key)
    assert headers["x-webhook-signature"].split(" ") == [
        overview_signature(rotated.secret, request.body),
        overview_signature(created.secret, request.body),
    ]


async def test_rotation_without_grace_signs_with_the_new_key_and_secret_only(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    secret = generate_secret()
    request = spb.RotateSubscriptionSecretRequest(id=created.subscription.id, secret=secret)
    request.grace_period.FromSeconds(0)
    rotated = await server.subscriptions.RotateSubscriptionSecret(request)
    assert rotated.secret == secret
    await publish(server)
    await receiver.wait_count(1)
    [delivery] = receiver.received
    headers = _lower(delivery.headers)
    assert len(headers["webhook-signature"].split(" ")) == 1
    verify(headers, delivery.body, rotated.subscription.public_key)
    with pytest.raises(WebhookVerificationError):
        verify(headers, delivery.body, created.subscription.public_key)
    assert headers["x-webhook-signature"] == overview_signature(secret, delivery.body)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_rest_creates_an_ed25519_subscription(
    server: RunningServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    http = Http(server.http, session, None)
    reply = await http.post(
        "/api/v1/webhooks/subscriptions",
        {
            "tenant_id": "acme",
            "url": receiver.url(),
            "event_patterns": ["*"],
            "signing_algorithm": "SIGNING_ALGORITHM_ED25519",
        },
    )
    assert reply.status == 201, reply.text
    subscription = reply.json["subscription"]
    assert subscription["signing_algorithm"] == "SIGNING_ALGORITHM_ED25519"
    assert subscription["public_key"].startswith("whpk_")
    assert reply.json["secret"].startswith("whsec_")
