"""EventService end to end: registry, projection before storage, outbox, idempotency, batches."""

from __future__ import annotations

import asyncio
import json

import grpc
import sqlalchemy as sa

from tests.conftest import ServerFactory
from tests.support.factories import deliveries_of, publish, publish_request, subscribe
from tests.support.receiver import Receiver
from tests.support.rpc import invalid_field, rpc_error
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import events_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import feed_pb2
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.storage.urls import sync_url

PRODUCT = {
    "id": "prod_1",
    "sku": "A-1",
    "name": "Widget",
    "selling_price": "19.90",
    "cost_price": "7.10",
    "margin": "0.64",
    "notes": "supplier is late",
    "internal_notes": "do not share",
    "unknown_field": "never declared",
}


def stored_events(server: RunningServer) -> list[dict[str, object]]:
    engine = sa.create_engine(sync_url(server.app.settings.database.database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, data, previous FROM events ORDER BY seq"))
            return [
                {
                    "id": row.id,
                    "data": row.data if isinstance(row.data, dict) else json.loads(row.data),
                    "previous": row.previous
                    if not isinstance(row.previous, str)
                    else json.loads(row.previous),
                }
                for row in rows
            ]
    finally:
        engine.dispose()


async def test_publish_projects_before_storage(server: RunningServer) -> None:
    event = await publish(
        server,
        "product.price_changed",
        "prod_1",
        PRODUCT,
        previous={"selling_price": "17.50", "cost_price": "6.00"},
    )
    assert event.id.startswith("evt_")
    assert event.cursor
    assert dict(event.data) == {
        "id": "prod_1",
        "sku": "A-1",
        "name": "Widget",
        "selling_price": "19.90",
    }
    assert dict(event.previous) == {"selling_price": "17.50"}
    [row] = stored_events(server)
    assert row["data"] == dict(event.data)
    assert row["previous"] == {"selling_price": "17.50"}
    raw = json.dumps(row)
    for secret in ("7.10", "0.64", "supplier is late", "do not share", "never declared", "6.00"):
        assert secret not in raw


async def test_every_builtin_type_publishes(server: RunningServer) -> None:
    types = await server.events.ListEventTypes(pb.ListEventTypesRequest())
    names = {t.type for t in types.event_types}
    builtins = {
        "product.created",
        "product.price_changed",
        "product.activated",
        "product.deactivated",
        "product.discontinued",
        "customer.created",
        "customer.status_changed",
        "customer.assigned",
    }
    assert builtins <= names
    for event_type in sorted(builtins):
        event = await publish(server, event_type, "e1", {"id": "e1", "status": "x"})
        assert event.type == event_type
    customer = await server.events.ListEventTypes(pb.ListEventTypesRequest(entity="customer"))
    rules = {r.path: r.classification for r in customer.event_types[0].fields}
    assert rules["email"] == pb.CLASSIFICATION_CONFIDENTIAL
    assert rules["assigned_rep.salary"] == pb.CLASSIFICATION_RESTRICTED
    assert rules["assigned_rep_id"] == pb.CLASSIFICATION_INTERNAL


async def test_customer_projection_drops_contact_compensation_and_credentials(
    server: RunningServer,
) -> None:
    event = await publish(
        server,
        "customer.assigned",
        "cus_1",
        {
            "id": "cus_1",
            "name": "Ada",
            "status": "active",
            "assigned_rep_id": "rep_2",
            "previous_rep_id": "rep_1",
            "email": "ada@example.com",
            "phone": "+1 555",
            "address": {"city": "Paris", "street": "1 rue"},
            "lifetime_value": 1000,
            "assigned_rep": {"id": "rep_2", "salary": 90000, "commission_rate": 0.1},
            "api_key": "k",
            "password": "p",
            "stripe_secret": "s",
            "session_token": "t",
        },
    )
    assert dict(event.data) == {
        "id": "cus_1",
        "name": "Ada",
        "status": "active",
        "assigned_rep_id": "rep_2",
        "previous_rep_id": "rep_1",
    }


async def test_unregistered_type_and_bad_input(server: RunningServer) -> None:
    assert (
        await invalid_field(server.events.PublishEvent(publish_request("order.created"))) == "type"
    )
    assert (
        await invalid_field(server.events.PublishEvent(publish_request(entity_id="")))
        == "entity_id"
    )
    assert (
        await invalid_field(server.events.PublishEvent(publish_request(tenant_id="")))
        == "tenant_id"
    )


async def test_payload_limit(make_server: object) -> None:
    server = await make_server(max_payload_bytes=1024)  # type: ignore[operator]
    error = await rpc_error(
        server.events.PublishEvent(publish_request(data={"id": "p", "name": "x" * 2000})),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "1024" in (error.details() or "")


async def test_register_type_and_reclassify(server: RunningServer) -> None:
    registered = await server.events.RegisterEventType(
        pb.RegisterEventTypeRequest(
            type="invoice.paid",
            description="An invoice was paid",
            fields=[
                pb.FieldRule(path="id", classification=pb.CLASSIFICATION_PUBLIC),
                pb.FieldRule(path="amount", classification=pb.CLASSIFICATION_PUBLIC),
                pb.FieldRule(path="customer.email", classification=pb.CLASSIFICATION_CONFIDENTIAL),
                pb.FieldRule(path="customer.id", classification=pb.CLASSIFICATION_INTERNAL),
            ],
        )
    )
    assert registered.event_type.entity == "invoice"
    data = {"id": "inv_1", "amount": 10, "customer": {"id": "c1", "email": "x@y"}}
    first = await publish(server, "invoice.paid", "inv_1", data)
    assert first.data["customer"]["id"] == "c1"
    assert "email" not in first.data["customer"]
    # Idempotent upsert; reclassifying `amount` hides it from later reads of earlier events.
    for _ in range(2):
        await server.events.RegisterEventType(
            pb.RegisterEventTypeRequest(
                type="invoice.paid",
                fields=[pb.FieldRule(path="amount", classification=pb.CLASSIFICATION_CONFIDENTIAL)],
            )
        )
    page = await server.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id="acme"))
    assert [dict(e.data) for e in page.events] == [{"id": "inv_1", "customer": {"id": "c1"}}]
    second = await publish(server, "invoice.paid", "inv_2", data | {"id": "inv_2"})
    assert "amount" not in second.data

    assert (
        await invalid_field(
            server.events.RegisterEventType(pb.RegisterEventTypeRequest(type="Invoice.Paid"))
        )
        == "type"
    )
    assert (
        await invalid_field(
            server.events.RegisterEventType(
                pb.RegisterEventTypeRequest(type="invoice.sent", fields=[pb.FieldRule(path="id")])
            )
        )
        == "fields[0].classification"
    )


async def test_outbox_fans_out_to_matching_active_subscriptions(
    server: RunningServer, receiver: Receiver
) -> None:
    every = (await subscribe(server, receiver.url("/every"), ["*"])).subscription
    products = (await subscribe(server, receiver.url("/products"), ["product.*"])).subscription
    exact = (
        await subscribe(server, receiver.url("/exact"), ["product.price_changed"])
    ).subscription
    customers = (await subscribe(server, receiver.url("/customers"), ["customer.*"])).subscription
    disabled = (await subscribe(server, receiver.url("/disabled"), ["*"])).subscription
    other_tenant = (
        await subscribe(server, receiver.url("/globex"), ["*"], tenant_id="globex")
    ).subscription
    from webhook_grpc._gen.webhooks.v1 import deliveries_pb2, subscriptions_pb2

    await server.subscriptions.DisableSubscription(
        subscriptions_pb2.DisableSubscriptionRequest(id=disabled.id)
    )
    event = await publish(server, "product.price_changed", "prod_1", {"id": "prod_1"})
    listed = await server.deliveries.ListDeliveries(
        deliveries_pb2.ListDeliveriesRequest(tenant_id="acme", event_id=event.id)
    )
    assert {d.subscription_id for d in listed.deliveries} == {every.id, products.id, exact.id}
    # And none for the others, in either tenant.
    for unmatched in (customers, disabled, other_tenant):
        none = await server.deliveries.ListDeliveries(
            deliveries_pb2.ListDeliveriesRequest(
                tenant_id=unmatched.tenant_id, subscription_id=unmatched.id
            )
        )
        assert list(none.deliveries) == [], unmatched.url


async def test_batch_is_all_or_nothing(server: RunningServer) -> None:
    good = [publish_request(entity_id=f"p{i}") for i in range(3)]
    bad = [*good, publish_request("order.created")]
    assert await invalid_field(
        server.events.PublishEvents(pb.PublishEventsRequest(events=bad))
    ) == ("events[3].type")
    assert stored_events(server) == []
    response = await server.events.PublishEvents(pb.PublishEventsRequest(events=good))
    assert [e.entity_id for e in response.events] == ["p0", "p1", "p2"]
    assert len(stored_events(server)) == 3
    await rpc_error(
        server.events.PublishEvents(pb.PublishEventsRequest(events=[publish_request()] * 501)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert await invalid_field(server.events.PublishEvents(pb.PublishEventsRequest())) == "events"


async def test_idempotency_under_concurrent_retries(server: RunningServer) -> None:
    request = publish_request(idempotency_key="order-42")
    responses = await asyncio.gather(*(server.events.PublishEvent(request) for _ in range(12)))
    assert len({r.event.id for r in responses}) == 1
    assert sum(not r.duplicate for r in responses) == 1
    assert len(stored_events(server)) == 1
    # Same key, other tenant: a different event.
    other = await server.events.PublishEvent(
        publish_request(idempotency_key="order-42", tenant_id="globex")
    )
    assert other.event.id != responses[0].event.id
    # Same key inside one batch.
    batch = await server.events.PublishEvents(
        pb.PublishEventsRequest(events=[publish_request(idempotency_key="k2")] * 2)
    )
    assert batch.events[0].id == batch.events[1].id


async def test_an_event_whose_only_change_is_confidential_is_not_shared(
    server: RunningServer, receiver: Receiver
) -> None:
    from webhook_grpc._gen.webhooks.v1 import deliveries_pb2

    subscription = (await subscribe(server, receiver.url(), ["product.*"])).subscription
    batch = [
        publish_request("product.price_changed", "prod_1", PRODUCT, previous={"cost_price": "6"}),
        publish_request("product.price_changed", "prod_1", PRODUCT, previous={"name": "W"}),
        publish_request("product.created", "prod_2"),  # no previous at all
    ]
    hidden, visible, created = (
        await server.events.PublishEvents(pb.PublishEventsRequest(events=batch))
    ).events
    # The publisher gets its answer, projected, but the event has no place in the feed.
    assert (hidden.cursor, visible.cursor != "", created.cursor != "") == ("", True, True)
    assert dict(hidden.data) == dict(visible.data) and "cost_price" not in hidden.data
    shared = {visible.id, created.id}
    assert {row["id"] for row in stored_events(server)} == shared
    page = await server.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id="acme"))
    assert {e.id for e in page.events} == shared
    listed = await server.deliveries.ListDeliveries(
        deliveries_pb2.ListDeliveriesRequest(tenant_id="acme", subscription_id=subscription.id)
    )
    assert {d.event_id for d in listed.deliveries} == shared


async def test_a_previous_emptied_by_a_later_reclassification_is_left_out(
    server: RunningServer,
) -> None:
    await server.events.RegisterEventType(
        pb.RegisterEventTypeRequest(
            type="invoice.paid",
            fields=[
                pb.FieldRule(path="id", classification=pb.CLASSIFICATION_PUBLIC),
                pb.FieldRule(path="amount", classification=pb.CLASSIFICATION_PUBLIC),
            ],
        )
    )
    await publish(server, "invoice.paid", "inv_1", {"id": "inv_1"}, previous={"amount": 5})
    [before] = (await server.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id="acme"))).events
    assert dict(before.previous) == {"amount": 5}
    await server.events.RegisterEventType(
        pb.RegisterEventTypeRequest(
            type="invoice.paid",
            fields=[pb.FieldRule(path="amount", classification=pb.CLASSIFICATION_CONFIDENTIAL)],
        )
    )
    [after] = (await server.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id="acme"))).events
    assert not after.HasField("previous")


async def test_a_publish_honours_what_another_server_changed_just_before(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    """A server may keep the subscriptions and field rules it read for earlier publishes; a
    change committed through another server (process) applies to its very next publish."""
    publishing, other = await make_server(), await make_server()

    async def classify(name: int) -> None:
        await other.events.RegisterEventType(
            pb.RegisterEventTypeRequest(
                type="gadget.created",
                fields=[
                    pb.FieldRule(path="id", classification=pb.CLASSIFICATION_PUBLIC),
                    pb.FieldRule(path="name", classification=name),  # type: ignore[arg-type]
                ],
            )
        )

    async def delivered_to(event: pb.Event) -> set[str]:
        return {d.subscription_id for d in await deliveries_of(publishing, event.id)}

    await classify(pb.CLASSIFICATION_PUBLIC)
    first = (await subscribe(other, receiver.url("/a"), ["gadget.*"])).subscription
    gadget = {"id": "g1", "name": "Widget"}
    for _ in range(2):  # the second publish may use what the first read
        event = await publish(publishing, "gadget.created", "g1", gadget)
        assert await delivered_to(event) == {first.id}
        assert dict(event.data) == gadget

    second = (await subscribe(other, receiver.url("/b"), ["gadget.*"])).subscription
    event = await publish(publishing, "gadget.created", "g1", gadget)
    assert await delivered_to(event) == {first.id, second.id}

    await other.subscriptions.DisableSubscription(
        spb.DisableSubscriptionRequest(tenant_id="acme", id=first.id)
    )
    event = await publish(publishing, "gadget.created", "g1", gadget)
    assert await delivered_to(event) == {second.id}

    await other.subscriptions.UpdateSubscription(
        spb.UpdateSubscriptionRequest(
            subscription=spb.Subscription(id=second.id, tenant_id="acme", event_patterns=["x.*"]),
            update_mask={"paths": ["event_patterns"]},
        )
    )
    event = await publish(publishing, "gadget.created", "g1", gadget)
    assert await delivered_to(event) == set()

    await classify(pb.CLASSIFICATION_CONFIDENTIAL)
    event = await publish(publishing, "gadget.created", "g1", gadget)
    assert dict(event.data) == {"id": "g1"}
    assert stored_events(publishing)[-1]["data"] == {"id": "g1"}
