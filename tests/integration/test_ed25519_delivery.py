"""Ed25519 subscriptions end to end (SPEC §12), both backends: the service generates the key
pair, shows only the public key, and signs `v1a,`; receivers verify with the Python SDK and
with plain `cryptography`; a rotation sends both signatures during its grace period."""

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
from tests.support.signatures import ed25519_valid
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.domain.signing import generate_secret

ED25519 = spb.SIGNING_ALGORITHM_ED25519


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def test_an_ed25519_subscription_signs_v1a_with_its_public_key(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    subscription = created.subscription
    assert created.secret == ""
    assert subscription.signing_algorithm == ED25519
    assert subscription.public_key.startswith("whpk_")
    got = await server.subscriptions.GetSubscription(spb.GetSubscriptionRequest(id=subscription.id))
    assert got.subscription.public_key == subscription.public_key

    event = await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    headers = _lower(request.headers)
    assert "x-webhook-signature" not in headers  # HMAC-only; there is no shared secret
    [signature] = headers["webhook-signature"].split(" ")
    assert signature.startswith("v1a,")
    timestamp = int(headers["webhook-timestamp"])
    assert ed25519_valid(subscription.public_key, signature, event.id, timestamp, request.body)
    verify(headers, request.body, subscription.public_key)
    # Another subscription's public key does not verify it.
    other = await subscribe(server, receiver.url("/other"), signing_algorithm=ED25519)
    with pytest.raises(WebhookVerificationError):
        verify(headers, request.body, other.subscription.public_key)


async def test_hmac_stays_the_default(server: RunningServer, receiver: Receiver) -> None:
    created = await subscribe(server, receiver.url())
    assert created.subscription.signing_algorithm == spb.SIGNING_ALGORITHM_HMAC_SHA256
    assert created.subscription.public_key == ""
    assert created.secret.startswith("whsec_")


async def test_an_ed25519_subscription_takes_no_secret(
    server: RunningServer, receiver: Receiver
) -> None:
    field = await invalid_field(
        subscribe(server, receiver.url(), signing_algorithm=ED25519, secret=generate_secret())
    )
    assert field == "secret"


async def test_rotation_sends_both_v1a_signatures_during_the_grace_period(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    old_key = created.subscription.public_key
    rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    )
    new_key = rotated.subscription.public_key
    assert rotated.secret == "" and new_key.startswith("whpk_") and new_key != old_key

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


async def test_rotation_without_grace_signs_with_the_new_key_only(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), signing_algorithm=ED25519)
    request = spb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    request.grace_period.FromSeconds(0)
    rotated = await server.subscriptions.RotateSubscriptionSecret(request)
    await publish(server)
    await receiver.wait_count(1)
    [delivery] = receiver.received
    headers = _lower(delivery.headers)
    assert len(headers["webhook-signature"].split(" ")) == 1
    verify(headers, delivery.body, rotated.subscription.public_key)
    with pytest.raises(WebhookVerificationError):
        verify(headers, delivery.body, created.subscription.public_key)


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
    assert "secret" not in reply.json or reply.json["secret"] == ""
