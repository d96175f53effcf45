"""SQLite only: concurrent publishers through the one writer (group commit). Every publish is
acknowledged only once committed, in feed order, with idempotency keys holding across callers of
one batch, a failing publish failing alone, and a killed process losing no acknowledged event."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import grpc
import pytest

from tests.support.factories import publish_request
from tests.support.processes import LoggingProcess, settings_env
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import events_pb2_grpc
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb

PUBLISHERS = 16


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'webhooks.db'}"


async def feed_ids(server: RunningServer) -> list[str]:
    ids: list[str] = []
    cursor, more = "", True
    while more:
        page = await server.feed.ListEvents(
            fpb.ListEventsRequest(tenant_id="acme", after_cursor=cursor, page_size=1000)
        )
        ids += [e.id for e in page.events]
        cursor, more = page.next_cursor, page.has_more
    return ids


async def test_concurrent_publishers_are_acknowledged_in_feed_order(sqlite_url: str) -> None:
    server = await start_server(sqlite_url)
    try:
        per_publisher = 12
        acknowledged: list[tuple[float, float, str]] = []  # (sent, acknowledged, id)
        by_publisher: dict[int, list[str]] = {}
        repeated: dict[str, set[str]] = {}

        async def publisher(number: int) -> None:
            for i in range(per_publisher):
                # Every third event is sent twice at once with one idempotency key (a retry
                # racing the original, likely in one batch): one event, one id for both.
                key = f"k{number}-{i}" if i % 3 == 0 else ""
                request = publish_request(entity_id=f"p{number}-{i}", idempotency_key=key)
                sent = time.monotonic()
                calls = [server.events.PublishEvent(request) for _ in range(2 if key else 1)]
                responses = await asyncio.gather(*calls)
                done = time.monotonic()
                ids = {r.event.id for r in responses}
                assert len(ids) == 1, f"one idempotency key, two events: {ids}"
                if key:
                    repeated[key] = ids
                acknowledged.append((sent, done, responses[0].event.id))
                by_publisher.setdefault(number, []).append(responses[0].event.id)

        async def failing() -> None:
            # An unregistered type fails inside the writer's transaction, beside the others.
            for i in range(per_publisher):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await server.events.PublishEvent(
                        publish_request(type="unknown.created", entity_id=f"x{i}")
                    )
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        await asyncio.gather(*(publisher(n) for n in range(PUBLISHERS)), failing())

        feed = await feed_ids(server)
        assert sorted(feed) == sorted(a[2] for a in acknowledged), "lost or extra events"
        position = {event_id: index for index, event_id in enumerate(feed)}
        for ids in by_publisher.values():
            assert [position[i] for i in ids] == sorted(position[i] for i in ids)
        # Acknowledged before another was sent: earlier in the feed.
        by_ack = sorted(acknowledged, key=lambda a: a[1])
        for sent, _, later in acknowledged:
            for _, acked, earlier in by_ack:
                if acked >= sent:
                    break
                assert position[earlier] < position[later]
        batches = server.app.storage.writer.batches  # type: ignore[attr-defined]
        assert 0 < batches < len(acknowledged), "publishers did not share commits"
    finally:
        await server.stop()


async def test_a_killed_server_loses_no_acknowledged_event(sqlite_url: str) -> None:
    service = await LoggingProcess.start("serve", settings_env(sqlite_url, listen="127.0.0.1:0"))
    acknowledged: list[str] = []
    stop, enough = asyncio.Event(), asyncio.Event()
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{await service.port()}")
        events = events_pb2_grpc.EventServiceStub(channel)

        async def publisher(number: int) -> None:
            i = 0
            while not stop.is_set():
                try:
                    response = await events.PublishEvent(
                        publish_request(entity_id=f"p{number}-{i}")
                    )
                except grpc.aio.AioRpcError:
                    return  # the server is gone: this one was not acknowledged
                acknowledged.append(response.event.id)
                if len(acknowledged) >= 200:
                    enough.set()
                i += 1

        publishers = [asyncio.create_task(publisher(n)) for n in range(PUBLISHERS)]
        await enough.wait()
        service.process.kill()  # SIGKILL mid-load: publishes in flight, a batch open
        await service.process.wait()
        stop.set()
        await asyncio.gather(*publishers)
        await channel.close()
    finally:
        await service.close()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged events lost"
