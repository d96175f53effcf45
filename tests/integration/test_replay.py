"""ReplayEvents (SPEC §11) end to end: a real server and receiver, both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import grpc
from google.protobuf import timestamp_pb2

from tests.conftest import ServerFactory
from tests.support.factories import (
    deliveries_of,
    publish,
    publish_events,
    publish_request,
    subscribe,
    wait_delivery,
)
from tests.support.http import Http
from tests.support.receiver import Receiver
from tests.support.rpc import invalid_field, rpc_error
from tests.support.server import RunningServer
from tests.support.tokens import ACME, ACME_TOKEN, GLOBEX, GLOBEX_TOKEN, PUBLISHER, TOKENS
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.app import Roles
from webhook_grpc.services.replay import EventReplay, ReplayWindow

API = "/api/v1/webhooks"


def at(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_a_new_subscription_replays_earlier_events_once(
    server: RunningServer, receiver: Receiver
) -> None:
    events = await publish_events(server, 1000)
    created = await subscribe(server, receiver.url())
    request = dpb.ReplayEventsRequest(subscription_id=created.subscription.id)
    first = await server.deliveries.ReplayEvents(request)
    assert (first.queued, first.has_more) == (1000, False)
    again = await server.deliveries.ReplayEvents(request)
    assert (again.queued, again.has_more) == (0, False)
    await receiver.wait_count(1000, timeout=60)
    received = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(received) == sorted(e.id for e in events)  # each once
    after = await server.deliveries.ReplayEvents(request)
    assert after.queued == 0


async def test_replay_applies_patterns_filter_and_window(
    server: RunningServer, receiver: Receiver
) -> None:
    old = await publish(server, "product.price_changed", "prod_1", {"id": "prod_1"})
    boundary = datetime.now(UTC)
    wanted = await publish(server, "product.price_changed", "prod_1", {"id": "prod_1"})
    other_entity = await publish(server, "product.price_changed", "prod_2", {"id": "prod_2"})
    other_type = await publish(server, "product.created", "prod_1", {"id": "prod_1"})
    customer = await publish(server, "customer.created", "cus_1", {"id": "cus_1"})
    created = await subscribe(
        server, receiver.url(), ["product.*", "customer.*"], filter='entity_id != "prod_2"'
    )
    replayed = await server.deliveries.ReplayEvents(
        dpb.ReplayEventsRequest(
            subscription_id=created.subscription.id,
            since=at(boundary),
            event_patterns=["product.price_changed", "product.activated"],
        )
    )
    assert replayed.queued == 1
    assert len(await deliveries_of(server, wanted.id)) == 1
    for skipped in (old, other_entity, other_type, customer):
        assert await deliveries_of(server, skipped.id) == []
    await receiver.wait_count(1)


async def test_replay_is_bounded_and_continues_from_next_since(server: RunningServer) -> None:
    events = await publish_events(server, 7)
    created = await subscribe(server, "http://127.0.0.1:9/hook")
    replay = EventReplay(
        server.app.storage, server.app.notifier, timedelta(days=30), max_examined=3
    )
    subscription_id = created.subscription.id
    first = await replay.replay(subscription_id, "acme", ReplayWindow())
    assert (first.queued, first.has_more) == (3, True)
    assert first.next_since is not None
    total = first.queued
    window = ReplayWindow(since=first.next_since)
    while True:
        step = await replay.replay(subscription_id, "acme", window)
        total += step.queued
        if not step.has_more:
            break
        window = ReplayWindow(since=step.next_since)
    assert total == 7
    for event in events:
        assert len(await deliveries_of(server, event.id)) == 1


async def test_replay_refuses_bad_input_and_disabled_subscriptions(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url())
    now = datetime.now(UTC)
    backwards = dpb.ReplayEventsRequest(
        subscription_id=created.subscription.id, since=at(now), until=at(now - timedelta(hours=1))
    )
    assert await invalid_field(server.deliveries.ReplayEvents(backwards)) == "until"
    unknown = dpb.ReplayEventsRequest(
        subscription_id=created.subscription.id, event_patterns=["nope.created"]
    )
    assert await invalid_field(server.deliveries.ReplayEvents(unknown)) == "event_patterns[0]"
    await server.subscriptions.DisableSubscription(
        spb.DisableSubscriptionRequest(id=created.subscription.id)
    )
    await rpc_error(
        server.deliveries.ReplayEvents(
            dpb.ReplayEventsRequest(subscription_id=created.subscription.id)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_replay_stays_within_the_tenant(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(tokens=TOKENS)

    async def publish_for(tenant_id: str, count: int) -> list[str]:
        response = await server.events.PublishEvents(
            epb.PublishEventsRequest(
                events=[
                    publish_request(entity_id=f"e{i}", tenant_id=tenant_id) for i in range(count)
                ]
            ),
            metadata=PUBLISHER,
        )
        return [event.id for event in response.events]

    acme_events = await publish_for("acme", 3)
    await publish_for("globex", 4)
    created = await server.subscriptions.CreateSubscription(
        spb.CreateSubscriptionRequest(url=receiver.url(), event_patterns=["*"]), metadata=ACME
    )
    request = dpb.ReplayEventsRequest(subscription_id=created.subscription.id)
    await rpc_error(
        server.deliveries.ReplayEvents(request, metadata=GLOBEX), grpc.StatusCode.NOT_FOUND
    )
    replayed = await server.deliveries.ReplayEvents(request, metadata=ACME)
    assert replayed.queued == 3
    await receiver.wait_count(3)
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(acme_events)


async def test_rest_filter_headers_and_replay(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(tokens=TOKENS)
    await publish_for_rest(server)
    async with aiohttp.ClientSession() as session:
        acme = Http(server.http, session, ACME_TOKEN)
        created = await acme.post(
            f"{API}/subscriptions",
            {
                "url": receiver.url(),
                "event_patterns": ["product.*"],
                "filter": 'entity_id == "keep"',
                "headers": {"X-Tenant": "a"},
            },
        )
        assert created.status == 201, created.text
        subscription = created.json["subscription"]
        assert subscription["filter"] == 'entity_id == "keep"'
        assert subscription["headers"] == {"X-Tenant": "a"}
        path = f"{API}/subscriptions/{subscription['id']}"
        bad = await acme.request("PATCH", path, {"filter": "type =="})
        assert bad.status == 400, bad.text
        replayed = await acme.post(f"{path}/replay", {})
        assert replayed.status == 200, replayed.text
        assert replayed.json["queued"] == 1
        assert (await acme.post(f"{path}/replay", {})).json.get("queued", 0) == 0
        globex = acme.as_token(GLOBEX_TOKEN)
        assert (await globex.post(f"{path}/replay", {})).status == 404
    await receiver.wait_count(1)
    assert receiver.received[0].headers["X-Tenant"] == "a"


async def publish_for_rest(server: RunningServer) -> None:
    for entity_id in ("keep", "drop"):
        await server.events.PublishEvent(publish_request(entity_id=entity_id), metadata=PUBLISHER)


async def test_another_subscriptions_test_event_is_never_replayed(
    server: RunningServer, receiver: Receiver
) -> None:
    first = await subscribe(server, receiver.url("/first"))
    sent = await server.subscriptions.SendTestEvent(
        spb.SendTestEventRequest(id=first.subscription.id)
    )
    second = await subscribe(server, receiver.url("/second"))
    replayed = await server.deliveries.ReplayEvents(
        dpb.ReplayEventsRequest(subscription_id=second.subscription.id)
    )
    assert replayed.queued == 0
    assert [d.subscription_id for d in await deliveries_of(server, sent.event.id)] == [
        first.subscription.id
    ]


async def test_the_window_is_clamped_to_retention(make_server: ServerFactory) -> None:
    now = [datetime.now(UTC) - timedelta(days=40)]
    server = await make_server(
        clock=lambda: now[0], retention_days=30, roles=Roles(retention=False)
    )
    await publish(server, entity_id="expired")  # older than retention, not purged yet
    now[0] = datetime.now(UTC)
    kept = await publish(server, entity_id="kept")
    created = await subscribe(server, "http://127.0.0.1:9/hook")
    replayed = await server.deliveries.ReplayEvents(
        dpb.ReplayEventsRequest(
            subscription_id=created.subscription.id,
            since=at(datetime.now(UTC) - timedelta(days=365)),
        )
    )
    assert replayed.queued == 1
    assert len(await deliveries_of(server, kept.id)) == 1


async def test_after_an_outage_replay_resends_what_failed_and_nothing_that_arrived(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(max_retry_attempts=1)
    created = await subscribe(server, receiver.url(), ["product.*"])
    arrived = await publish(server, entity_id="arrived")
    [before] = await deliveries_of(server, arrived.id)
    await wait_delivery(server, before.id)
    receiver.on("/hook", statuses=[503])  # the outage
    lost = await publish(server, entity_id="lost")
    [failed] = await deliveries_of(server, lost.id)
    assert (await wait_delivery(server, failed.id)).status == dpb.DELIVERY_STATUS_FAILED
    receiver.on("/hook", statuses=[200])
    request = dpb.ReplayEventsRequest(subscription_id=created.subscription.id)
    replayed = await server.deliveries.ReplayEvents(request)
    assert replayed.queued == 1
    again = await server.deliveries.ReplayEvents(request)  # the new one is under way
    assert again.queued == 0
    await receiver.wait_for(
        lambda got: any(r.headers["webhook-id"] == lost.id and r.status == 200 for r in got)
    )
    deliveries = {d.id: d.status for d in await deliveries_of(server, lost.id)}
    assert deliveries.pop(failed.id) == dpb.DELIVERY_STATUS_FAILED  # kept, with its attempt
    [resent] = deliveries
    assert (await wait_delivery(server, resent)).status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert len(await deliveries_of(server, arrived.id)) == 1
