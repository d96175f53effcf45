"""Events and their deliveries: written together or not at all, idempotent repeats skipped,
and what a publish reads first."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError

from webhook_grpc.domain.models import DeliveryStatus, DisabledReason
from webhook_grpc.domain.projection import Classification
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, add_subscription, new_delivery, new_event, publish


async def test_publish_writes_events_with_their_deliveries(storage: Storage) -> None:
    first, second = new_event(entity_id="p1"), new_event(entity_id="p2")
    deliveries = [new_delivery(first, "sub_a"), new_delivery(first, "sub_b")]
    positions = await publish(storage, [first, second], deliveries)
    assert set(positions) == {first["id"], second["id"]}
    assert positions[first["id"]] < positions[second["id"]]
    async with storage.read() as unit:
        stored = await unit.events.by_ids([first["id"], second["id"]])
        listed = await unit.deliveries.list_page("acme", limit=10)
    assert stored[first["id"]].event.data == {"id": "p1"}
    assert stored[first["id"]].event.published_at == NOW
    assert stored[first["id"]].position == positions[first["id"]]
    assert {d.id for d in listed} == {d["id"] for d in deliveries}
    assert {d.status for d in listed} == {DeliveryStatus.PENDING}


async def test_publish_is_atomic(storage: Storage) -> None:
    event = new_event()
    clash = new_delivery(event, "sub_a")
    with pytest.raises((IntegrityError, psycopg.IntegrityError)):
        await publish(storage, [event], [clash, clash])  # the same delivery id twice
    async with storage.read() as unit:
        assert await unit.events.by_ids([event["id"]]) == {}
        assert await unit.deliveries.list_page("acme", limit=10) == []


async def test_an_idempotent_repeat_is_skipped_with_its_deliveries(storage: Storage) -> None:
    original = new_event(idempotency_key="k1")
    await publish(storage, [original], [new_delivery(original, "sub_a")])
    repeat = new_event(idempotency_key="k1")
    assert await publish(storage, [repeat], [new_delivery(repeat, "sub_a")]) == {}
    async with storage.read() as unit:
        found = await unit.events.by_idempotency_keys("acme", ["k1", "unknown"])
        listed = await unit.deliveries.list_page("acme", limit=10)
    assert list(found) == ["k1"] and found["k1"].event.id == original["id"]
    assert [d.event_id for d in listed] == [original["id"]]
    # The key is per tenant.
    elsewhere = new_event("globex", idempotency_key="k1")
    assert list(await publish(storage, [elsewhere])) == [elsewhere["id"]]


async def test_publish_context_names_types_schemas_and_active_recipients(
    storage: Storage,
) -> None:
    async with storage.transaction() as unit:
        await unit.registry.upsert_type("product.created", "product", "", NOW)
        await unit.registry.upsert_type("order.created", "order", "", NOW)
        await unit.registry.upsert_fields("product", {"cost": Classification.CONFIDENTIAL}, NOW)
    active = await add_subscription(storage)
    paused = await add_subscription(storage)
    async with storage.transaction() as unit:
        await unit.subscriptions.disable_if_active(paused.id, DisabledReason.MANUAL, NOW)
    await add_subscription(storage, "globex")
    async with storage.autocommit() as unit:
        context = await unit.events.publish_context(
            {"product.created", "order.created", "nope.created"}, {"acme", "initech"}
        )
    assert context.known_types == {"product.created", "order.created"}
    assert context.schemas == {"product": {"cost": Classification.CONFIDENTIAL}, "order": {}}
    assert set(context.recipients) == {"acme", "initech"}
    [recipient] = context.recipients["acme"]
    assert (recipient.id, recipient.event_patterns) == (active.id, ("product.*",))
    assert context.recipients["initech"] == []
