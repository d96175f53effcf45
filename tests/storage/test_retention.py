"""Purging events past retention, with their deliveries, and each tenant's watermark."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import count

import pytest

from webhook_grpc.config import RetentionSettings
from webhook_grpc.domain.models import DeliveryStatus
from webhook_grpc.services.retention import RetentionService
from webhook_grpc.storage import migrate
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, add_subscription, later, new_delivery, new_event, publish
from .test_attempts import attempt
from .test_leasing import lease


async def test_purge_deletes_old_events_in_batches_and_raises_the_watermark(
    storage: Storage,
) -> None:
    old = [new_event(entity_id=f"o{i}", published_at=later(-100 + i)) for i in range(3)]
    old_globex = new_event("globex", published_at=later(-50))
    recent = new_event(entity_id="r1", published_at=later(10))
    positions = await publish(storage, [*old, old_globex, recent], [new_delivery(old[0], "sub_a")])
    async with storage.transaction() as unit:
        assert await unit.retention.try_lock()
        assert await unit.retention.purge_batch(NOW, limit=2) == 2
        assert await unit.retention.purged_through("acme") == positions[old[1]["id"]]
        assert await unit.retention.purge_batch(NOW, limit=10) == 2
        assert await unit.retention.purge_batch(NOW, limit=10) == 0
    async with storage.read() as unit:
        assert await unit.retention.purged_through("acme") == positions[old[2]["id"]]
        assert await unit.retention.purged_through("globex") == positions[old_globex["id"]]
        assert await unit.retention.purged_through("initech") is None
        assert await unit.retention.oldest_published_at("acme") == later(10)
        assert await unit.retention.oldest_published_at("globex") is None
        assert await unit.deliveries.list_page("acme", limit=10) == []
        assert list(await unit.events.by_ids([e["id"] for e in old] + [recent["id"]])) == [
            recent["id"]
        ]


@pytest.mark.postgres
async def test_one_purger_at_a_time(postgres_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, postgres_url)
    storage = open_storage(postgres_url)
    try:
        async with storage.transaction() as first:
            assert await first.retention.try_lock()
            async with storage.transaction() as second:
                assert not await second.retention.try_lock()
        async with storage.transaction() as third:
            assert await third.retention.try_lock()
    finally:
        await storage.dispose()


async def test_purge_takes_attempts_with_deliveries_and_leaves_events_being_attempted(
    storage: Storage,
) -> None:
    subscription = await add_subscription(storage)
    old = [new_event(entity_id=f"o{i}", published_at=later(-100 + i)) for i in range(3)]
    positions = await publish(storage, old, [new_delivery(e, subscription.id) for e in old])
    leased = (await lease(storage)).deliveries
    [in_flight] = [d for d in leased if d.event_id == old[1]["id"]]
    done = [d for d in leased if d is not in_flight]
    async with storage.transaction() as unit:
        records = [attempt(d, DeliveryStatus.SUCCEEDED, succeeded=True) for d in done]
        assert await unit.deliveries.record_attempts(records) == 0
    async with storage.transaction() as unit:
        assert await unit.retention.try_lock()
        assert await unit.retention.purge_batch(NOW, limit=10) == 2
        assert await unit.retention.purged_through("acme") == positions[old[2]["id"]]
    async with storage.read() as unit:
        assert list(await unit.events.by_ids([e["id"] for e in old])) == [old[1]["id"]]
        listed = await unit.deliveries.list_page("acme", limit=10)
        assert [d.id for d in listed] == [in_flight.id]
        # The purged deliveries' attempts went with them.
        assert await unit.deliveries.failure_figures(subscription.id, later(-1000)) == (0, 0)

    # Once its attempt is recorded, the next run takes it; the watermark stays the highest.
    async with storage.transaction() as unit:
        assert (
            await unit.deliveries.record_attempts([attempt(in_flight, DeliveryStatus.FAILED)]) == 0
        )
    async with storage.transaction() as unit:
        assert await unit.retention.purge_batch(NOW, limit=10) == 1
        assert await unit.retention.purged_through("acme") == positions[old[2]["id"]]
    async with storage.read() as unit:
        assert list(await unit.events.by_ids([e["id"] for e in old])) == []
        assert await unit.deliveries.failure_figures(subscription.id, later(-1000)) == (0, 0)


async def test_the_purge_sizes_batches_by_time_and_takes_every_old_event(storage: Storage) -> None:
    old = [new_event(entity_id=f"o{i}", published_at=later(-2000 + i)) for i in range(1250)]
    recent = new_event(entity_id="recent", published_at=later(10))
    positions = await publish(storage, [*old, recent], [])
    ticks = count()  # every batch seems to take 1 s: ten times the budget
    service = RetentionService(
        storage,
        RetentionSettings(retention_days=1, retention_interval=timedelta(hours=1)),
        clock=lambda: NOW + timedelta(days=1),
        batch_seconds=0.1,
        timer=lambda: float(next(ticks)),
    )
    assert await service.purge() == 1250
    # Batches of 1000, 100, 100 and the last 50: the timer read before each, after all but
    # the last (a short batch ends the purge).
    assert next(ticks) == 4 + 3
    async with storage.read() as unit:
        assert await unit.retention.purged_through("acme") == positions[old[-1]["id"]]
        assert list(await unit.events.by_ids([old[0]["id"], old[-1]["id"], recent["id"]])) == [
            recent["id"]
        ]
