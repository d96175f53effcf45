"""Graceful shutdown: work a stopping process cannot finish is handed back at once (its lease
released), not held until the lease expires, and the process exits within its grace.

The lease is long (two minutes) and the endpoint hangs far longer than the grace, so "picked up
at once" and "picked up after the lease expired" cannot be confused."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import grpc
import psycopg

from tests.conftest import ServerFactory
from tests.support.clock import MovableClock
from tests.support.factories import (
    deliveries_of,
    publish,
    publish_request,
    subscribe,
    wait_delivery,
)
from tests.support.processes import LoggingProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import start_server
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import (
    deliveries_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhook_grpc.app import Roles

LEASE = timedelta(minutes=2)
HANG = 600.0  # the endpoint answers after ten minutes: never, as far as these tests go


async def all_deliveries(stub: deliveries_pb2_grpc.DeliveryServiceStub) -> list[dpb.Delivery]:
    response = await stub.ListDeliveries(dpb.ListDeliveriesRequest(tenant_id="acme"))
    return list(response.deliveries)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll `check` until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def assert_handed_back(database_url: str, stopped_at: datetime, count: int) -> None:
    """Every delivery is still pending and due by the time the process stopped, not at the end
    of a lease taken before (read by an API-only server: nothing leases meanwhile)."""
    api = await start_server(database_url, roles=Roles(dispatcher=False, retention=False))
    try:
        deliveries = await all_deliveries(api.deliveries)
        assert len(deliveries) == count
        for delivery in deliveries:
            assert delivery.status == dpb.DELIVERY_STATUS_PENDING, delivery
            due = delivery.next_attempt_at.ToDatetime(UTC)
            assert due < stopped_at + LEASE / 2, f"still leased: due {due}, stopped {stopped_at}"
    finally:
        await api.stop()


async def test_sigterm_exits_within_grace_and_releases_what_it_leased(
    database_url: str, receiver: Receiver, make_server: ServerFactory
) -> None:
    receiver.on("/hook", delay=HANG)
    grace = 2.0  # `serve` gives in-flight work delivery_timeout to finish
    env = settings_env(
        database_url,
        listen="127.0.0.1:0",
        delivery_timeout=f"{grace}s",
        lease_duration=f"{LEASE.total_seconds()}s",
        # One attempt at a time per endpoint and as much again leased in its lane: of three
        # deliveries, one is attempted, one waits leased in this process and one stays due.
        endpoint_concurrency=1,
    )
    service = await LoggingProcess.start("serve", env)
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{await service.port()}")
        subscriptions = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
        events = events_pb2_grpc.EventServiceStub(channel)
        deliveries = deliveries_pb2_grpc.DeliveryServiceStub(channel)
        await subscriptions.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                tenant_id="acme", url=receiver.url(), event_patterns=["product.*"]
            )
        )
        published = await events.PublishEvents(
            events_pb2.PublishEventsRequest(
                events=[publish_request(entity_id=f"p{i}") for i in range(3)]
            )
        )
        await receiver.wait_count(1, timeout=30)

        async def two_leased() -> bool:
            horizon = datetime.now(UTC) + LEASE / 2
            leased = [
                d
                for d in await all_deliveries(deliveries)
                if d.next_attempt_at.ToDatetime(UTC) > horizon
            ]
            return len(leased) == 2

        await wait_until(two_leased)
        await channel.close()

        stopped_at = datetime.now(UTC)
        started = time.monotonic()
        assert await service.terminate() == 0
        took = time.monotonic() - started
    finally:
        await service.close()
    # The attempt in flight ran into its timeout (the grace) and was recorded; not the hang.
    assert took < grace + 20, f"took {took:.1f}s to stop"
    assert not [line for line in service.stderr if "Traceback" in line], service.stderr
    assert len(receiver.received) == 1

    await assert_handed_back(database_url, stopped_at, 3)
    # And another dispatcher delivers them all now, long before the old lease would expire.
    receiver.on("/hook")
    server = await make_server()
    ids = {e.id for e in published.events}
    await receiver.wait_for(lambda got: {r.headers["webhook-id"] for r in got} >= ids, 30)

    async def all_succeeded() -> bool:
        statuses = {d.status for d in await all_deliveries(server.deliveries)}
        return statuses == {dpb.DELIVERY_STATUS_SUCCEEDED}

    await wait_until(all_succeeded)


async def test_stop_cancels_attempts_past_the_grace_and_releases_them(
    database_url: str, receiver: Receiver, make_server: ServerFactory
) -> None:
    receiver.on("/hook", delay=HANG)
    # The attempt's own timeout is far longer than the grace: stop must cancel it.
    first = await make_server(delivery_timeout="60s", lease_duration=f"{LEASE.total_seconds()}s")
    await subscribe(first, receiver.url())
    event = await publish(first)
    [delivery] = await deliveries_of(first, event.id)
    await receiver.wait_count(1, timeout=30)

    stopped_at = datetime.now(UTC)
    started = time.monotonic()
    await first.stop()  # grace 1 s
    took = time.monotonic() - started
    assert took < 30, f"took {took:.1f}s to stop"

    await assert_handed_back(database_url, stopped_at, 1)
    receiver.on("/hook")
    second = await make_server()
    done = await wait_delivery(second, delivery.id, timeout=30)
    # The cancelled attempt was never recorded: the one that succeeded is the first.
    assert [a.status_code for a in done.attempts] == [200]
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.id}


@asynccontextmanager
async def writers_held_off(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold off writes to the deliveries table from a connection of the test's own, as a long
    transaction elsewhere would, until the block exits. Yields a wait for the first writer to
    queue behind it."""
    if database_url.startswith("sqlite"):
        # In a thread: the app under test runs on this event loop, and a write transaction of
        # its that is under way needs the loop to finish before this one can begin.
        sqlite = sqlite3.connect(
            database_url.removeprefix("sqlite:///"), timeout=60, check_same_thread=False
        )
        sqlite.isolation_level = None
        await asyncio.to_thread(sqlite.execute, "BEGIN IMMEDIATE")

        async def queued_on_sqlite() -> None:
            # SQLite shows nobody its waiters: give the writer the time of twenty poll
            # intervals to reach the lock (the tests check afterwards that it did).
            await asyncio.sleep(2.0)

        try:
            yield queued_on_sqlite
        finally:
            await asyncio.to_thread(sqlite.execute, "COMMIT")
            sqlite.close()
        return
    async with await psycopg.AsyncConnection.connect(database_url) as postgres:
        # SHARE mode lets readers through and makes every UPDATE and INSERT wait.
        await postgres.execute("LOCK TABLE deliveries IN SHARE MODE")

        async def queued_on_postgres() -> None:
            async def waiting() -> bool:
                cursor = await postgres.execute(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE relation = 'deliveries'::regclass AND NOT granted"
                )
                row = await cursor.fetchone()
                return row is not None and row[0] > 0

            await wait_until(waiting)

        yield queued_on_postgres
        await postgres.commit()


async def test_stop_releases_what_a_lease_under_way_brings(
    database_url: str, receiver: Receiver, make_server: ServerFactory
) -> None:
    """A lease that is running when stop begins and returns work during the grace: that work
    is handed back too, so after stop returns the process holds no lease."""
    receiver.on("/slow", delay=HANG)
    started = datetime.now(UTC)
    # Each server has its own clock, so deliveries can exist that the dispatcher does not yet
    # see due, and fall due for it while its lease is held off.
    publishing = MovableClock(started)
    api = await make_server(roles=Roles(dispatcher=False, retention=False), clock=publishing)
    dispatching = MovableClock(started)
    dispatcher = await make_server(
        roles=Roles(api=False, retention=False),
        clock=dispatching,
        delivery_timeout="60s",
        lease_duration=f"{LEASE.total_seconds()}s",
    )
    await subscribe(api, receiver.url("/slow"), ["product.activated"])
    await subscribe(api, receiver.url("/hook"), ["product.created"])
    # An attempt in flight for the whole grace, so stop waits and the held-off lease lands.
    await publish(api, "product.activated", "p")
    await receiver.wait_count(1, "/slow", timeout=30)
    publishing.advance(timedelta(hours=1))
    published = [await publish(api, entity_id=f"p{i}") for i in range(3)]

    async with writers_held_off(database_url) as lease_queued:
        dispatching.advance(timedelta(hours=1, minutes=1))
        await lease_queued()
        dispatcher.stopped = True
        stopping = asyncio.create_task(dispatcher.app.stop(grace=3.0))
        await asyncio.sleep(0)  # stop has begun: it sets stopping before it first waits
    await stopping

    released_at = dispatching.now
    deliveries = await all_deliveries(api.deliveries)
    assert len(deliveries) == 4
    for delivery in deliveries:
        assert delivery.status == dpb.DELIVERY_STATUS_PENDING, delivery
        due = delivery.next_attempt_at.ToDatetime(UTC)
        assert due <= released_at, f"still leased after stop: due {due}, stopped {released_at}"
    # Released by the dispatcher (at its time), not merely never leased: the race did happen.
    ids = {event.id for event in published}
    dues = {d.next_attempt_at.ToDatetime(UTC) for d in deliveries if d.event_id in ids}
    assert released_at in dues, dues

    # Another dispatcher, whose time stands still, delivers them: due now, not at lease expiry.
    await make_server(roles=Roles(api=False, retention=False), clock=MovableClock(released_at))
    for event in published:
        [delivery] = await deliveries_of(api, event.id)
        done = await wait_delivery(api, delivery.id, timeout=30)
        assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED


async def test_stop_records_an_attempt_being_committed_once(
    database_url: str, receiver: Receiver, make_server: ServerFactory
) -> None:
    """An attempt that finished before stop and is still being committed when it begins is
    recorded once: stop waits for the commit under way instead of making another."""
    # The answer comes late enough for the test to hold writes off before it is recorded.
    receiver.on("/hook", delay=2.0)
    api = await make_server(roles=Roles(dispatcher=False, retention=False))
    # One delivery at a time: with its attempt handed to the recorder the dispatcher has no
    # room, so only the recorder writes while writes are held off.
    dispatcher = await make_server(
        roles=Roles(api=False, retention=False),
        dispatcher_concurrency=1,
        delivery_timeout="10s",
        lease_duration=f"{LEASE.total_seconds()}s",
    )
    await subscribe(api, receiver.url())
    event = await publish(api)
    [delivery] = await deliveries_of(api, event.id)

    await receiver.wait_count(1, timeout=30)
    async with writers_held_off(database_url) as commit_queued:
        await commit_queued()  # the endpoint answered: the recorder's commit waits
        dispatcher.stopped = True
        stopping = asyncio.create_task(dispatcher.app.stop(grace=5.0))
        # Time for stop to reach the recorder: a commit of its own would queue up too.
        await asyncio.sleep(1.0)
    await stopping

    done = await wait_delivery(api, delivery.id)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert [a.status_code for a in done.attempts] == [200]
