"""Subscription health (what the portal's endpoint list shows): attempts and failures in the
failure window, and the latest attempt, on GetSubscription and ListSubscriptions."""

from __future__ import annotations

from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.receiver import Receiver
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb


async def _get(server: RunningServer, subscription_id: str) -> spb.Subscription:
    reply = await server.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(tenant_id="acme", id=subscription_id)
    )
    return reply.subscription


async def test_health_counts_the_attempts_of_the_failure_window(
    server: RunningServer, receiver: Receiver
) -> None:
    receiver.on("/flaky", statuses=[500, 500, 200])
    subscription = (await subscribe(server, receiver.url("/flaky"))).subscription
    fresh = (await _get(server, subscription.id)).health
    assert (fresh.attempt_count, fresh.failed_count) == (0, 0)
    assert not fresh.HasField("last_attempt")
    assert fresh.failure_window.ToSeconds() == 24 * 3600

    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    finished = await wait_delivery(server, delivery.id)
    assert finished.status == deliveries_pb2.DELIVERY_STATUS_SUCCEEDED

    health = (await _get(server, subscription.id)).health
    assert (health.attempt_count, health.failed_count) == (3, 2)
    assert health.last_attempt.status_code == 200
    assert health.last_attempt.error == deliveries_pb2.ATTEMPT_ERROR_UNSPECIFIED
    listed = await server.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(tenant_id="acme")
    )
    assert [s.health for s in listed.subscriptions] == [health]

    # Re-activation clears the failure window (SPEC §3); the last attempt stays.
    await server.subscriptions.DisableSubscription(
        spb.DisableSubscriptionRequest(tenant_id="acme", id=subscription.id)
    )
    await server.subscriptions.ActivateSubscription(
        spb.ActivateSubscriptionRequest(tenant_id="acme", id=subscription.id)
    )
    cleared = (await _get(server, subscription.id)).health
    assert (cleared.attempt_count, cleared.failed_count) == (0, 0)
    assert cleared.last_attempt == health.last_attempt
