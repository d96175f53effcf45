"""Feed reads: one tenant's events in feed order, filtered, never past the visibility horizon."""

from __future__ import annotations

import asyncio

import pytest

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.storage import migrate
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import Storage

from .conftest import new_event, publish

START = FeedPosition(0, 0)


async def test_pages_follow_feed_order_after_a_position(storage: Storage) -> None:
    events = [new_event(entity_id=f"p{i}") for i in range(4)]
    for event in events:
        await publish(storage, [event])
    await publish(storage, [new_event("globex")])
    async with storage.read() as unit:
        first = await unit.feed.read_page("acme", START, 2)
        rest = await unit.feed.read_page("acme", first[-1].position, 10)
        sized = await unit.feed.read_sized("acme", START, 10)
        head = await unit.feed.head()
    assert [s.event.id for s in first + rest] == [e["id"] for e in events]
    assert [s.event.id for s, _ in sized] == [e["id"] for e in events]
    assert all(size >= len('{"id": "p0"}') - 1 for _, size in sized)
    # The head is after every event committed so far.
    assert all(s.position < head for s in first + rest)
    await publish(storage, [later_event := new_event(entity_id="p9")])
    async with storage.read() as unit:
        [after_head] = await unit.feed.read_page("acme", head, 10)
    assert after_head.event.id == later_event["id"]


async def test_pages_filter_by_pattern_and_entity(storage: Storage) -> None:
    product = new_event(type="product.created", entity_id="p1")
    other = new_event(type="product.updated", entity_id="p2")
    order = new_event(type="order.created", entity_id="o1")
    odd = new_event(type="product_x.created", entity_id="x1")  # "_" is no wildcard
    await publish(storage, [product, other, order, odd])
    async with storage.read() as unit:
        products = await unit.feed.read_page("acme", START, 10, ["product.*"])
        exact = await unit.feed.read_page("acme", START, 10, ["order.created"])
        everything = await unit.feed.read_page("acme", START, 10, ["*"])
        one_entity = await unit.feed.read_page("acme", START, 10, entity_id="p2")
    assert [s.event.id for s in products] == [product["id"], other["id"]]
    assert [s.event.id for s in exact] == [order["id"]]
    assert len(everything) == 4
    assert [s.event.id for s in one_entity] == [other["id"]]


@pytest.mark.postgres
async def test_a_later_commit_waits_behind_an_open_earlier_transaction(postgres_url: str) -> None:
    """Gap-free: while a transaction that wrote an event is open, an event committed after it
    is not served, so a reader never moves past a position that fills in later."""
    await asyncio.to_thread(migrate.upgrade, postgres_url)
    storage = open_storage(postgres_url)
    early, late = new_event(entity_id="early"), new_event(entity_id="late")
    try:
        async with storage.transaction() as writer:
            await writer.events.insert_with_deliveries([early], [])
            await publish(storage, [late])
            async with storage.read() as unit:
                assert await unit.feed.read_page("acme", START, 10) == []
                head = await unit.feed.head()
        async with storage.read() as unit:
            served = await unit.feed.read_page("acme", START, 10)
        assert [s.event.id for s in served] == [early["id"], late["id"]]
        assert all(head <= s.position for s in served)
    finally:
        await storage.dispose()
