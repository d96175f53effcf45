"""SQLite keeps what publishing reads (types, field rules, active subscriptions) in memory: every
change to those rows is seen by the next publish, and a read that overlaps a change being
written is not kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

from webhook_grpc.domain.models import DisabledReason, SubscriptionChanges
from webhook_grpc.domain.projection import Classification
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import PublishContext, Storage
from webhook_grpc.storage.sqlite.storage import SqliteStorage

from .conftest import NOW, add_subscription

TYPES = {"product.created"}


async def read_context(storage: Storage, tenant_id: str = "acme") -> PublishContext:
    async with storage.read() as unit:
        return await unit.events.publish_context(TYPES, {tenant_id})


async def recipient_ids(storage: Storage, tenant_id: str = "acme") -> set[str]:
    return {r.id for r in (await read_context(storage, tenant_id)).recipients[tenant_id]}


async def test_each_change_to_what_publishing_reads_is_seen_by_the_next_read(
    sqlite_storage: SqliteStorage,
) -> None:
    storage = sqlite_storage
    assert (await read_context(storage)).known_types == set()
    async with storage.transaction() as unit:
        await unit.registry.upsert_type("product.created", "product", "", NOW)
    assert (await read_context(storage)).known_types == TYPES
    assert (await read_context(storage)).schemas == {"product": {}}

    async with storage.transaction() as unit:
        await unit.registry.upsert_fields("product", {"cost": Classification.CONFIDENTIAL}, NOW)
    assert (await read_context(storage)).schemas == {
        "product": {"cost": Classification.CONFIDENTIAL}
    }
    async with storage.transaction() as unit:
        await unit.registry.upsert_fields("product", {"cost": Classification.PUBLIC}, NOW)
    assert (await read_context(storage)).schemas == {"product": {"cost": Classification.PUBLIC}}

    assert await recipient_ids(storage) == set()
    first = await add_subscription(storage)
    assert await recipient_ids(storage) == {first.id}
    second = await add_subscription(storage)
    assert await recipient_ids(storage) == {first.id, second.id}

    async with storage.transaction() as unit:
        await unit.subscriptions.change(
            first.id, SubscriptionChanges(event_patterns=("order.*",)), NOW
        )
    [changed] = [r for r in (await read_context(storage)).recipients["acme"] if r.id == first.id]
    assert changed.event_patterns == ("order.*",)
    async with storage.transaction() as unit:
        await unit.subscriptions.change(first.id, SubscriptionChanges(filter="data.id == 'x'"), NOW)
    [changed] = [r for r in (await read_context(storage)).recipients["acme"] if r.id == first.id]
    assert changed.filter == "data.id == 'x'"

    async with storage.transaction() as unit:
        await unit.subscriptions.disable_if_active(first.id, DisabledReason.MANUAL, NOW)
    assert await recipient_ids(storage) == {second.id}
    async with storage.transaction() as unit:
        await unit.subscriptions.activate(first.id, NOW)
    assert await recipient_ids(storage) == {first.id, second.id}
    async with storage.transaction() as unit:
        await unit.subscriptions.delete(second.id)
    assert await recipient_ids(storage) == {first.id}


async def test_a_read_during_an_uncommitted_change_is_not_kept(
    sqlite_storage: SqliteStorage,
) -> None:
    storage = sqlite_storage
    first = await add_subscription(storage)
    assert await recipient_ids(storage) == {first.id}
    written = asyncio.Event()
    release = asyncio.Event()

    async def disable_slowly() -> None:
        async with storage.transaction() as unit:
            await unit.subscriptions.disable_if_active(first.id, DisabledReason.MANUAL, NOW)
            written.set()
            await release.wait()

    writing = asyncio.create_task(disable_slowly())
    await asyncio.wait_for(written.wait(), timeout=10)
    # Not committed yet: this read sees the subscription still active...
    assert await recipient_ids(storage) == {first.id}
    release.set()
    await asyncio.wait_for(writing, timeout=10)
    # ...and, once it is, nothing remembered from that read answers instead.
    assert await recipient_ids(storage) == set()


async def test_a_rolled_back_change_leaves_what_publishing_reads_as_it_was(
    sqlite_storage: SqliteStorage,
) -> None:
    storage = sqlite_storage
    first = await add_subscription(storage)

    class Abandoned(Exception):
        pass

    try:
        async with storage.transaction() as unit:
            await unit.subscriptions.delete(first.id)
            # Another connection reads the rows as committed, and may keep them...
            assert await recipient_ids(storage) == {first.id}
            # ...but the transaction that deleted it does not read them from memory.
            assert await unit.events.publish_context(TYPES, {"acme"}) == PublishContext(
                set(), {}, {"acme": []}
            )
            raise Abandoned
    except Abandoned:
        pass
    assert await recipient_ids(storage) == {first.id}


async def test_storages_of_one_process_on_one_file_see_each_others_changes(
    sqlite_storage: SqliteStorage, sqlite_file: Path
) -> None:
    other = open_storage(f"sqlite:///{sqlite_file}")
    try:
        assert await recipient_ids(sqlite_storage) == set()
        added = await add_subscription(other)
        assert await recipient_ids(sqlite_storage) == {added.id}
    finally:
        await other.dispose()
