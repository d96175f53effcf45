"""Leasing under delivery controls (SPEC §11), on every driver: a FIFO subscription's deliveries
one at a time in feed order, a rate-limited one's on slots from its shared GCRA state."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import psycopg
import pytest

from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.models import AttemptError, DeliveryStatus, Ordering, Subscription
from webhook_grpc.storage.ports import Storage

from .conftest import (
    NOW,
    SECRET,
    add_subscription,
    later,
    new_delivery,
    new_event,
    new_subscription,
    publish,
)
from .test_leasing import LEASE, lease

# For what only PostgreSQL has (row locks, concurrent writers): `storage` and `database_url`
# on PostgreSQL alone.
ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def add_controlled(
    storage: Storage, *, ordering: Ordering = Ordering.UNORDERED, rate: int = 0
) -> Subscription:
    subscription = dataclasses.replace(
        new_subscription(), ordering=ordering, rate_limit_per_second=rate
    )
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, SECRET)
    return subscription


async def publish_in_order(
    storage: Storage, subscription_id: str, dues: list[datetime]
) -> list[str]:
    """One event per publish (so feed order is the list's order), each with a delivery due at
    the given time; their delivery ids."""
    ids = []
    for due in dues:
        event = new_event()
        delivery = new_delivery(event, subscription_id, due)
        await publish(storage, [event], [delivery])
        ids.append(delivery["id"])
    return ids


async def record(
    storage: Storage,
    leased: LeasedDelivery,
    status: DeliveryStatus,
    *,
    at: datetime,
    retry_at: datetime | None = None,
    status_code: int = 503,
) -> None:
    succeeded = status is DeliveryStatus.SUCCEEDED
    attempt = AttemptRecord(
        delivery_id=leased.id,
        subscription_id=leased.subscription_id,
        lease_token=leased.lease_token,
        attempt_number=leased.attempt_count + 1,
        attempted_at=at,
        succeeded=succeeded,
        status_code=200 if succeeded else status_code,
        latency=timedelta(milliseconds=5),
        error=None if succeeded else AttemptError.HTTP_STATUS,
        error_message="",
        response_body="",
        next_status=status,
        next_attempt_at=retry_at,
    )
    async with storage.transaction() as unit:
        await unit.deliveries.record_attempts([attempt])


async def test_fifo_leases_only_the_head_and_nothing_while_it_is_in_flight(
    storage: Storage,
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    first, second, _ = await publish_in_order(storage, fifo.id, [NOW, NOW, NOW])
    [head] = (await lease(storage)).deliveries
    assert (head.id, head.ordered, head.not_before) == (first, True, None)
    assert (await lease(storage, later(1), token="lease_2")).deliveries == []
    await record(storage, head, DeliveryStatus.SUCCEEDED, at=later(1))
    [following] = (await lease(storage, later(1), token="lease_3")).deliveries
    assert following.id == second


async def test_a_failing_fifo_head_holds_the_rest_until_it_finally_fails(
    storage: Storage,
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    first, second = await publish_in_order(storage, fifo.id, [NOW, NOW])
    [head] = (await lease(storage)).deliveries
    await record(storage, head, DeliveryStatus.PENDING, at=later(1), retry_at=later(10))
    assert (await lease(storage, later(5), token="lease_2")).deliveries == []
    [retried] = (await lease(storage, later(10), token="lease_3")).deliveries
    assert retried.id == first
    await record(storage, retried, DeliveryStatus.FAILED, at=later(11))
    [following] = (await lease(storage, later(11), token="lease_4")).deliveries
    assert following.id == second


async def test_the_fifo_head_is_the_oldest_in_feed_order_not_the_first_due(
    storage: Storage,
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    first, _ = await publish_in_order(storage, fifo.id, [later(5), NOW])
    assert (await lease(storage)).deliveries == []
    async with storage.read() as unit:
        assert await unit.deliveries.next_due_after(NOW) == later(5)
    [head] = (await lease(storage, later(5), token="lease_2")).deliveries
    assert head.id == first


async def test_an_expired_fifo_lease_gives_the_head_again_never_a_later_one(
    storage: Storage,
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    first, _ = await publish_in_order(storage, fifo.id, [NOW, NOW])
    await lease(storage)  # a dispatcher that dies with it
    assert (await lease(storage, later(LEASE - 1), token="lease_2")).deliveries == []
    [again] = (await lease(storage, later(LEASE), token="lease_3")).deliveries
    assert (again.id, again.lease_token) == (first, "lease_3")


async def test_unordered_subscriptions_lease_beside_a_fifo_one_as_before(
    storage: Storage,
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    plain = await add_subscription(storage)
    await publish_in_order(storage, fifo.id, [NOW] * 3)
    await publish_in_order(storage, plain.id, [NOW] * 3)
    work = await lease(storage)
    by_subscription = sorted(d.subscription_id for d in work.deliveries)
    assert by_subscription == sorted([fifo.id, plain.id, plain.id, plain.id])
    assert set(work.targets) == {fifo.id, plain.id}


async def test_a_rate_limit_grants_slots_from_its_shared_state(storage: Storage) -> None:
    limited = await add_controlled(storage, rate=2)
    await publish_in_order(storage, limited.id, [NOW] * 5)
    work = await lease(storage)
    assert [d.not_before for d in work.deliveries] == [NOW, later(0.5)]
    # Its next slot is a second away: skipped until then, by this or any other dispatcher.
    assert (await lease(storage, later(0.9), token="lease_2")).deliveries == []
    async with storage.read() as unit:
        assert await unit.deliveries.next_due_after(later(0.9)) == later(1)
    again = (await lease(storage, later(1), token="lease_3")).deliveries
    assert [d.not_before for d in again] == [later(1), later(1.5)]


async def test_a_rate_limited_lease_lasts_past_its_slot(storage: Storage) -> None:
    limited = await add_controlled(storage, rate=1)
    await publish_in_order(storage, limited.id, [NOW] * 2)
    await lease(storage, later(0), token="lease_1")
    [second] = (await lease(storage, later(1), token="lease_2")).deliveries
    assert second.not_before == later(1)


async def test_a_429_pushes_the_rate_limit_past_its_retry(storage: Storage) -> None:
    limited = await add_controlled(storage, rate=10)
    await publish_in_order(storage, limited.id, [NOW] * 3)
    [first, *_] = (await lease(storage, limit=10, per_subscription=1)).deliveries
    await record(
        storage, first, DeliveryStatus.PENDING, at=later(0.1), retry_at=later(20), status_code=429
    )
    # Due rows remain, but no slot starts before the endpoint's Retry-After has passed.
    assert (await lease(storage, later(10), token="lease_2")).deliveries == []
    assert len((await lease(storage, later(20), token="lease_3")).deliveries) >= 1


@ON_POSTGRES
async def test_a_controlled_subscription_another_dispatcher_is_leasing_is_skipped(
    storage: Storage, database_url: str
) -> None:
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    plain = await add_subscription(storage)
    await publish_in_order(storage, fifo.id, [NOW])
    await publish_in_order(storage, plain.id, [NOW])
    async with await psycopg.AsyncConnection.connect(database_url) as other:
        # Another dispatcher, in the middle of leasing from it, holds the row's lock.
        await other.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR UPDATE", [fifo.id])
        work = await asyncio.wait_for(lease(storage), timeout=5)
    assert [d.subscription_id for d in work.deliveries] == [plain.id]


async def test_a_replayed_delivery_takes_its_place_in_feed_order(storage: Storage) -> None:
    """A delivery queued later for a stored event (ReplayEvents) goes by its event's feed
    position, not by when it was queued: behind the earlier event's, before the later one's."""
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    first, replayed, last = new_event(), new_event(), new_event()
    await publish(storage, [first], [new_delivery(first, fifo.id)])
    await publish(storage, [replayed])
    await publish(storage, [last], [new_delivery(last, fifo.id)])
    async with storage.transaction() as unit:
        await unit.deliveries.insert([new_delivery(replayed, fifo.id)])
    taken = []
    for n in range(3):
        [head] = (await lease(storage, later(n), token=f"lease_{n}")).deliveries
        await record(storage, head, DeliveryStatus.SUCCEEDED, at=later(n))
        taken.append(head.event_id)
    assert taken == [first["id"], replayed["id"], last["id"]]


@ON_POSTGRES
async def test_many_fifo_heads_lease_in_one_call_skipping_a_locked_subscription(
    storage: Storage, database_url: str
) -> None:
    subscriptions = sorted(
        [await add_controlled(storage, ordering=Ordering.FIFO) for _ in range(4)],
        key=lambda s: s.id,
    )
    queues = {s.id: await publish_in_order(storage, s.id, [NOW, NOW]) for s in subscriptions}
    busy, *free = subscriptions
    async with await psycopg.AsyncConnection.connect(database_url) as other:
        await other.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR UPDATE", [busy.id])
        two = (await lease(storage, limit=2)).deliveries
        rest = (await lease(storage, token="lease_2")).deliveries
    # Two heads of the first free subscriptions, then the third one's head: never a second
    # delivery of a subscription in flight, nothing of the locked one.
    assert [d.id for d in two] == [queues[s.id][0] for s in free[:2]]
    assert [d.id for d in rest] == [queues[free[2].id][0]]
    assert all(d.ordered for d in two + rest)
    [locked_head] = (await lease(storage, token="lease_3")).deliveries
    assert locked_head.id == queues[busy.id][0]


@ON_POSTGRES
async def test_a_fifo_head_waits_for_an_older_transaction_still_open(storage: Storage) -> None:
    """An event whose transaction began earlier sorts first in the feed even when it commits
    later: its delivery goes first, and the later one is not leased while it may still come."""
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    early, late = new_event(entity_id="early"), new_event(entity_id="late")
    async with storage.transaction() as writer:
        await writer.events.insert_with_deliveries([early], [new_delivery(early, fifo.id)])
        await publish(storage, [late], [new_delivery(late, fifo.id)])
        assert (await lease(storage)).deliveries == []
    [head] = (await lease(storage, token="lease_2")).deliveries
    assert head.event_id == early["id"]


async def test_controlled_leases_stop_at_the_limit_fifo_heads_first(storage: Storage) -> None:
    limited = await add_controlled(storage, rate=10)
    fifo = await add_controlled(storage, ordering=Ordering.FIFO)
    await publish_in_order(storage, limited.id, [NOW] * 5)
    [head, _] = await publish_in_order(storage, fifo.id, [NOW] * 2)
    work = await lease(storage, limit=3)
    assert [d.subscription_id for d in work.deliveries] == [fifo.id, limited.id, limited.id]
    assert work.deliveries[0].id == head
    assert [d.not_before for d in work.deliveries[1:]] == [NOW, later(0.1)]
