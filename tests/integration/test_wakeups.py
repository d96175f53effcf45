"""PostgreSQL only: another process's commit wakes dispatchers and feed streams through
LISTEN/NOTIFY, not the poll (SPEC §4 Durability), also after a database outage.

Every server here polls every 30 s, so only a wake-up delivers or streams an event within
seconds. The server that publishes and the one that delivers or streams are separate Apps with
their own notifiers: nothing in-process carries the wake-up from one to the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.fault_proxy import FaultProxy, Outage
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc.storage.notifications import Notifier

pytestmark = pytest.mark.postgres

POLL = "30s"
QUIET = {"poll_interval": POLL, "feed_heartbeat": POLL}
# Far below the poll interval (a wake-up takes milliseconds), and loose for a loaded machine.
WAKE_WITHIN = 2.0
# Long enough for a server woken by an earlier event to finish with it and go back to sleep.
SETTLE = 0.5
# A stream that was woken keeps looking again for a while (5 ms, then twice as long each time),
# since a commit it was told of may still be below the visibility horizon. After this long, its
# next look is more than WAKE_WITHIN away, so only a wake-up brings an event in time.
STREAM_SETTLE = 6.0
# For a server cut off from the database to reconnect (its listener backs off up to 5 s).
RECOVERY_WITHIN = 30.0


@pytest.fixture
async def servers() -> AsyncIterator[list[RunningServer]]:
    running: list[RunningServer] = []
    yield running
    for server in reversed(running):
        await server.stop()


@pytest.fixture
async def publisher(postgres_url: str, servers: list[RunningServer]) -> RunningServer:
    """Publishes, and neither delivers nor polls soon."""
    servers.append(await start_server(postgres_url, serve_dispatcher=False, **QUIET))
    return servers[-1]


async def delivered_after(publisher: RunningServer, receiver: Receiver, timeout: float) -> float:
    """Publish one event; how long until the receiver had it."""
    started = time.monotonic()
    event = await publish(publisher)
    await receiver.wait_for(
        lambda got: any(r.headers.get("webhook-id") == event.id for r in got), timeout
    )
    return time.monotonic() - started


async def streamed_after(
    publisher: RunningServer,
    stream: grpc.aio.UnaryStreamCall,
    timeout: float,
    tenant_id: str = "acme",
) -> float:
    """Publish one event of `tenant_id` through `publisher`; how long until `stream` sent it."""
    started = time.monotonic()
    event = await publish(publisher, tenant_id=tenant_id)

    async def arrived() -> None:
        while True:
            message = await stream.read()
            assert message is not grpc.aio.EOF, "the stream ended"
            if event.id in [e.id for e in message.events]:
                return

    await asyncio.wait_for(arrived(), timeout)
    return time.monotonic() - started


async def live_stream(
    reader: RunningServer, publisher: RunningServer, settle: float = STREAM_SETTLE
) -> grpc.aio.UnaryStreamCall:
    """A stream of `reader` that is past its backlog and waits for live events."""
    stream = reader.feed.StreamEvents(fpb.StreamEventsRequest(tenant_id="acme"))
    # The event arrives from the backlog or live, whenever the call got going.
    await streamed_after(publisher, stream, timeout=10)
    await asyncio.sleep(settle)
    return stream


async def settled(publisher: RunningServer, receiver: Receiver) -> None:
    """Wait until every delivery so far is recorded, then until the dispatcher sleeps."""
    for request in list(receiver.received):
        [delivery] = await deliveries_of(publisher, request.headers["webhook-id"])
        await wait_delivery(publisher, delivery.id)
    await asyncio.sleep(SETTLE)


async def soon(measure: Callable[[], Awaitable[float]], what: str) -> float:
    """Until `measure()` is within WAKE_WITHIN (a listener that reconnects takes some tries)."""
    deadline = time.monotonic() + RECOVERY_WITHIN
    while True:
        try:
            return await measure()
        except TimeoutError:
            assert time.monotonic() < deadline, f"{what} within {WAKE_WITHIN}s, as before"


async def test_a_publish_wakes_another_servers_dispatcher(
    publisher: RunningServer, servers: list[RunningServer], receiver: Receiver, postgres_url: str
) -> None:
    servers.append(await start_server(postgres_url, **QUIET))
    await subscribe(publisher, receiver.url())
    await delivered_after(publisher, receiver, timeout=10)
    await settled(publisher, receiver)
    took = await delivered_after(publisher, receiver, timeout=WAKE_WITHIN)
    assert took < WAKE_WITHIN


async def test_a_publish_wakes_another_servers_feed_stream(
    publisher: RunningServer, servers: list[RunningServer], postgres_url: str
) -> None:
    reader = await start_server(postgres_url, serve_dispatcher=False, **QUIET)
    servers.append(reader)
    stream = await live_stream(reader, publisher)
    took = await streamed_after(publisher, stream, timeout=WAKE_WITHIN)
    assert took < WAKE_WITHIN
    stream.cancel()


async def test_wake_ups_resume_after_a_database_outage(
    proxy: FaultProxy,
    publisher: RunningServer,
    servers: list[RunningServer],
    receiver: Receiver,
    postgres_url: str,
) -> None:
    behind = await start_server(proxy.url(postgres_url), **QUIET)
    servers.append(behind)
    await subscribe(publisher, receiver.url())
    await delivered_after(publisher, receiver, timeout=10)

    await proxy.cut(Outage.REFUSE)
    await asyncio.sleep(1.0)
    await proxy.restore()
    await delivered_after(publisher, receiver, timeout=RECOVERY_WITHIN)
    await settled(publisher, receiver)

    # Its listener is back: another server's commit wakes its dispatcher and its streams.
    await soon(
        lambda: delivered_after(publisher, receiver, WAKE_WITHIN), "delivery after a publish"
    )
    stream = await live_stream(behind, publisher, settle=SETTLE)
    await soon(lambda: streamed_after(publisher, stream, WAKE_WITHIN), "a stream after a publish")
    stream.cancel()

    # Its first commit after the outage wakes the others too (a NOTIFY lost with the old
    # connection must be sent again on the new one).
    await settled(publisher, receiver)
    watching = await live_stream(publisher, publisher)
    took = await streamed_after(behind, watching, timeout=WAKE_WITHIN)
    assert took < WAKE_WITHIN
    watching.cancel()


async def test_a_stream_keeps_up_with_concurrent_publishers_without_polling(
    publisher: RunningServer, servers: list[RunningServer], postgres_url: str
) -> None:
    # Concurrent commits leave an event briefly hidden below the visibility horizon: a read
    # that returns older events must not swallow the wake-up announcing the hidden one.
    reader = await start_server(postgres_url, serve_dispatcher=False, **QUIET)
    servers.append(reader)
    stream = await live_stream(reader, publisher, settle=SETTLE)
    wanted: set[str] = set()

    async def publish_some(worker: int) -> None:
        for i in range(40):
            wanted.add((await publish(publisher, entity_id=f"w{worker}_{i}")).id)

    await asyncio.gather(*(publish_some(worker) for worker in range(8)))
    published_at = time.monotonic()

    async def all_arrived() -> None:
        while wanted:
            message = await stream.read()
            assert message is not grpc.aio.EOF, "the stream ended"
            wanted.difference_update(e.id for e in message.events)

    await asyncio.wait_for(all_arrived(), RECOVERY_WITHIN)
    assert time.monotonic() - published_at < WAKE_WITHIN
    stream.cancel()


async def until_set(*events: asyncio.Event) -> None:
    async with asyncio.timeout(RECOVERY_WITHIN):
        await asyncio.gather(*(event.wait() for event in events))


async def test_a_wake_up_for_one_tenant_leaves_other_tenants_streams_asleep(
    postgres_url: str,
) -> None:
    # In-process (SQLite has only this one) and through NOTIFY to another process's notifier.
    here, there = Notifier(postgres_url), Notifier(postgres_url)
    await here.start()
    await there.start()
    try:
        local = {t: here.waiter(t) for t in ("acme", "globex", None)}
        remote = {t: there.waiter(t) for t in ("acme", "globex", None)}
        # The listener wakes everyone once it listens (what committed meanwhile); then quiet.
        await until_set(*remote.values())
        await asyncio.sleep(0)
        for event in [*local.values(), *remote.values()]:
            event.clear()
        here.wake({"acme"})
        assert [t for t, event in local.items() if event.is_set()] == ["acme", None]
        # One NOTIFY wakes the chosen waiters together: once the every-tenant one is set, so
        # would be globex's, had the payload not named acme alone.
        await until_set(remote["acme"], remote[None])
        assert not remote["globex"].is_set()

        # Naming no tenant, or more than a payload holds, wakes every waiter.
        for event in remote.values():
            event.clear()
        here.wake({f"tenant-{i:05}" for i in range(1_000)})
        await until_set(*remote.values())
        for event in local.values():
            event.clear()
        here.wake()
        assert all(event.is_set() for event in local.values())
    finally:
        await here.stop()
        await there.stop()


async def test_a_publish_for_one_tenant_does_not_wake_another_tenants_stream(
    publisher: RunningServer, servers: list[RunningServer], postgres_url: str
) -> None:
    reader = await start_server(postgres_url, serve_dispatcher=False, **QUIET)
    servers.append(reader)
    stream = reader.feed.StreamEvents(fpb.StreamEventsRequest(tenant_id="globex"))
    await streamed_after(publisher, stream, timeout=10, tenant_id="globex")
    # The publisher's NOTIFYs arrive in order: once one naming "sync" has set this waiter,
    # every earlier one has been handled (twice, as its listener's first wake-up sets it too).
    sync = reader.app.notifier.waiter("sync")

    async def synced() -> None:
        for _ in range(2):
            sync.clear()
            await publish(publisher, tenant_id="sync")
            await until_set(sync)
        for _ in range(3):  # a stream woken with `sync` resumes in these turns of the loop
            await asyncio.sleep(0)

    def wakeups() -> float:
        value = reader.app.metrics.registry.get_sample_value("webhook_feed_stream_wakeups_total")
        return value or 0.0

    await synced()
    before = wakeups()
    await publish(publisher, tenant_id="acme")
    await synced()
    assert wakeups() == before
    await streamed_after(publisher, stream, timeout=WAKE_WITHIN, tenant_id="globex")
    stream.cancel()
