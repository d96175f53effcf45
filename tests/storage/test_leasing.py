"""Leasing due deliveries: what is due, how much per subscription, never a row another lease
holds until that lease expires, and the work attempting them takes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import psycopg
import pytest

from webhook_grpc.domain.models import DisabledReason
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.trace_context import TraceContext
from webhook_grpc.storage import migrate
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import LeasedWork, LeaseRequest, Storage

from .conftest import NOW, SECRET, add_subscription, later, new_delivery, new_event, publish

LEASE = 30.0


async def lease(
    storage: Storage,
    now: datetime = NOW,
    *,
    token: str = "lease_1",
    limit: int = 10,
    per_subscription: int = 10,
    room: dict[str, int] | None = None,
) -> LeasedWork:
    request = LeaseRequest(
        now, now + timedelta(seconds=LEASE), token, limit, per_subscription, room or {}
    )
    async with storage.autocommit() as unit:
        return await unit.deliveries.lease_work(request)


async def test_lease_brings_due_deliveries_with_their_events_and_targets(
    storage: Storage,
) -> None:
    subscription = await add_subscription(storage)
    event = new_event()
    due, not_yet = (
        new_delivery(event, subscription.id),
        new_delivery(event, subscription.id, later(60)),
    )
    await publish(storage, [event], [due, not_yet])
    work = await lease(storage)
    [leased] = work.deliveries
    assert (leased.id, leased.event_id, leased.attempt_count, leased.lease_token) == (
        due["id"],
        event["id"],
        0,
        "lease_1",
    )
    assert work.events[event["id"]].event.data == {"id": "p1"}
    assert work.events[event["id"]].event.published_at == NOW
    target = work.targets[subscription.id]
    assert (target.url, target.active, target.keys.secret) == (
        subscription.url,
        True,
        SECRET,
    )


async def test_lease_brings_the_field_rules_of_its_events_entities(storage: Storage) -> None:
    """PostgreSQL reads them in the lease statement, on the first row of each entity: whichever
    delivery that row is (here several share an event), every entity gets its rules."""
    first, second = await add_subscription(storage), await add_subscription(storage)
    rules = {"id": Classification.PUBLIC, "price": Classification.CONFIDENTIAL}
    async with storage.transaction() as unit:
        await unit.registry.upsert_type("product.created", "product", "", NOW)
        await unit.registry.upsert_fields("product", rules, NOW)
    events = [new_event(), new_event(entity_id="p2"), new_event(type="order.created")]
    rows = [new_delivery(e, s.id, later(-i)) for i, e in enumerate(events) for s in (first, second)]
    await publish(storage, events, rows)
    work = await lease(storage)
    assert len(work.deliveries) == 6
    if work.schemas is not None:  # else the dispatcher reads them from the registry
        assert work.schemas == {"product": rules, "order": {}}
    async with storage.read() as unit:
        assert await unit.registry.entity_fields({"product", "order"}) == {
            "product": rules,
            "order": {},
        }


async def test_a_leased_row_is_not_leased_again_until_its_lease_expires(
    storage: Storage,
) -> None:
    subscription = await add_subscription(storage)
    event = new_event()
    await publish(storage, [event], [new_delivery(event, subscription.id)])
    assert len((await lease(storage)).deliveries) == 1
    assert (await lease(storage, later(LEASE - 1), token="lease_2")).deliveries == []
    async with storage.read() as unit:
        assert await unit.deliveries.next_due_after(NOW) == later(LEASE)
    [again] = (await lease(storage, later(LEASE), token="lease_3")).deliveries
    assert again.lease_token == "lease_3"


async def test_lease_caps_each_subscription_and_skips_full_ones(storage: Storage) -> None:
    busy, other, full = [await add_subscription(storage) for _ in range(3)]
    event = new_event()
    rows = [new_delivery(event, busy.id, later(-i)) for i in range(5)]
    rows += [new_delivery(event, other.id), new_delivery(event, full.id)]
    await publish(storage, [event], rows)
    work = await lease(storage, per_subscription=2, room={other.id: 1, full.id: 0})
    by_subscription = [d.subscription_id for d in work.deliveries]
    assert sorted(by_subscription) == sorted([busy.id, busy.id, other.id])
    # The oldest due rows of a subscription go first.
    assert {d.id for d in work.deliveries if d.subscription_id == busy.id} == {
        rows[4]["id"],
        rows[3]["id"],
    }
    assert len((await lease(storage, limit=1, token="lease_2")).deliveries) == 1


async def test_lease_reports_purged_events_and_deleted_subscriptions_as_missing(
    storage: Storage,
) -> None:
    kept = await add_subscription(storage)
    event = new_event()
    await publish(storage, [event], [new_delivery(event, kept.id), new_delivery(event, "gone")])
    async with storage.transaction() as unit:
        await unit.subscriptions.disable_if_active(kept.id, DisabledReason.MANUAL, NOW)
    work = await lease(storage)
    assert len(work.deliveries) == 2
    assert set(work.targets) == {kept.id} and not work.targets[kept.id].active


@pytest.mark.postgres
async def test_lease_skips_rows_another_transaction_has_locked(postgres_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, postgres_url)
    storage = open_storage(postgres_url)
    try:
        subscription = await add_subscription(storage)
        event = new_event()
        locked, free = new_delivery(event, subscription.id), new_delivery(event, subscription.id)
        await publish(storage, [event], [locked, free])
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            # Another dispatcher, in the middle of leasing this row, holds its lock.
            await other.execute("SELECT 1 FROM deliveries WHERE id = %s FOR UPDATE", [locked["id"]])
            [leased] = (await lease(storage)).deliveries
        assert leased.id == free["id"]
    finally:
        await storage.dispose()


async def test_an_event_keeps_its_publishers_trace_context_to_the_lease(storage: Storage) -> None:
    traced = TraceContext.parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=a,other=b"
    )
    assert traced is not None
    subscription = await add_subscription(storage)
    with_context = new_event(entity_id="p1", trace_context=traced.text())
    without = new_event(entity_id="p2")
    await publish(
        storage,
        [with_context, without],
        [new_delivery(with_context, subscription.id), new_delivery(without, subscription.id)],
    )
    work = await lease(storage)
    assert work.events[with_context["id"]].event.trace_context == traced
    assert work.events[without["id"]].event.trace_context is None
    async with storage.read() as unit:
        read = await unit.events.by_ids([with_context["id"]])
    assert read[with_context["id"]].event.trace_context == traced
