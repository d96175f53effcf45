"""Small builders for requests the tests send over and over."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import events_pb2, subscriptions_pb2


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def publish_request(
    type: str = "product.created",
    entity_id: str = "prod_1",
    data: dict[str, Any] | None = None,
    *,
    tenant_id: str = "acme",
    previous: dict[str, Any] | None = None,
    idempotency_key: str = "",
) -> events_pb2.PublishEventRequest:
    request = events_pb2.PublishEventRequest(
        tenant_id=tenant_id,
        type=type,
        entity_id=entity_id,
        data=struct(data if data is not None else {"id": entity_id, "name": "Widget"}),
        idempotency_key=idempotency_key,
    )
    if previous is not None:
        request.previous.CopyFrom(struct(previous))
    return request


async def publish(server: RunningServer, *args: Any, **kwargs: Any) -> events_pb2.Event:
    response = await server.events.PublishEvent(publish_request(*args, **kwargs))
    return response.event


async def publish_events(
    server: RunningServer, count: int, tenant_id: str = "acme"
) -> list[events_pb2.Event]:
    events: list[events_pb2.Event] = []
    for start in range(0, count, 500):
        response = await server.events.PublishEvents(
            events_pb2.PublishEventsRequest(
                events=[
                    publish_request(entity_id=f"p{i}", tenant_id=tenant_id)
                    for i in range(start, min(count, start + 500))
                ]
            )
        )
        events += response.events
    return events


async def subscribe(
    server: RunningServer,
    url: str,
    patterns: list[str] | None = None,
    *,
    tenant_id: str = "acme",
    **fields: Any,
) -> subscriptions_pb2.CreateSubscriptionResponse:
    return await server.subscriptions.CreateSubscription(
        subscriptions_pb2.CreateSubscriptionRequest(
            tenant_id=tenant_id, url=url, event_patterns=patterns or ["*"], **fields
        )
    )


async def wait_delivery(
    server: RunningServer,
    delivery_id: str,
    done: Any = None,
    timeout: float = 10.0,
) -> Any:
    """Poll GetDelivery until `done(delivery)` (default: no longer pending); returns it."""
    import asyncio

    from webhook_grpc._gen.webhooks.v1 import deliveries_pb2

    def finished(delivery: Any) -> bool:
        return bool(delivery.status != deliveries_pb2.DELIVERY_STATUS_PENDING)

    check = done or finished
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await server.deliveries.GetDelivery(
            deliveries_pb2.GetDeliveryRequest(id=delivery_id)
        )
        if check(response.delivery):
            return response.delivery
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"delivery did not finish in {timeout}s: {response.delivery}")
        await asyncio.sleep(0.02)


async def deliveries_of(server: RunningServer, event_id: str, tenant_id: str = "acme") -> list[Any]:
    from webhook_grpc._gen.webhooks.v1 import deliveries_pb2

    response = await server.deliveries.ListDeliveries(
        deliveries_pb2.ListDeliveriesRequest(tenant_id=tenant_id, event_id=event_id)
    )
    return list(response.deliveries)


async def subscription_of(
    server: RunningServer, subscription_id: str
) -> subscriptions_pb2.Subscription:
    response = await server.subscriptions.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=subscription_id)
    )
    return response.subscription


async def publish_in_feed_order(server: RunningServer, count: int) -> list[str]:
    """`count` events published in batches of 500 (one transaction each), so their ids come back
    in feed order."""
    ids: list[str] = []
    for start in range(0, count, 500):
        response = await server.events.PublishEvents(
            events_pb2.PublishEventsRequest(
                events=[
                    publish_request(entity_id=f"p{i}")
                    for i in range(start, min(count, start + 500))
                ]
            )
        )
        ids += [e.id for e in response.events]
    return ids
