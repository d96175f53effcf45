"""A subscription's filter and custom headers: stored, changed, and handed to publishing (the
filter) and to the dispatcher (the headers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from webhook_grpc.domain.models import DeliveryStatus, SubscriptionChanges
from webhook_grpc.storage.ports import LeaseRequest, Storage

from .conftest import NOW, SECRET, later, new_delivery, new_event, new_subscription, publish

FILTER = 'entity_id == "p1"'


async def test_filter_and_headers_are_stored_and_changed(storage: Storage) -> None:
    made = replace(new_subscription(), filter=FILTER, headers={"X-Tenant": "a"})
    plain = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(made, SECRET)
        await unit.subscriptions.insert(plain, SECRET)
    async with storage.read() as unit:
        found = await unit.subscriptions.get(made.id, "acme")
        unset = await unit.subscriptions.get(plain.id, "acme")
    assert found is not None and unset is not None
    assert (found.filter, found.headers) == (FILTER, {"X-Tenant": "a"})
    assert (unset.filter, unset.headers) == ("", {})
    async with storage.transaction() as unit:
        await unit.subscriptions.change(
            made.id, SubscriptionChanges(filter="", headers={"X-Other": "b"}), later(1)
        )
        changed = await unit.subscriptions.get(made.id, None)
    assert changed is not None
    assert (changed.filter, changed.headers) == ("", {"X-Other": "b"})


async def test_publishing_sees_the_filter_and_leasing_the_headers(storage: Storage) -> None:
    made = replace(new_subscription(), filter=FILTER, headers={"X-Tenant": "a"})
    async with storage.transaction() as unit:
        await unit.registry.upsert_type("product.created", "product", "", NOW)
        await unit.subscriptions.insert(made, SECRET)
    async with storage.autocommit() as unit:
        context = await unit.events.publish_context({"product.created"}, {"acme"})
    [recipient] = context.recipients["acme"]
    assert recipient.filter == FILTER
    event = new_event()
    await publish(storage, [event], [new_delivery(event, made.id)])
    request = LeaseRequest(NOW, NOW + timedelta(seconds=30), "lease_1", 10, 10, {})
    async with storage.autocommit() as unit:
        work = await unit.deliveries.lease_work(request)
    assert work.targets[made.id].headers == {"X-Tenant": "a"}


async def test_events_without_a_delivery_to_a_subscription_in_a_window(storage: Storage) -> None:
    subscription = new_subscription()
    other = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, SECRET)
        await unit.subscriptions.insert(other, SECRET)
    before, *inside, at_until = (new_event(published_at=later(i)) for i in range(6))
    elsewhere = new_event("globex", published_at=later(2))
    delivered = inside[0]
    await publish(
        storage,
        [before, *inside, at_until, elsewhere],
        [new_delivery(delivered, subscription.id), new_delivery(inside[1], other.id)],
    )

    async def page(after: tuple[datetime, int] | None, limit: int = 10) -> list[str]:
        async with storage.read() as unit:
            found = await unit.events.not_delivered_to(
                "acme", subscription.id, later(1), later(5), after=after, limit=limit
            )
        return [item.event.id for item in found]

    assert await page(None) == [e["id"] for e in inside[1:]]
    async with storage.read() as unit:
        [first] = await unit.events.not_delivered_to(
            "acme", subscription.id, later(1), later(5), after=None, limit=1
        )
    assert await page((first.event.published_at, first.position.seq)) == [
        e["id"] for e in inside[2:]
    ]
    async with storage.transaction() as unit:
        await unit.deliveries.insert([new_delivery(e, subscription.id) for e in inside[1:]])
    assert await page(None) == []


async def test_an_event_whose_deliveries_all_failed_is_not_delivered(storage: Storage) -> None:
    """Replay's notion of delivered: a delivery that succeeded, or one still pending, counts;
    one that failed or was cancelled does not."""
    subscription = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, SECRET)
    events = {status: new_event(published_at=later(i)) for i, status in enumerate(DeliveryStatus)}
    # The failed event was also cancelled once: no delivery of it reached the endpoint.
    once_more = new_delivery(events[DeliveryStatus.FAILED], subscription.id)
    await publish(
        storage,
        list(events.values()),
        [
            {**new_delivery(event, subscription.id), "status": status.value}
            for status, event in events.items()
        ]
        + [{**once_more, "status": DeliveryStatus.CANCELLED.value}],
    )
    async with storage.read() as unit:
        found = await unit.events.not_delivered_to(
            "acme", subscription.id, NOW, None, after=None, limit=10
        )
    assert [item.event.id for item in found] == [
        events[DeliveryStatus.FAILED]["id"],
        events[DeliveryStatus.CANCELLED]["id"],
    ]
