"""PostgreSQL only: several dispatcher processes, crashes, and the feed under concurrent commits."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.support.factories import publish_in_feed_order, subscribe
from tests.support.network import connection_ports
from tests.support.processes import ServiceProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc.services.publishing import EventDraft

pytestmark = pytest.mark.postgres


async def test_two_dispatchers_share_2000_deliveries_without_duplicates(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    await subscribe(api_only, receiver.url(), ["product.*"])
    env = settings_env(postgres_url)
    workers = [ServiceProcess("dispatcher", env) for _ in range(2)]
    try:
        ids = await publish_in_feed_order(api_only, 2000)
        await receiver.wait_count(2000, timeout=120)
        # Which process sent what: each holds its own (kept-alive) connections to the receiver.
        ports = [connection_ports(worker.process.pid, receiver.port) for worker in workers]
        # A graceful stop finishes and records in-flight attempts: once both processes have
        # exited, nothing more can arrive.
        for worker in workers:
            assert await asyncio.to_thread(worker.terminate, 20) == 0
    finally:
        for worker in workers:
            worker.close()
    delivered = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1, "an event was delivered twice in a fault-free run"
    assert not ports[0] & ports[1]
    shares = [sum(r.peer_port in mine for r in receiver.received) for mine in ports]
    assert all(share > 0 for share in shares), f"one dispatcher did all the work: {shares}"


async def test_killed_dispatcher_loses_nothing(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    # The receiver does not answer the first dispatcher at all: whatever it attempted is still in
    # flight when it is killed, however slow the machine (until its delivery_timeout).
    hold = asyncio.Event()
    receiver.on("/hook", hold=hold)
    await subscribe(api_only, receiver.url(), ["product.*"])
    env = settings_env(postgres_url, delivery_timeout="2s", lease_duration="4s")
    first = ServiceProcess("dispatcher", env)
    try:
        ids = await publish_in_feed_order(api_only, 300)
        await receiver.wait_count(1, timeout=30)
        in_flight = {r.headers["webhook-id"] for r in receiver.unanswered}
        assert in_flight
        first.kill()  # SIGKILL mid-attempt
    finally:
        first.close()
    hold.set()
    second = ServiceProcess("dispatcher", env)
    try:
        await all_succeeded(api_only, ids)
    finally:
        second.close()
    # Each attempt in flight at the kill was made again, and answered this time.
    delivered = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert all(delivered[event_id] >= 2 for event_id in in_flight)


async def all_succeeded(server: RunningServer, event_ids: list[str], timeout: float = 90) -> None:
    """Wait until the delivery of each event succeeded (it is recorded, not just received)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        succeeded, token = set(), ""
        while True:
            page = await server.deliveries.ListDeliveries(
                dpb.ListDeliveriesRequest(
                    tenant_id="acme",
                    status=dpb.DELIVERY_STATUS_SUCCEEDED,
                    page_size=100,
                    page_token=token,
                )
            )
            succeeded |= {d.event_id for d in page.deliveries}
            token = page.next_page_token
            if not token:
                break
        missing = set(event_ids) - succeeded
        if not missing:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{len(missing)} not delivered"
        await asyncio.sleep(0.2)


async def test_sigterm_finishes_in_flight_attempts(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    receiver.on("/hook", delay=0.5)
    await subscribe(api_only, receiver.url(), ["product.*"])
    worker = ServiceProcess("dispatcher", settings_env(postgres_url, endpoint_concurrency=4))
    try:
        await publish_in_feed_order(api_only, 20)
        await receiver.wait_count(4, timeout=30)
        # Wait in a thread: the receiver runs on this event loop and must keep answering.
        assert await asyncio.to_thread(worker.terminate, 20) == 0
    finally:
        worker.close()
    # Every attempt the receiver saw was recorded before the process exited.
    listed = await api_only.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id="acme", page_size=100)
    )
    attempted = sum(d.attempt_count for d in listed.deliveries)
    assert attempted == len(receiver.received)


async def test_feed_is_gap_free_under_concurrent_publishers(api_only: RunningServer) -> None:
    app = api_only.app
    published: list[str] = []

    async def publisher(worker: int) -> None:
        rng = random.Random(worker)
        for i in range(25):
            async with app.storage.transaction() as unit:
                [result] = await app.publisher.publish_in(
                    unit,
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
