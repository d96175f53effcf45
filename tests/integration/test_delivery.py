"""The dispatcher end to end: a real receiver on loopback, both backends."""

from __future__ import annotations

import asyncio
import json
import time

from standardwebhooks.webhooks import Webhook

from tests.conftest import ServerFactory
from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.receiver import Receiver
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


async def test_gives_up_after_max_attempts(server: RunningServer, receiver: Receiver) -> None:
    receiver.on("/hook", statuses=[500])
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert done.attempt_count == 5
    assert not done.HasField("next_attempt_at")
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 5


async def test_retry_after_delays_the_next_attempt(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(backoff_schedule=["0ms", "100ms", "2s"], max_retry_attempts=3)
    receiver.on("/hook", statuses=[503, 200], headers={"Retry-After": "1"})
    await subscribe(server, receiver.url())
    await publish(server)
    await receiver.wait_count(2, timeout=10)
    gap = receiver.received[1].at - receiver.received[0].at
    assert 0.9 <= gap < 2.5, gap


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
    receiver.on("/hook", delay=2.0)
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done = await wait_delivery(server, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert done.attempts[0].error == dpb.ATTEMPT_ERROR_TIMEOUT
    assert done.attempts[0].latency.ToTimedelta().total_seconds() < 1.5


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


async def test_gone_disables_at_once_and_tells_the_feed(
    server: RunningServer, receiver: Receiver
) -> None:
    receiver.on("/hook", statuses=[410])
    created = await subscribe(server, receiver.url())
    await publish(server)
    await receiver.wait_count(1)
    sub_id = created.subscription.id
    for _ in range(400):
        sub = (
            await server.subscriptions.GetSubscription(spb.GetSubscriptionRequest(id=sub_id))
        ).subscription
        if sub.status == spb.SUBSCRIPTION_STATUS_DISABLED:
            break
        await asyncio.sleep(0.05)
    assert sub.disabled_reason == spb.DISABLED_REASON_ENDPOINT_GONE
    assert "webhook.subscription_disabled" in await feed_types(server)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1


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
    await asyncio.sleep(0.2)
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


async def test_hanging_endpoint_does_not_slow_a_healthy_one(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(delivery_timeout="3s", endpoint_concurrency=4, max_retry_attempts=1)
    receiver.on("/hang", delay=5.0)
    await subscribe(server, receiver.url("/hang"), ["product.*"])
    await subscribe(server, receiver.url("/healthy"), ["customer.*"])
    for i in range(40):
        await publish(server, "product.created", f"p{i}")
    started = time.monotonic()
    for i in range(20):
        await publish(server, "customer.created", f"c{i}")
    await receiver.wait_count(20, "/healthy", timeout=2.5)
    assert time.monotonic() - started < 2.5
    # The hanging endpoint only ever holds its own slots.
    assert len(receiver.at("/hang")) <= 4


async def test_a_slow_endpoints_backlog_does_not_hide_other_due_work(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # A lease looks at the oldest due rows only (4 x the lease size, 32 here). The hanging
    # endpoint's backlog is older than the healthy delivery and fills that window: once its
    # lane is full, the dispatcher must lease again without it, not wait for the next poll.
    publisher = await make_server(serve_dispatcher=False)
    receiver.on("/hang", delay=5.0)
    await subscribe(publisher, receiver.url("/hang"), ["product.*"])
    await subscribe(publisher, receiver.url("/healthy"), ["customer.*"])
    for i in range(40):
        await publish(publisher, "product.created", f"p{i}")
    await publish(publisher, "customer.created", "c0")
    started = time.monotonic()
    await make_server(
        delivery_timeout="3s",
        endpoint_concurrency=1,
        dispatcher_concurrency=8,
        poll_interval="30s",
        max_retry_attempts=1,
    )
    await receiver.wait_count(1, "/healthy", timeout=2.5)
    assert time.monotonic() - started < 2.5


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


async def test_delete_and_disable_cancel_pending_deliveries(
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
