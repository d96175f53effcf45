"""The Python SDK (`webhook_grpc_client`) against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from webhook_grpc_client import (
    Event,
    Feed,
    NewEvent,
    RetryPolicy,
    WebhooksClient,
    WebhookVerificationError,
    verify,
)
from webhook_grpc_client.v1 import subscriptions_pb2

from tests.clients.proxy import LossyProxy
from tests.conftest import ServerFactory
from tests.support.network import free_port
from tests.support.receiver import Receiver
from tests.support.server import RunningServer

FAST_RETRY = RetryPolicy(max_attempts=20, initial_delay=0.05, max_delay=0.3)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[WebhooksClient]:
    async with WebhooksClient(server.target, retry=FAST_RETRY) as sdk:
        yield sdk


async def feed_ids(client: WebhooksClient, tenant_id: str = "acme") -> list[str]:
    """The ids of the tenant's whole feed, read with a fresh stream up to a sentinel event
    published now (so the feed has it too from then on).

    (On PostgreSQL an event is served once no older transaction is still open: it may take a
    moment, so the events are awaited rather than polled for.)"""
    sentinel = await client.publish(tenant_id, "customer.created", "sentinel", {"id": "sentinel"})
    ids = []
    async with client.feed(tenant_id) as feed:
        while (event := await asyncio.wait_for(anext(feed), 10)).id != sentinel.id:
            ids.append(event.id)
    return ids


class FailedCalls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the unary calls of a channel that failed, by status code."""

    def __init__(self) -> None:
        self.codes: list[grpc.StatusCode] = []

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        call = await continuation(details, request)
        code = await call.code()
        if code != grpc.StatusCode.OK:
            self.codes.append(code)
        return call


async def collect(feed: Feed, into: list[Event]) -> None:
    async for event in feed:
        into.append(event)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# publishing


async def test_publish_returns_the_stored_projected_event(client: WebhooksClient) -> None:
    occurred = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = await client.publish(
        "acme",
        "product.price_changed",
        "prod_1",
        {"id": "prod_1", "sku": "A-1", "selling_price": "19.90", "cost_price": "7.10"},
        previous={"selling_price": "17.50"},
        occurred_at=occurred,
    )
    assert event.id.startswith("evt_") and event.cursor
    assert (event.tenant_id, event.type, event.entity_id) == (
        "acme",
        "product.price_changed",
        "prod_1",
    )
    assert dict(event.data) == {"id": "prod_1", "sku": "A-1", "selling_price": "19.90"}
    assert dict(event.previous) == {"selling_price": "17.50"}
    assert event.occurred_at.ToDatetime(tzinfo=UTC) == occurred


async def test_an_explicit_idempotency_key_publishes_once(client: WebhooksClient) -> None:
    first = await client.publish(
        "acme", "product.created", "p1", {"id": "p1"}, idempotency_key="k1"
    )
    again = await client.publish(
        "acme", "product.created", "p1", {"id": "p1"}, idempotency_key="k1"
    )
    other = await client.publish("acme", "product.created", "p1", {"id": "p1"})
    assert again.id == first.id and other.id != first.id
    assert await feed_ids(client) == [first.id, other.id]


async def test_a_retry_after_a_lost_answer_does_not_duplicate(
    server: RunningServer, client: WebhooksClient
) -> None:
    proxy = LossyProxy(server.target, lose=1)
    await proxy.start()
    try:
        async with WebhooksClient(proxy.target, retry=FAST_RETRY) as flaky:
            event = await flaky.publish("acme", "product.created", "p1", {"id": "p1"})
            batch = await flaky.publish_many(
                [NewEvent("acme", "product.created", "p2", {"id": "p2"})]
            )
    finally:
        await proxy.stop()
    # Each call reached the server twice (the first answer was lost), yet each event exists once.
    assert proxy.forwarded == [
        "/webhooks.v1.EventService/PublishEvent",
        "/webhooks.v1.EventService/PublishEvent",
        "/webhooks.v1.EventService/PublishEvents",
    ]
    assert await feed_ids(client) == [event.id, batch[0].id]


async def test_publish_waits_for_a_server_that_is_not_up_yet(make_server: ServerFactory) -> None:
    target = f"127.0.0.1:{free_port()}"
    failed = FailedCalls()
    channel = grpc.aio.insecure_channel(target, interceptors=[failed])
    # Retrying for as long as a server may take to start on a busy machine.
    patient = RetryPolicy(max_attempts=200, initial_delay=0.05, max_delay=0.3)
    async with WebhooksClient(target, channel=channel, retry=patient) as early:
        publishing = asyncio.create_task(
            early.publish("acme", "product.created", "p1", {"id": "p1"})
        )
        await until(lambda: len(failed.codes) >= 2)  # nothing listens yet
        assert not publishing.done()
        server = await make_server(listen=target)
        event = await asyncio.wait_for(publishing, 15)
        assert await feed_ids(early) == [event.id]
    await channel.close()
    assert set(failed.codes) == {grpc.StatusCode.UNAVAILABLE}
    await server.stop()  # before the fixture's: this test's client channel is closed


async def test_retries_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02)
    async with WebhooksClient(f"127.0.0.1:{free_port()}", retry=policy) as nowhere:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await nowhere.publish("acme", "product.created", "p1", {"id": "p1"})
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_publish_many_is_atomic_and_ordered(client: WebhooksClient) -> None:
    events = await client.publish_many(
        [NewEvent("acme", "product.created", f"p{i}", {"id": f"p{i}"}) for i in range(3)]
    )
    assert [e.entity_id for e in events] == ["p0", "p1", "p2"]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.publish_many(
            [
                NewEvent("acme", "product.created", "p3", {"id": "p3"}),
                NewEvent("acme", "product.unknown", "p4", {"id": "p4"}),
            ]
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await feed_ids(client) == [e.id for e in events]


# subscriptions


async def test_subscription_lifecycle(client: WebhooksClient, receiver: Receiver) -> None:
    subs = client.subscriptions
    created = await subs.create(
        receiver.url("/hook"),
        ["product.*"],
        tenant_id="acme",
        description="shop",
        metadata={"team": "web"},
    )
    sub = created.subscription
    assert created.secret.startswith("whsec_") and sub.id.startswith("sub_")
    assert sub.status == subscriptions_pb2.SUBSCRIPTION_STATUS_ACTIVE
    assert sub.payload_mode == subscriptions_pb2.PAYLOAD_MODE_FULL

    assert (await subs.get(sub.id, tenant_id="acme")).description == "shop"
    updated = await subs.update(
        sub.id, tenant_id="acme", description="shop v2", event_patterns=["product.*", "customer.*"]
    )
    assert updated.description == "shop v2"
    assert list(updated.event_patterns) == ["product.*", "customer.*"]
    assert updated.url == sub.url and dict(updated.metadata) == {"team": "web"}
    with pytest.raises(ValueError, match="at least one field"):
        await subs.update(sub.id, tenant_id="acme")

    disabled = await subs.disable(sub.id, tenant_id="acme")
    assert disabled.status == subscriptions_pb2.SUBSCRIPTION_STATUS_DISABLED
    assert disabled.disabled_reason == subscriptions_pb2.DISABLED_REASON_MANUAL
    assert [s.id for s in await subs.list(tenant_id="acme", status="disabled")] == [sub.id]
    assert await subs.list(tenant_id="acme", status="active") == []
    activated = await subs.activate(sub.id, tenant_id="acme")
    assert activated.status == subscriptions_pb2.SUBSCRIPTION_STATUS_ACTIVE

    rotated = await subs.rotate_secret(sub.id, tenant_id="acme", grace_period=timedelta(0))
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    test = await subs.send_test_event(sub.id, tenant_id="acme")
    assert test.event.type == "webhook.test" and test.delivery_id
    await receiver.wait_count(1, "/hook")
    delivery = receiver.at("/hook")[0]
    verify(delivery.headers, delivery.body, rotated.secret)
    with pytest.raises(WebhookVerificationError):
        verify(delivery.headers, delivery.body, created.secret)  # the grace period was zero

    await subs.delete(sub.id, tenant_id="acme")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await subs.get(sub.id, tenant_id="acme")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert await subs.list(tenant_id="acme") == []


async def test_filter_headers_and_replay(client: WebhooksClient, receiver: Receiver) -> None:
    kept = await client.publish("acme", "product.created", "keep", {"id": "keep"})
    await client.publish("acme", "product.created", "drop", {"id": "drop"})
    subs = client.subscriptions
    created = await subs.create(
        receiver.url("/hook"),
        ["product.*"],
        tenant_id="acme",
        filter='entity_id == "keep"',
        headers={"X-Tenant": "a"},
    )
    sub = created.subscription
    assert (sub.filter, dict(sub.headers)) == ('entity_id == "keep"', {"X-Tenant": "a"})
    replayed = await subs.replay(sub.id, tenant_id="acme", event_patterns=["product.created"])
    assert (replayed.queued, replayed.has_more) == (1, False)
    assert (await subs.replay(sub.id, tenant_id="acme")).queued == 0
    await receiver.wait_count(1, "/hook")
    [delivery] = receiver.at("/hook")
    assert delivery.headers["webhook-id"] == kept.id and delivery.headers["X-Tenant"] == "a"
    updated = await subs.update(sub.id, tenant_id="acme", filter="", headers={"X-Tenant": "b"})
    assert (updated.filter, dict(updated.headers)) == ("", {"X-Tenant": "b"})


async def test_list_pages_through_everything(client: WebhooksClient) -> None:
    for i in range(3):
        await client.subscriptions.create(
            f"https://example.com/{i}", ["*"], tenant_id="acme", payload_mode="thin"
        )
    listed = await client.subscriptions.list(tenant_id="acme")
    assert len(listed) == 3
    assert {s.payload_mode for s in listed} == {subscriptions_pb2.PAYLOAD_MODE_THIN}


# the feed


async def test_feed_yields_the_backlog_then_live_events(client: WebhooksClient) -> None:
    published = [
        await client.publish("acme", "product.created", f"p{i}", {"id": f"p{i}"}) for i in range(3)
    ]
    await client.publish("globex", "product.created", "g1", {"id": "g1"})
    async with client.feed("acme") as feed:
        backlog = [await anext(feed) for _ in range(3)]
        assert [e.id for e in backlog] == [e.id for e in published]
        assert feed.cursor == backlog[-1].cursor
        live = await client.publish("acme", "customer.created", "c1", {"id": "c1"})
        assert (await asyncio.wait_for(anext(feed), 10)).id == live.id
        assert feed.cursor == live.cursor


async def test_feed_filters(client: WebhooksClient) -> None:
    await client.publish("acme", "product.created", "p1", {"id": "p1"})
    wanted = await client.publish("acme", "customer.created", "c1", {"id": "c1"})
    async with client.feed("acme", event_patterns=["customer.*"]) as feed:
        assert (await anext(feed)).id == wanted.id


async def test_from_latest_skips_the_backlog_and_heartbeats_move_the_cursor(
    client: WebhooksClient,
) -> None:
    old = await client.publish("acme", "product.created", "old", {"id": "old"})
    # Once a stream has served it, it is behind the head (on PostgreSQL the head is the
    # visibility horizon: a commit racing with an open transaction may still be ahead of it).
    async with client.feed("acme") as everything:
        assert (await anext(everything)).id == old.id
    received: list[Event] = []
    feed = client.feed("acme", from_latest=True)
    reader = asyncio.create_task(collect(feed, received))
    try:
        # The test server's heartbeat is 1 s: the cursor of the head arrives without any event.
        await until(lambda: feed.cursor != "")
        new = await client.publish("acme", "product.created", "new", {"id": "new"})
        await until(lambda: len(received) == 1)
        assert [e.id for e in received] == [new.id]
    finally:
        await feed.aclose()
        await reader
    assert reader.done() and reader.exception() is None


async def test_the_feed_resumes_after_a_server_restart_without_gap_or_duplicate(
    make_server: ServerFactory,
) -> None:
    first = await make_server()
    port = first.app.port
    received: list[Event] = []
    async with WebhooksClient(first.target, retry=FAST_RETRY) as sdk:
        before = [
            await sdk.publish("acme", "product.created", f"p{i}", {"id": f"p{i}"}) for i in range(3)
        ]
        feed = sdk.feed("acme", retry=FAST_RETRY)
        reader = asyncio.create_task(collect(feed, received))
        await until(lambda: len(received) == 3)

        await first.stop()  # the stream breaks
        # The feed tried again at least once while nothing listened.
        await until(lambda: feed.reconnects >= 2)
        second = await make_server(listen=f"127.0.0.1:{port}")  # same database, same port
        after = [
            await sdk.publish("acme", "product.created", f"q{i}", {"id": f"q{i}"}) for i in range(3)
        ]
        # Anything repeated would come before an event published after all the others.
        sentinel = await sdk.publish("acme", "customer.created", "sentinel", {"id": "sentinel"})
        await until(lambda: bool(received) and received[-1].id == sentinel.id, timeout=20)
        await feed.aclose()
        await reader

        assert [e.id for e in received] == [e.id for e in [*before, *after, sentinel]]
        assert feed.cursor == sentinel.cursor

        # Another consumer resuming from a saved cursor sees exactly the later events.
        async with sdk.feed("acme", after_cursor=before[1].cursor) as resumed:
            assert [(await anext(resumed)).id for _ in range(5)] == [
                e.id for e in [*before[2:], *after, sentinel]
            ]
    await second.stop()


async def test_feed_errors_that_retrying_cannot_fix_are_raised(client: WebhooksClient) -> None:
    async with client.feed("acme", event_patterns=["nothing.registered"]) as feed:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await anext(feed)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with client.feed("acme", after_cursor="not-a-cursor") as feed:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await anext(feed)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_feed_that_cannot_connect_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02)
    async with WebhooksClient(f"127.0.0.1:{free_port()}") as nowhere:
        feed = nowhere.feed("acme", retry=policy)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await anext(feed)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert feed.reconnects == 2


# verify() on real deliveries


async def test_verify_accepts_real_deliveries_with_either_header(
    client: WebhooksClient, receiver: Receiver
) -> None:
    created = await client.subscriptions.create(receiver.url("/hook"), ["*"], tenant_id="acme")
    secret = created.secret
    event = await client.publish("acme", "product.created", "p1", {"id": "p1", "name": "Widget"})
    await receiver.wait_count(1, "/hook")
    delivery = receiver.at("/hook")[0]
    assert json.loads(delivery.body)["id"] == event.id

    verify(delivery.headers, delivery.body, secret)
    standard_only = {
        k: v for k, v in delivery.headers.items() if k.lower() != "x-webhook-signature"
    }
    verify(standard_only, delivery.body, secret)
    overview_only = {k: v for k, v in delivery.headers.items() if k.lower() != "webhook-signature"}
    verify(overview_only, delivery.body, secret, allow_body_only=True)
    for headers in (standard_only, overview_only):
        with pytest.raises(WebhookVerificationError, match="bad signature"):
            verify(
                headers, delivery.body.replace(b"Widget", b"Gadget"), secret, allow_body_only=True
            )

    # During a rotation's grace period deliveries carry both signatures; either secret verifies.
    rotated = await client.subscriptions.rotate_secret(
        created.subscription.id, tenant_id="acme", grace_period=timedelta(hours=1)
    )
    await client.publish("acme", "product.created", "p2", {"id": "p2"})
    await receiver.wait_count(2, "/hook")
    second = receiver.at("/hook")[1]
    for key in (secret, rotated.secret):
        verify(second.headers, second.body, key)
        verify(
            {k: v for k, v in second.headers.items() if k.lower() != "webhook-signature"},
            second.body,
            key,
            allow_body_only=True,
        )


async def test_delivery_controls_are_set_and_changed(client: WebhooksClient) -> None:
    created = await client.subscriptions.create(
        "https://example.com/fifo",
        ["*"],
        tenant_id="acme",
        ordering="fifo",
        rate_limit_per_second=50,
    )
    sub = created.subscription
    assert (sub.ordering, sub.rate_limit_per_second) == (subscriptions_pb2.ORDERING_FIFO, 50)
    updated = await client.subscriptions.update(
        sub.id, tenant_id="acme", ordering="unordered", rate_limit_per_second=0
    )
    assert (updated.ordering, updated.rate_limit_per_second) == (
        subscriptions_pb2.ORDERING_UNORDERED,
        0,
    )
