"""The dispatcher end to end: a real receiver on loopback, both backends."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import ServerFactory
from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.receiver import Received, Receiver
from tests.support.server import RunningServer
from tests.support.signatures import overview_valid
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import feed_pb2
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb

PRODUCT = {"id": "prod_1", "sku": "A-1", "selling_price": "19.90", "cost_price": "7.10"}


async def test_delivery_body_headers_and_both_signatures(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), ["product.*"])
    event = await publish(
        server, "product.price_changed", "prod_1", PRODUCT, previous={"selling_price": "17.50"}
    )
    await receiver.wait_count(1)
    [request] = receiver.received
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == event.id
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30
    assert headers["x-webhook-event"] == "product.price_changed"
    assert headers["user-agent"].startswith("webhook-grpc/")
    body = json.loads(request.body)
    assert body == {
        "id": event.id,
        "type": "product.price_changed",
        "tenant_id": "acme",
        "entity_id": "prod_1",
        "occurred_at": body["occurred_at"],
        "published_at": body["published_at"],
        "data": {"id": "prod_1", "sku": "A-1", "selling_price": "19.90"},
        "previous": {"selling_price": "17.50"},
    }
    assert body["occurred_at"].endswith("Z") and "T" in body["occurred_at"]
    # The Standard Webhooks reference library and the overview's three-line check both accept it.
    Webhook(created.secret).verify(request.body, headers)
    assert overview_valid(headers["x-webhook-signature"], request.body, created.secret)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert done.attempt_count == 1
    assert done.attempts[0].status_code == 200
    assert done.attempts[0].response_body == "ok"


async def test_signatures_during_rotation(server: RunningServer, receiver: Receiver) -> None:
    created = await subscribe(server, receiver.url())
    rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    )
    await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert len(headers["x-webhook-signature"].split(" ")) == 2
    for secret in (created.secret, rotated.secret):
        Webhook(secret).verify(request.body, headers)
        assert overview_valid(headers["x-webhook-signature"], request.body, secret)


async def test_thin_payload_mode(server: RunningServer, receiver: Receiver) -> None:
    await subscribe(server, receiver.url(), payload_mode=spb.PAYLOAD_MODE_THIN)
    event = await publish(
        server, "product.price_changed", "prod_1", PRODUCT, previous={"selling_price": "1"}
    )
    await receiver.wait_count(1)
    body = json.loads(receiver.received[0].body)
    assert body["data"] == {"id": "prod_1"}
    assert "previous" not in body
    assert body["id"] == event.id


async def test_retry_then_success_keeps_the_webhook_id(
    server: RunningServer, receiver: Receiver
) -> None:
    receiver.on("/hook", statuses=[500, 502, 200])
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert [a.status_code for a in done.attempts] == [500, 502, 200]
    assert [a.error for a in done.attempts] == [
        dpb.ATTEMPT_ERROR_HTTP_STATUS,
        dpb.ATTEMPT_ERROR_HTTP_STATUS,
        dpb.ATTEMPT_ERROR_UNSPECIFIED,
    ]
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.id}
    assert len(receiver.received) == 3


# No wait between attempts, and one attempt at a time in due order: an attempt that should not
# happen would be due before a later event's first one, so it would reach the receiver first.
IN_DUE_ORDER = {"backoff_schedule": ["0ms"], "dispatcher_concurrency": 1}


def webhook_ids(received: list[Received]) -> list[str]:
    return [r.headers["webhook-id"] for r in received]


async def test_gives_up_after_max_attempts(make_server: ServerFactory, receiver: Receiver) -> None:
    server = await make_server(**IN_DUE_ORDER)
    behaviour = receiver.on("/hook", statuses=[500])
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert done.attempt_count == 5
    assert not done.HasField("next_attempt_at")
    behaviour.statuses = [200]
    later = await publish(server, entity_id="later")
    await receiver.wait_for(lambda got: later.id in webhook_ids(got))
    assert webhook_ids(receiver.received) == [event.id] * 5 + [later.id]


async def test_retries_run_on_their_backoff_not_on_the_poll(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # Polling is only a fallback (30 s here): each recorded retry wakes the dispatcher when it
    # falls due, on SQLite (no NOTIFY) as on PostgreSQL.
    server = await make_server(
        backoff_schedule=["0s", "200ms", "200ms", "200ms", "200ms"], poll_interval="30s"
    )
    receiver.on("/hook", statuses=[500])
    await subscribe(server, receiver.url())
    await publish(server)
    await receiver.wait_count(5, timeout=15)
    times = [r.at for r in receiver.received]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Never early, and nowhere near the poll interval (about 0.2 s each on an idle machine).
    assert all(0.15 <= gap < 2.0 for gap in gaps), gaps


async def test_retry_after_delays_the_next_attempt(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # Retry-After (1 s) replaces the scheduled step (100 ms), and is far from the cap (the
    # longest step, 30 s) that a wrong reading of it would give.
    server = await make_server(
        backoff_schedule=["0ms", "100ms", "30s"], max_retry_attempts=3, poll_interval="30s"
    )
    receiver.on("/hook", statuses=[503, 200], headers={"Retry-After": "1"})
    await subscribe(server, receiver.url())
    await publish(server)
    await receiver.wait_count(2, timeout=25)
    gap = receiver.received[1].at - receiver.received[0].at
    assert 0.9 <= gap < 15, gap


async def test_redirects_are_failures_and_not_followed(
    server: RunningServer, receiver: Receiver
) -> None:
    receiver.on("/hook", statuses=[302], headers={"Location": "/elsewhere"})
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert {a.status_code for a in done.attempts} == {302}
    assert receiver.at("/elsewhere") == []


async def test_timeout_is_a_failed_attempt(make_server: ServerFactory, receiver: Receiver) -> None:
    server = await make_server(delivery_timeout="300ms", max_retry_attempts=1)
    receiver.on("/hook", hold=asyncio.Event())  # never answers while the test runs
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id, timeout=30)
    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert done.attempts[0].error == dpb.ATTEMPT_ERROR_TIMEOUT
    assert done.attempts[0].latency.ToTimedelta().total_seconds() >= 0.29
    # It ended because the dispatcher stopped waiting: the receiver got it and never answered.
    assert len(receiver.received) == 1 and receiver.answered == []


async def test_connection_refused_is_classified(server: RunningServer) -> None:
    await subscribe(server, "http://127.0.0.1:9/nothing-listens-here")
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id, lambda d: d.attempt_count >= 1)
    assert done.attempts[0].error == dpb.ATTEMPT_ERROR_CONNECT


async def feed_types(server: RunningServer) -> list[str]:
    page = await server.feed.ListEvents(
        feed_pb2.ListEventsRequest(tenant_id="acme", page_size=1000)
    )
    return [e.type for e in page.events]


async def feed_shows(server: RunningServer, event_type: str, timeout: float = 10.0) -> None:
    """Wait until the tenant's feed has an event of `event_type` (on PostgreSQL an event joins
    the feed once every older transaction has ended)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while event_type not in await feed_types(server):
        assert asyncio.get_running_loop().time() < deadline, f"no {event_type} in the feed"
        await asyncio.sleep(0.02)


async def test_gone_disables_at_once_and_tells_the_feed(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(**IN_DUE_ORDER)
    receiver.on("/hook", statuses=[410])
    created = await subscribe(server, receiver.url(), ["product.*"])
    await subscribe(server, receiver.url("/other"), ["customer.*"])
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_FAILED and done.attempt_count == 1
    # Disabled in the transaction that recorded the 410.
    sub = await _status(server, created.subscription.id)
    assert sub.status == spb.SUBSCRIPTION_STATUS_DISABLED
    assert sub.disabled_reason == spb.DISABLED_REASON_ENDPOINT_GONE
    await feed_shows(server, "webhook.subscription_disabled")
    later = await publish(server, "customer.created", "c1")
    await receiver.wait_for(lambda got: later.id in webhook_ids(got))
    assert webhook_ids(receiver.received) == [event.id, later.id]


async def _wait_attempts(server: RunningServer, subscription_id: str, count: int) -> None:
    for _ in range(300):
        listed = await server.deliveries.ListDeliveries(
            dpb.ListDeliveriesRequest(
                tenant_id="acme", subscription_id=subscription_id, page_size=100
            )
        )
        if sum(d.attempt_count for d in listed.deliveries) >= count and all(
            d.status != dpb.DELIVERY_STATUS_PENDING for d in listed.deliveries
        ):
            return
        await asyncio.sleep(0.03)
    raise AssertionError(f"fewer than {count} attempts recorded")


async def _status(server: RunningServer, subscription_id: str) -> spb.Subscription:
    response = await server.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=subscription_id)
    )
    return response.subscription


async def test_auto_disable_threshold_edges_and_reactivation(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(max_retry_attempts=1)
    receiver.on("/hook", statuses=[500])
    sub_id = (await subscribe(server, receiver.url(), ["product.*"])).subscription.id
    for i in range(9):
        await publish(server, entity_id=f"p{i}")
    await _wait_attempts(server, sub_id, 9)
    assert (await _status(server, sub_id)).status == spb.SUBSCRIPTION_STATUS_ACTIVE  # 9 < 10
    await publish(server, entity_id="p9")
    await _wait_attempts(server, sub_id, 10)
    for _ in range(400):
        sub = await _status(server, sub_id)
        if sub.status == spb.SUBSCRIPTION_STATUS_DISABLED:
            break
        await asyncio.sleep(0.03)
    assert sub.disabled_reason == spb.DISABLED_REASON_FAILURE_RATE
    await feed_shows(server, "webhook.subscription_disabled")
    page = await server.feed.ListEvents(
        feed_pb2.ListEventsRequest(
            tenant_id="acme", event_patterns=["webhook.subscription_disabled"]
        )
    )
    [notice] = page.events
    assert notice.data["subscription_id"] == sub_id
    assert notice.data["total_attempts"] == 10 and notice.data["failed_attempts"] == 10
    # Reactivation clears the window: one more failure does not disable it again.
    await server.subscriptions.ActivateSubscription(spb.ActivateSubscriptionRequest(id=sub_id))
    await publish(server, entity_id="p10")
    await _wait_attempts(server, sub_id, 11)
    # The rule runs in the transaction that records a failed attempt: this is its final word.
    assert (await _status(server, sub_id)).status == spb.SUBSCRIPTION_STATUS_ACTIVE


async def test_95_percent_is_not_more_than_95_percent(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # 19 failures and 1 success out of 20 is exactly 95 %: not disabled; the 21st failure is.
    server = await make_server(max_retry_attempts=1)
    receiver.on("/hook", statuses=[200, *([500] * 19), 500])
    sub_id = (await subscribe(server, receiver.url(), ["product.*"])).subscription.id
    await publish(server, entity_id="first")
    await receiver.wait_count(1)
    for i in range(19):
        await publish(server, entity_id=f"p{i}")
    await _wait_attempts(server, sub_id, 20)
    assert (await _status(server, sub_id)).status == spb.SUBSCRIPTION_STATUS_ACTIVE
    await publish(server, entity_id="last")
    await _wait_attempts(server, sub_id, 21)
    for _ in range(400):
        if (await _status(server, sub_id)).status == spb.SUBSCRIPTION_STATUS_DISABLED:
            break
        await asyncio.sleep(0.03)
    assert (await _status(server, sub_id)).status == spb.SUBSCRIPTION_STATUS_DISABLED


# Attempts at a hanging endpoint end by this timeout; work that waits on them would wait this
# long. Healthy deliveries take milliseconds: a clear separation even on a loaded machine.
HANG_TIMEOUT = {"delivery_timeout": "20s", "lease_duration": "40s", "max_retry_attempts": 1}


async def recorded_attempts(server: RunningServer, subscription_id: str) -> int:
    listed = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id="acme", subscription_id=subscription_id, page_size=100)
    )
    return sum(d.attempt_count for d in listed.deliveries)


async def test_hanging_endpoint_does_not_slow_a_healthy_one(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(endpoint_concurrency=4, **HANG_TIMEOUT)
    receiver.on("/hang", hold=asyncio.Event())
    hanging = (await subscribe(server, receiver.url("/hang"), ["product.*"])).subscription
    await subscribe(server, receiver.url("/healthy"), ["customer.*"])
    for i in range(40):
        await publish(server, "product.created", f"p{i}")
    await receiver.wait_count(4, "/hang")  # the hanging endpoint holds all its slots
    for i in range(20):
        await publish(server, "customer.created", f"c{i}")
    await receiver.wait_count(20, "/healthy", timeout=60)
    # All delivered before the first hanging attempt timed out, and the hanging endpoint only
    # ever held its own slots.
    assert await recorded_attempts(server, hanging.id) == 0
    assert len(receiver.at("/hang")) == 4


async def test_a_slow_endpoints_backlog_does_not_hide_other_due_work(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # A lease looks at the oldest due rows only (4 x the lease size, 32 here). The hanging
    # endpoint's backlog is older than the healthy delivery and fills that window: once its
    # lane is full, the dispatcher must lease again without it, not wait for the next poll.
    # A dispatcher that waited instead would be woken only when the hanging attempt times out.
    publisher = await make_server(serve_dispatcher=False)
    receiver.on("/hang", hold=asyncio.Event())
    hanging = (await subscribe(publisher, receiver.url("/hang"), ["product.*"])).subscription
    await subscribe(publisher, receiver.url("/healthy"), ["customer.*"])
    for i in range(40):
        await publish(publisher, "product.created", f"p{i}")
    await publish(publisher, "customer.created", "c0")
    await make_server(
        endpoint_concurrency=1, dispatcher_concurrency=8, poll_interval="30s", **HANG_TIMEOUT
    )
    await receiver.wait_count(1, "/healthy", timeout=60)
    await receiver.wait_count(1, "/hang")
    assert await recorded_attempts(publisher, hanging.id) == 0  # still in flight


async def test_send_test_event(server: RunningServer, receiver: Receiver) -> None:
    created = await subscribe(server, receiver.url(), ["customer.created"])
    response = await server.subscriptions.SendTestEvent(
        spb.SendTestEventRequest(id=created.subscription.id)
    )
    assert response.event.type == "webhook.test"
    await receiver.wait_count(1)
    Webhook(created.secret).verify(receiver.received[0].body, dict(receiver.received[0].headers))
    done = await wait_delivery(server, response.delivery_id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED


async def test_retry_and_recover_failed_deliveries(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(max_retry_attempts=1)
    behaviour = receiver.on("/hook", statuses=[500])
    sub_id = (await subscribe(server, receiver.url(), ["product.*"])).subscription.id
    events = [await publish(server, entity_id=f"p{i}") for i in range(3)]
    ids = [(await deliveries_of(server, e.id))[0].id for e in events]
    for delivery_id in ids:
        assert (await wait_delivery(server, delivery_id)).status == dpb.DELIVERY_STATUS_FAILED
    behaviour.statuses = [200]
    retried = await server.deliveries.RetryDelivery(dpb.RetryDeliveryRequest(id=ids[0]))
    assert retried.delivery.status == dpb.DELIVERY_STATUS_PENDING
    assert (await wait_delivery(server, ids[0])).status == dpb.DELIVERY_STATUS_SUCCEEDED
    since = events[0].published_at
    recovered = await server.deliveries.RecoverFailedDeliveries(
        dpb.RecoverFailedDeliveriesRequest(subscription_id=sub_id, since=since)
    )
    assert recovered.recovered_count == 2
    for delivery_id in ids[1:]:
        assert (await wait_delivery(server, delivery_id)).status == dpb.DELIVERY_STATUS_SUCCEEDED
    failed = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id="acme", status=dpb.DELIVERY_STATUS_FAILED)
    )
    assert list(failed.deliveries) == []


async def test_recovery_restarts_the_retry_schedule(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # After an outage every recovered delivery gets the whole schedule again, not one attempt.
    # The failure-rate rule would otherwise disable the subscription after ten failures.
    server = await make_server(max_retry_attempts=3, min_deliveries_for_disable=1000)
    behaviour = receiver.on("/hook", statuses=[500])
    sub_id = (await subscribe(server, receiver.url(), ["product.*"])).subscription.id
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    failed = await wait_delivery(server, delivery.id)
    assert failed.status == dpb.DELIVERY_STATUS_FAILED
    assert len(receiver.received) == 3

    async def recover() -> None:
        recovered = await server.deliveries.RecoverFailedDeliveries(
            dpb.RecoverFailedDeliveriesRequest(subscription_id=sub_id, since=event.published_at)
        )
        assert recovered.recovered_count == 1

    # The endpoint is still down: three more attempts, then FAILED again.
    await recover()
    again = await wait_delivery(server, delivery.id)
    assert again.status == dpb.DELIVERY_STATUS_FAILED
    assert len(receiver.received) == 6
    assert again.attempt_count == 3
    # Every attempt stays in the history, numbered within its schedule.
    assert [a.attempt_number for a in again.attempts] == [1, 2, 3, 1, 2, 3]
    assert [a.status_code for a in again.attempts] == [500] * 6
    # The endpoint comes back after one more failure: the retry inside the new schedule lands.
    behaviour.statuses = [500, 200]
    await recover()
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert [a.attempt_number for a in done.attempts][6:] == [1, 2]
    assert len(receiver.received) == 8
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.id}


async def test_retry_delivery_restarts_the_retry_schedule(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(max_retry_attempts=2)
    behaviour = receiver.on("/hook", statuses=[500])
    await subscribe(server, receiver.url(), ["product.*"])
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    assert (await wait_delivery(server, delivery.id)).status == dpb.DELIVERY_STATUS_FAILED
    behaviour.statuses = [500, 200]
    retried = await server.deliveries.RetryDelivery(dpb.RetryDeliveryRequest(id=delivery.id))
    assert retried.delivery.status == dpb.DELIVERY_STATUS_PENDING
    assert retried.delivery.attempt_count == 0
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert [(a.attempt_number, a.status_code) for a in done.attempts] == [
        (1, 500),
        (2, 500),
        (1, 500),
        (2, 200),
    ]


async def test_disable_cancels_a_delivery_waiting_for_its_retry(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(backoff_schedule=["0ms", "1h"])
    receiver.on("/hook", statuses=[500])
    sub_id = (await subscribe(server, receiver.url())).subscription.id
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    await wait_delivery(server, delivery.id, lambda d: d.attempt_count == 1)
    await server.subscriptions.DisableSubscription(spb.DisableSubscriptionRequest(id=sub_id))
    assert (await wait_delivery(server, delivery.id)).status == dpb.DELIVERY_STATUS_CANCELLED


@pytest.mark.parametrize("action", ["disable", "delete"])
async def test_disable_and_delete_cancel_pending_deliveries(
    make_server: ServerFactory, receiver: Receiver, action: str
) -> None:
    # Published with no dispatcher running: every delivery is still pending.
    publisher = await make_server(serve_dispatcher=False)
    sub_id = (await subscribe(publisher, receiver.url("/stopped"), ["product.*"])).subscription.id
    await subscribe(publisher, receiver.url("/other"), ["customer.*"])
    events = [await publish(publisher, entity_id=f"p{i}") for i in range(3)]
    delivery_ids = [(await deliveries_of(publisher, e.id))[0].id for e in events]
    if action == "delete":
        await publisher.subscriptions.DeleteSubscription(spb.DeleteSubscriptionRequest(id=sub_id))
    else:
        await publisher.subscriptions.DisableSubscription(spb.DisableSubscriptionRequest(id=sub_id))
    for delivery_id in delivery_ids:
        delivery = (
            await publisher.deliveries.GetDelivery(dpb.GetDeliveryRequest(id=delivery_id))
        ).delivery
        assert delivery.status == dpb.DELIVERY_STATUS_CANCELLED
        assert not delivery.HasField("next_attempt_at")
    await make_server(**IN_DUE_ORDER)
    later = await publish(publisher, "customer.created", "c1")
    await receiver.wait_for(lambda got: later.id in webhook_ids(got))
    assert webhook_ids(receiver.received) == [later.id]


async def test_private_target_checked_again_at_delivery(
    make_server: ServerFactory, receiver: Receiver, database_url: str
) -> None:
    permissive = await make_server()
    await subscribe(permissive, receiver.url("/hook"))
    await permissive.stop()
    strict = await make_server(allow_private_targets=False, max_retry_attempts=1)
    event = await publish(strict)
    [delivery] = await deliveries_of(strict, event.id)
    done = await wait_delivery(strict, delivery.id)
    assert done.attempts[0].error == dpb.ATTEMPT_ERROR_REFUSED_TARGET
    assert receiver.received == []
