"""Purging events past retention, with their deliveries, and each tenant's watermark."""

from __future__ import annotations

import asyncio

import pytest

from webhook_grpc.storage import migrate
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, later, new_delivery, new_event, publish


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
