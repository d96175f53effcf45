"""PostgreSQL only: several dispatcher processes, crashes, and the feed under concurrent commits."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.support.factories import publish_request, subscribe
from tests.support.processes import ServiceProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import events_pb2
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc.app import Roles
from webhook_grpc.services.publishing import EventDraft

pytestmark = pytest.mark.postgres


@pytest.fixture
async def api_only(postgres_url: str) -> AsyncIterator[RunningServer]:
    """A server that publishes but does not deliver: dispatchers run as separate processes."""
    server = await start_server(postgres_url, roles=Roles(dispatcher=False, retention=False))
    yield server
    await server.stop()


async def publish_batches(server: RunningServer, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 500):
        response = await server.events.PublishEvents(
            events_pb2.PublishEventsRequest(
                events=[
                    publish_request(entity_id=f"p{i}")
                    for i in range(start, min(count, start + 500))
                ]
            )
        )
        ids += [e.id for e in response.events]
    return ids


async def test_two_dispatchers_share_2000_deliveries_without_duplicates(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    await subscribe(api_only, receiver.url(), ["product.*"])
    env = settings_env(postgres_url)
    workers = [ServiceProcess("dispatcher", env) for _ in range(2)]
    try:
        ids = await publish_batches(api_only, 2000)
        await receiver.wait_count(2000, timeout=120)
        await asyncio.sleep(1.0)  # anything duplicated would arrive by now
    finally:
        for worker in workers:
            worker.close()
    delivered = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1, "an event was delivered twice in a fault-free run"


async def test_killed_dispatcher_loses_nothing(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    receiver.on("/hook", delay=0.3)
    await subscribe(api_only, receiver.url(), ["product.*"])
    env = settings_env(postgres_url, delivery_timeout="2s", lease_duration="4s")
    first = ServiceProcess("dispatcher", env)
    try:
        ids = await publish_batches(api_only, 300)
        await receiver.wait_count(20, timeout=30)
        first.kill()  # SIGKILL mid-attempt: some deliveries are leased and in flight
    finally:
        first.close()
    seen_before = len(receiver.received)
    assert seen_before < 300
    second = ServiceProcess("dispatcher", env)
    try:
        await receiver.wait_for(
            lambda got: {r.headers["webhook-id"] for r in got} >= set(ids), timeout=90
        )
    finally:
        second.close()
    assert {r.headers["webhook-id"] for r in receiver.received} >= set(ids)


async def test_sigterm_finishes_in_flight_attempts(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    receiver.on("/hook", delay=0.5)
    await subscribe(api_only, receiver.url(), ["product.*"])
    worker = ServiceProcess("dispatcher", settings_env(postgres_url, endpoint_concurrency=4))
    try:
        await publish_batches(api_only, 20)
        await receiver.wait_count(4, timeout=30)
        # Wait in a thread: the receiver runs on this event loop and must keep answering.
        assert await asyncio.to_thread(worker.terminate, 20) == 0
    finally:
        worker.close()
    # Every attempt the receiver saw was recorded before the process exited.
    listed = await api_only.deliveries.ListDeliveries(
        __import__(
            "webhook_grpc._gen.webhooks.v1.deliveries_pb2", fromlist=["x"]
        ).ListDeliveriesRequest(tenant_id="acme", page_size=100)
    )
    attempted = sum(d.attempt_count for d in listed.deliveries)
    assert attempted == len(receiver.received)


async def test_feed_is_gap_free_under_concurrent_publishers(api_only: RunningServer) -> None:
    app = api_only.app
    published: list[str] = []

    async def publisher(worker: int) -> None:
        rng = random.Random(worker)
        for i in range(25):
            async with app.db.transaction() as conn:
                [result] = await app.publisher.publish_in(
                    conn,
                    [
                        EventDraft(
                            tenant_id="acme",
                            type="product.created",
                            entity_id=f"w{worker}-{i}",
                            data={"id": "x"},
                        )
                    ],
                )
                # Hold the transaction open so that later ids commit first.
                await asyncio.sleep(rng.uniform(0, 0.03))
            app.notifier.wake()
            published.append(result.event.id)

    streamed: list[str] = []
    paged: list[str] = []
    done = asyncio.Event()
    total = 8 * 25

    async def stream_reader() -> None:
        call = api_only.feed.StreamEvents(fpb.StreamEventsRequest(tenant_id="acme"))
        async for message in call:
            streamed.extend(e.id for e in message.events)
            if len(streamed) >= total:
                call.cancel()
                return

    async def page_reader() -> None:
        cursor = ""
        while True:
            page = await api_only.feed.ListEvents(
                fpb.ListEventsRequest(tenant_id="acme", after_cursor=cursor, page_size=13)
            )
            paged.extend(e.id for e in page.events)
            cursor = page.next_cursor
            if done.is_set() and not page.has_more and len(paged) >= total:
                return
            if not page.events:
                await asyncio.sleep(0.005)

    readers = [asyncio.create_task(stream_reader()), asyncio.create_task(page_reader())]
    await asyncio.gather(*(publisher(w) for w in range(8)))
    done.set()
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    assert len(published) == total
    for seen in (streamed, paged):
        assert len(seen) == len(set(seen)) == total, "a reader skipped or repeated an event"
        assert set(seen) == set(published)
    assert streamed == paged  # the same cursor order for both readers
