"""A subscription's filter and custom headers: stored, changed, and handed to publishing (the
filter) and to the dispatcher (the headers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from webhook_grpc.domain.models import SubscriptionChanges
from webhook_grpc.storage.ports import LeaseRequest, Storage

from .conftest import NOW, later, new_delivery, new_event, new_subscription, publish

FILTER = 'entity_id == "p1"'


async def test_filter_and_headers_are_stored_and_changed(storage: Storage) -> None:
    made = replace(new_subscription(), filter=FILTER, headers={"X-Tenant": "a"})
    plain = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(made)
        await unit.subscriptions.insert(plain)
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
        await unit.subscriptions.insert(made)
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
