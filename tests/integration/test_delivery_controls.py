"""Subscription filters, custom headers and the rate limit's bound (SPEC §11) end to end: a
real server and receiver, both backends."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from tests.support.factories import deliveries_of, publish, subscribe
from tests.support.receiver import Receiver
from tests.support.rpc import invalid_field, rpc_error
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.domain.rate_limit import MAX_RATE_LIMIT_PER_SECOND

EXPENSIVE = 'type == "product.price_changed" && double(data.selling_price) > 100.0'


def product(price: str, cost: str = "1.00") -> dict[str, str]:
    return {"id": "prod_1", "sku": "A-1", "selling_price": price, "cost_price": cost}


async def test_only_matching_events_create_deliveries(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), ["product.*"], filter=EXPENSIVE)
    assert created.subscription.filter == EXPENSIVE
    cheap = await publish(server, "product.price_changed", "prod_1", product("19.90"))
    other_type = await publish(server, "product.created", "prod_1", product("500.00"))
    expensive = await publish(server, "product.price_changed", "prod_1", product("150.00"))
    # Deliveries are written with their event, so the ones that exist now are all there are.
    assert await deliveries_of(server, cheap.id) == []
    assert await deliveries_of(server, other_type.id) == []
    assert len(await deliveries_of(server, expensive.id)) == 1
    await receiver.wait_count(1)
    assert [r.headers["webhook-id"] for r in receiver.received] == [expensive.id]


async def test_a_filter_on_a_confidential_field_never_matches(
    server: RunningServer, receiver: Receiver
) -> None:
    await subscribe(server, receiver.url(), ["product.*"], filter="has(data.cost_price)")
    await subscribe(
        server, receiver.url("/cost"), ["product.*"], filter="double(data.cost_price) > 0.0"
    )
    event = await publish(server, "product.price_changed", "prod_1", product("150.00", "99.00"))
    assert await deliveries_of(server, event.id) == []


async def test_a_bad_filter_is_invalid_argument_naming_its_position(
    server: RunningServer, receiver: Receiver
) -> None:
    error = await rpc_error(
        subscribe(server, receiver.url(), filter='type == "a" &&'),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "line 1, column" in (error.details() or "")
    assert await invalid_field(subscribe(server, receiver.url(), filter="shout(type)")) == (
        "filter"
    )
    created = await subscribe(server, receiver.url())
    update = spb.UpdateSubscriptionRequest(
        subscription=spb.Subscription(id=created.subscription.id, filter="type == 1"),
        update_mask=field_mask_pb2.FieldMask(paths=["filter"]),
    )
    assert await invalid_field(server.subscriptions.UpdateSubscription(update)) == (
        "subscription.filter"
    )


async def test_an_updated_filter_applies_to_the_next_publish(
    server: RunningServer, receiver: Receiver
) -> None:
    created = await subscribe(server, receiver.url(), ["product.*"], filter=EXPENSIVE)
    before = await publish(server, "product.price_changed", "prod_1", product("19.90"))
    assert await deliveries_of(server, before.id) == []

    def set_filter(text: str) -> spb.UpdateSubscriptionRequest:
        return spb.UpdateSubscriptionRequest(
            subscription=spb.Subscription(id=created.subscription.id, filter=text),
            update_mask=field_mask_pb2.FieldMask(paths=["filter"]),
        )

    updated = await server.subscriptions.UpdateSubscription(set_filter('entity_id == "prod_1"'))
    assert updated.subscription.filter == 'entity_id == "prod_1"'
    after = await publish(server, "product.price_changed", "prod_1", product("19.90"))
    assert len(await deliveries_of(server, after.id)) == 1

    await server.subscriptions.UpdateSubscription(set_filter(""))  # removed: every event
    unfiltered = await publish(server, "product.price_changed", "prod_2", product("1.00"))
    assert len(await deliveries_of(server, unfiltered.id)) == 1
    await receiver.wait_count(2)


async def test_custom_headers_reach_the_receiver_and_signatures_win(
    server: RunningServer, receiver: Receiver
) -> None:
    headers = {"X-Tenant": "a", "Authorization": "Bearer endpoint-token"}
    created = await subscribe(server, receiver.url(), headers=headers)
    assert dict(created.subscription.headers) == headers
    event = await publish(server)
    await receiver.wait_count(1)
    [request] = receiver.received
    assert request.headers["X-Tenant"] == "a"
    assert request.headers["Authorization"] == "Bearer endpoint-token"
    assert request.headers["webhook-id"] == event.id

    update = spb.UpdateSubscriptionRequest(
        subscription=spb.Subscription(id=created.subscription.id, headers={"X-Tenant": "b"}),
        update_mask=field_mask_pb2.FieldMask(paths=["headers"]),
    )
    updated = await server.subscriptions.UpdateSubscription(update)
    assert dict(updated.subscription.headers) == {"X-Tenant": "b"}
    await publish(server)
    await receiver.wait_count(2)
    assert receiver.received[1].headers["X-Tenant"] == "b"
    assert "Authorization" not in receiver.received[1].headers


async def test_reserved_headers_are_refused_naming_the_header(
    server: RunningServer, receiver: Receiver
) -> None:
    for name in ("webhook-signature", "Content-Type", "Host", "Connection", "X-Webhook-Event"):
        field = await invalid_field(subscribe(server, receiver.url(), headers={name: "x"}))
        assert field == f'headers["{name}"]'
    created = await subscribe(server, receiver.url())
    update = spb.UpdateSubscriptionRequest(
        subscription=spb.Subscription(id=created.subscription.id, headers={"Content-Length": "1"}),
        update_mask=field_mask_pb2.FieldMask(paths=["headers"]),
    )
    assert await invalid_field(server.subscriptions.UpdateSubscription(update)) == (
        'subscription.headers["Content-Length"]'
    )
    too_many = {f"X-H{i}": "v" for i in range(11)}
    assert await invalid_field(subscribe(server, receiver.url(), headers=too_many)) == "headers"


async def test_a_rate_limit_above_the_bound_is_refused_at_create_and_update(
    server: RunningServer, receiver: Receiver
) -> None:
    highest = await subscribe(
        server, receiver.url(), rate_limit_per_second=MAX_RATE_LIMIT_PER_SECOND
    )
    assert highest.subscription.rate_limit_per_second == MAX_RATE_LIMIT_PER_SECOND
    for too_high in (MAX_RATE_LIMIT_PER_SECOND + 1, 2**32 - 1):  # the latter overflows int4
        field = await invalid_field(
            subscribe(server, receiver.url(), rate_limit_per_second=too_high)
        )
        assert field == "rate_limit_per_second"
        update = spb.UpdateSubscriptionRequest(
            subscription=spb.Subscription(
                id=highest.subscription.id, rate_limit_per_second=too_high
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["rate_limit_per_second"]),
        )
        assert await invalid_field(server.subscriptions.UpdateSubscription(update)) == (
            "subscription.rate_limit_per_second"
        )
    stored = await server.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=highest.subscription.id)
    )
    assert stored.subscription.rate_limit_per_second == MAX_RATE_LIMIT_PER_SECOND
