"""Every RPC for every caller (SPEC §5), table-driven; and no way into another tenant's data.

test_access.py covers the basic rules by example; this is the full matrix. Every request acts on
tenant acme's resources (its subscriptions, events, deliveries, feed); the callers are:
a publisher, acme's own tenant token, another tenant's token (globex), an admin, no token, and
an unknown token."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from tests.conftest import ServerFactory
from tests.support.calls import call_status
from tests.support.factories import publish_request
from tests.support.receiver import Receiver
from tests.support.rpc import metadata
from tests.support.server import RunningServer
from tests.support.tokens import ACME, ADMIN, GLOBEX, PUBLISHER, TOKENS
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb

CALLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "publisher": PUBLISHER,
    "tenant own": ACME,
    "tenant other": GLOBEX,
    "admin": ADMIN,
    "no token": (),
    "bad token": metadata("not-a-configured-token"),
}

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
MISSING = grpc.StatusCode.NOT_FOUND
ANON = grpc.StatusCode.UNAUTHENTICATED

# Columns: publisher, tenant own, tenant other, admin, no token, bad token.
# A request naming acme's tenant is PERMISSION_DENIED for globex; one naming only an acme id is
# NOT_FOUND for globex (indistinguishable from an id that does not exist).
MATRIX: dict[str, tuple[grpc.StatusCode, ...]] = {
    "EventService/PublishEvent": (OK, DENIED, DENIED, OK, ANON, ANON),
    "EventService/PublishEvents": (OK, DENIED, DENIED, OK, ANON, ANON),
    "EventService/RegisterEventType": (OK, DENIED, DENIED, OK, ANON, ANON),
    "EventService/ListEventTypes": (OK, OK, OK, OK, ANON, ANON),
    "SubscriptionService/CreateSubscription": (DENIED, OK, DENIED, OK, ANON, ANON),
    "SubscriptionService/GetSubscription": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/ListSubscriptions": (DENIED, OK, DENIED, OK, ANON, ANON),
    "SubscriptionService/UpdateSubscription": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/DeleteSubscription": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/ActivateSubscription": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/DisableSubscription": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/RotateSubscriptionSecret": (DENIED, OK, MISSING, OK, ANON, ANON),
    "SubscriptionService/SendTestEvent": (DENIED, OK, MISSING, OK, ANON, ANON),
    "FeedService/ListEvents": (DENIED, OK, DENIED, OK, ANON, ANON),
    "FeedService/StreamEvents": (DENIED, OK, DENIED, OK, ANON, ANON),
    "DeliveryService/ListDeliveries": (DENIED, OK, DENIED, OK, ANON, ANON),
    "DeliveryService/GetDelivery": (DENIED, OK, MISSING, OK, ANON, ANON),
    "DeliveryService/RetryDelivery": (DENIED, OK, MISSING, OK, ANON, ANON),
    "DeliveryService/RecoverFailedDeliveries": (DENIED, OK, MISSING, OK, ANON, ANON),
    "DeliveryService/ReplayEvents": (DENIED, OK, MISSING, OK, ANON, ANON),
}

_names = itertools.count()


async def wait_finished(server: RunningServer, delivery_id: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await server.deliveries.GetDelivery(
            dpb.GetDeliveryRequest(id=delivery_id), metadata=ADMIN
        )
        if got.delivery.status != dpb.DELIVERY_STATUS_PENDING:
            return
        assert asyncio.get_running_loop().time() < deadline, "the delivery did not finish"
        await asyncio.sleep(0.02)


@dataclass
class World:
    """acme's resources, made by an admin; fresh ones for calls that change them."""

    server: RunningServer
    receiver: Receiver
    subscription_id: str = ""
    event_id: str = ""
    cursor: str = ""
    delivery_id: str = ""

    async def subscription(self, patterns: tuple[str, ...] = ("product.*",)) -> str:
        created = await self.server.subscriptions.CreateSubscription(
            spb.CreateSubscriptionRequest(
                tenant_id="acme", url=self.receiver.url("/acme"), event_patterns=list(patterns)
            ),
            metadata=ADMIN,
        )
        return created.subscription.id

    async def finished_delivery(self) -> str:
        """A delivery that is no longer pending (so that RetryDelivery may retry it)."""
        subscription_id = await self.subscription(("customer.status_changed",))
        event = await self.server.events.PublishEvent(
            publish_request("customer.status_changed", f"cust_{next(_names)}"), metadata=ADMIN
        )
        listed = await self.server.deliveries.ListDeliveries(
            dpb.ListDeliveriesRequest(
                tenant_id="acme", event_id=event.event.id, subscription_id=subscription_id
            ),
            metadata=ADMIN,
        )
        [delivery] = listed.deliveries
        await wait_finished(self.server, delivery.id)
        return str(delivery.id)


async def build(world: World, rpc: str) -> Any:
    """The request for `rpc`: always about acme's resources."""
    since = {"seconds": 0}
    match rpc:
        case "EventService/PublishEvent":
            return publish_request()
        case "EventService/PublishEvents":
            return epb.PublishEventsRequest(events=[publish_request(), publish_request()])
        case "EventService/RegisterEventType":
            return epb.RegisterEventTypeRequest(type=f"matrix.t{next(_names)}")
        case "EventService/ListEventTypes":
            return epb.ListEventTypesRequest(entity="product")
        case "SubscriptionService/CreateSubscription":
            return spb.CreateSubscriptionRequest(
                tenant_id="acme", url=world.receiver.url("/new"), event_patterns=["*"]
            )
        case "SubscriptionService/GetSubscription":
            return spb.GetSubscriptionRequest(id=world.subscription_id)
        case "SubscriptionService/ListSubscriptions":
            return spb.ListSubscriptionsRequest(tenant_id="acme")
        case "SubscriptionService/UpdateSubscription":
            return spb.UpdateSubscriptionRequest(
                subscription=spb.Subscription(id=await world.subscription(), description="x"),
                update_mask={"paths": ["description"]},
            )
        case "SubscriptionService/DeleteSubscription":
            return spb.DeleteSubscriptionRequest(id=await world.subscription())
        case "SubscriptionService/ActivateSubscription":
            disabled = await world.subscription()
            await world.server.subscriptions.DisableSubscription(
                spb.DisableSubscriptionRequest(id=disabled), metadata=ADMIN
            )
            return spb.ActivateSubscriptionRequest(id=disabled)
        case "SubscriptionService/DisableSubscription":
            return spb.DisableSubscriptionRequest(id=await world.subscription())
        case "SubscriptionService/RotateSubscriptionSecret":
            return spb.RotateSubscriptionSecretRequest(id=await world.subscription())
        case "SubscriptionService/SendTestEvent":
            return spb.SendTestEventRequest(id=await world.subscription())
        case "FeedService/ListEvents":
            return fpb.ListEventsRequest(tenant_id="acme")
        case "FeedService/StreamEvents":
            return fpb.StreamEventsRequest(tenant_id="acme")
        case "DeliveryService/ListDeliveries":
            return dpb.ListDeliveriesRequest(tenant_id="acme")
        case "DeliveryService/GetDelivery":
            return dpb.GetDeliveryRequest(id=world.delivery_id)
        case "DeliveryService/RetryDelivery":
            return dpb.RetryDeliveryRequest(id=await world.finished_delivery())
        case "DeliveryService/RecoverFailedDeliveries":
            return dpb.RecoverFailedDeliveriesRequest(
                subscription_id=world.subscription_id, since=since
            )
        case "DeliveryService/ReplayEvents":
            return dpb.ReplayEventsRequest(subscription_id=world.subscription_id)
    raise AssertionError(f"no request for {rpc}")


def acme_only(response: Any) -> list[str]:
    """Tenants named anywhere in a response (it must be acme's alone)."""
    tenants = []
    for name in ("subscription", "event", "delivery"):
        if response.DESCRIPTOR.fields_by_name.get(name) and response.HasField(name):
            tenants.append(getattr(response, name).tenant_id)
    for name in ("subscriptions", "events", "deliveries"):
        if response.DESCRIPTOR.fields_by_name.get(name):
            tenants.extend(item.tenant_id for item in getattr(response, name))
    return [tenant for tenant in tenants if tenant != "acme"]


@pytest.fixture
async def world(make_server: ServerFactory, receiver: Receiver) -> World:
    server = await make_server(tokens=TOKENS, max_subscriptions=200, feed_heartbeat="100ms")
    world = World(server, receiver)
    world.subscription_id = await world.subscription()
    published = await server.events.PublishEvent(publish_request(), metadata=ADMIN)
    world.event_id, world.cursor = published.event.id, published.event.cursor
    listed = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id="acme", event_id=world.event_id), metadata=ADMIN
    )
    [delivery] = listed.deliveries
    world.delivery_id = delivery.id
    await wait_finished(server, delivery.id)
    # globex has data too, so that a leak would have something to show.
    await server.subscriptions.CreateSubscription(
        spb.CreateSubscriptionRequest(
            tenant_id="globex", url=receiver.url("/globex"), event_patterns=["*"]
        ),
        metadata=ADMIN,
    )
    theirs = await server.events.PublishEvent(publish_request(tenant_id="globex"), metadata=ADMIN)
    # On PostgreSQL an event joins the feed once every older transaction has ended.
    deadline = asyncio.get_running_loop().time() + 10
    for tenant, event_id in (("acme", world.event_id), ("globex", theirs.event.id)):
        while event_id not in [
            e.id
            for e in (
                await server.feed.ListEvents(
                    fpb.ListEventsRequest(tenant_id=tenant, page_size=1000), metadata=ADMIN
                )
            ).events
        ]:
            assert asyncio.get_running_loop().time() < deadline, "the feed did not catch up"
            await asyncio.sleep(0.02)
    return world


async def test_every_rpc_for_every_caller(world: World) -> None:
    assert {rpc.split("/")[0] for rpc in MATRIX} == {
        "EventService",
        "SubscriptionService",
        "FeedService",
        "DeliveryService",
    }
    wrong = []
    for rpc, expected in MATRIX.items():
        service, method = rpc.split("/")
        for (caller, auth), want in zip(CALLERS.items(), expected, strict=True):
            request = await build(world, rpc)
            code, outcome = await call_status(world.server, service, method, request, auth)
            if code is not want:
                details = outcome.details() if code is not OK else "OK"
                wrong.append(f"{rpc} as {caller}: {code.name} ({details}), expected {want.name}")
            elif code is OK and outcome is not None and (leaked := acme_only(outcome)):
                wrong.append(f"{rpc} as {caller} answered with tenants {leaked}")
    assert not wrong, "\n".join(wrong)


async def test_not_found_for_another_tenant_reads_like_a_missing_id(world: World) -> None:
    """Another tenant's id and an id that never existed get the same answer (no oracle)."""
    server = world.server
    pairs = [
        (
            server.subscriptions.GetSubscription,
            lambda id_: spb.GetSubscriptionRequest(id=id_),
            world.subscription_id,
        ),
        (
            server.deliveries.GetDelivery,
            lambda id_: dpb.GetDeliveryRequest(id=id_),
            world.delivery_id,
        ),
        (
            server.deliveries.RecoverFailedDeliveries,
            lambda id_: dpb.RecoverFailedDeliveriesRequest(subscription_id=id_, since={}),
            world.subscription_id,
        ),
        (
            server.deliveries.ReplayEvents,
            lambda id_: dpb.ReplayEventsRequest(subscription_id=id_),
            world.subscription_id,
        ),
    ]
    for rpc, make, existing in pairs:
        missing = existing[:-4] + "ZZZZ"
        answers = []
        for id_ in (existing, missing):
            try:
                await rpc(make(id_), metadata=GLOBEX)
            except grpc.aio.AioRpcError as error:
                answers.append((error.code(), error.details().replace(id_, "<id>")))
        assert len(answers) == 2
        assert answers[0] == answers[1]
        assert answers[0][0] is MISSING


async def test_feed_filters_and_cursors_never_reach_another_tenant(world: World) -> None:
    server = world.server
    # Filters naming acme's entity and types, from globex: only globex's own events.
    for query in (
        fpb.ListEventsRequest(entity_id="prod_1"),
        fpb.ListEventsRequest(event_patterns=["product.*"], page_size=1000),
        fpb.ListEventsRequest(event_patterns=["*"], entity_id="prod_1", page_size=1000),
    ):
        page = await server.feed.ListEvents(query, metadata=GLOBEX)
        assert page.events, "globex has a product event of its own"
        assert {event.tenant_id for event in page.events} == {"globex"}
        assert world.event_id not in [event.id for event in page.events]
    # acme's cursor is refused for globex, whoever asks, paged or streamed.
    refusals = [
        server.feed.ListEvents(fpb.ListEventsRequest(after_cursor=world.cursor), metadata=GLOBEX),
        server.feed.ListEvents(
            fpb.ListEventsRequest(tenant_id="globex", after_cursor=world.cursor), metadata=ADMIN
        ),
    ]
    for call in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await call_status(
        server,
        "FeedService",
        "StreamEvents",
        fpb.StreamEventsRequest(after_cursor=world.cursor),
        GLOBEX,
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    # acme's own token without a tenant sees acme's feed only.
    own = await server.feed.ListEvents(fpb.ListEventsRequest(page_size=1000), metadata=ACME)
    assert {event.tenant_id for event in own.events} == {"acme"}


async def test_deliveries_and_subscriptions_of_another_tenant_stay_invisible(world: World) -> None:
    server = world.server
    listed = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(subscription_id=world.subscription_id), metadata=GLOBEX
    )
    assert listed.deliveries == []
    listed = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(event_id=world.event_id), metadata=GLOBEX
    )
    assert listed.deliveries == []
    subscriptions = await server.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(page_size=100), metadata=GLOBEX
    )
    assert {s.tenant_id for s in subscriptions.subscriptions} == {"globex"}
    # A page token is not a way in either: it only continues globex's own list.
    first = await server.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(page_size=1), metadata=ACME
    )
    await world.subscription()
    acme_page = await server.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(page_size=1), metadata=ACME
    )
    assert acme_page.next_page_token
    continued = await server.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(page_size=100, page_token=acme_page.next_page_token),
        metadata=GLOBEX,
    )
    # globex's one subscription sits after acme's first in either order: it alone continues.
    assert [s.id for s in continued.subscriptions] == [s.id for s in subscriptions.subscriptions]
    assert [s.tenant_id for s in continued.subscriptions] == ["globex"]
    assert first.subscriptions[0].tenant_id == "acme"
    # globex's attempts on acme's delivery changed nothing.
    delivery = await server.deliveries.GetDelivery(
        dpb.GetDeliveryRequest(id=world.delivery_id), metadata=ACME
    )
    assert delivery.delivery.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert delivery.delivery.attempt_count == 1


PUBLISHER = CALLERS["publisher"]


async def test_only_the_service_publishes_its_own_event_types(world: World) -> None:
    """No caller, not even an admin, can forge `webhook.*` events into a tenant's feed; the
    service's own ones (SendTestEvent, auto-disable) still get there."""
    server = world.server
    forged = publish_request(
        "webhook.subscription_disabled",
        world.subscription_id,
        {"id": world.subscription_id, "subscription_id": world.subscription_id, "reason": "x"},
    )
    calls: list[tuple[str, Any]] = [
        ("PublishEvent", forged),
        ("PublishEvent", publish_request("webhook.test", "sub_x")),
        ("PublishEvents", epb.PublishEventsRequest(events=[publish_request(), forged])),
        ("RegisterEventType", epb.RegisterEventTypeRequest(type="webhook.test")),
        (
            "RegisterEventType",
            epb.RegisterEventTypeRequest(
                type="webhook.forged",
                fields=[epb.FieldRule(path="id", classification=epb.CLASSIFICATION_PUBLIC)],
            ),
        ),
    ]
    for method, request in calls:
        for auth in (PUBLISHER, ADMIN):
            code, outcome = await call_status(server, "EventService", method, request, auth)
            assert code is DENIED, (method, code)
            assert "webhook.*" in outcome.details()
    # The refused batch stored nothing, not even its valid event.
    feed = await server.feed.ListEvents(
        fpb.ListEventsRequest(tenant_id="acme", page_size=1000), metadata=ADMIN
    )
    assert [e.id for e in feed.events] == [world.event_id]
    # The service's own path still publishes them: a test event, and an auto-disable notice.
    world.receiver.on("/gone", statuses=[410])
    gone = await server.subscriptions.CreateSubscription(
        spb.CreateSubscriptionRequest(
            tenant_id="acme", url=world.receiver.url("/gone"), event_patterns=["customer.*"]
        ),
        metadata=ACME,
    )
    await server.subscriptions.SendTestEvent(
        spb.SendTestEventRequest(id=world.subscription_id), metadata=ACME
    )
    await server.events.PublishEvent(publish_request("customer.created", "cust_1"), metadata=ADMIN)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        feed = await server.feed.ListEvents(
            fpb.ListEventsRequest(tenant_id="acme", event_patterns=["webhook.*"]), metadata=ACME
        )
        if {e.type for e in feed.events} == {"webhook.test", "webhook.subscription_disabled"}:
            break
        assert asyncio.get_running_loop().time() < deadline, [e.type for e in feed.events]
        await asyncio.sleep(0.05)
    [notice] = [e for e in feed.events if e.type == "webhook.subscription_disabled"]
    assert notice.data["subscription_id"] == gone.subscription.id


async def test_making_a_field_less_private_needs_an_admin(world: World) -> None:
    server = world.server
    product = {"id": "prod_9", "sku": "A-9", "selling_price": "19.90", "cost_price": "7.10"}

    async def register(auth: tuple[tuple[str, str], ...], *rules: epb.FieldRule) -> Any:
        request = epb.RegisterEventTypeRequest(type="product.price_changed", fields=list(rules))
        return await call_status(server, "EventService", "RegisterEventType", request, auth)

    async def published_data() -> dict[str, Any]:
        response = await server.events.PublishEvent(
            publish_request("product.price_changed", "prod_9", product), metadata=PUBLISHER
        )
        return dict(response.event.data)

    public_cost = epb.FieldRule(path="cost_price", classification=epb.CLASSIFICATION_PUBLIC)
    # A publisher cannot reveal a confidential field, nor a restricted one as internal...
    code, refused = await register(PUBLISHER, public_cost)
    assert code is DENIED
    assert "cost_price" in refused.details() and "admin" in refused.details()
    assert "cost_price" not in await published_data()
    internal_salary = epb.FieldRule(
        path="assigned_rep.salary", classification=epb.CLASSIFICATION_INTERNAL
    )
    code, _ = await call_status(
        server,
        "EventService",
        "RegisterEventType",
        epb.RegisterEventTypeRequest(type="customer.assigned", fields=[internal_salary]),
        PUBLISHER,
    )
    assert code is DENIED
    # ...but may hide a public one, and classify new fields.
    code, _ = await register(
        PUBLISHER,
        epb.FieldRule(path="selling_price", classification=epb.CLASSIFICATION_CONFIDENTIAL),
        epb.FieldRule(path="warehouse", classification=epb.CLASSIFICATION_PUBLIC),
    )
    assert code is OK
    assert await published_data() == {"id": "prod_9", "sku": "A-9"}
    # An admin may make a field less private.
    code, registered = await register(ADMIN, public_cost)
    assert code is OK
    assert {r.path: r.classification for r in registered.event_type.fields}["cost_price"] == (
        epb.CLASSIFICATION_PUBLIC
    )
    assert (await published_data())["cost_price"] == "7.10"
