"""The `idle_stream` scenario: server memory per open, idle StreamEvents call (issue 20).

Opens STREAMS feed streams (from the latest event, 20 per tenant: `max_streams_per_tenant`),
proves each open by one event per tenant arriving on every stream, then reads the server's
resident memory: (RSS with the streams - RSS before) / STREAMS. A warm-up round of streams is
opened and closed first, so that the code paths' first use (imports, caches, the allocator's
first arenas) is not counted as the streams' cost."""

from __future__ import annotations

import asyncio
from typing import Any

from webhook_grpc._gen.webhooks.v1 import feed_pb2

from . import scenarios
from .harness import Cluster, Stubs, event_request, truncate

STREAMS = 500
PER_TENANT = 20


async def _open_streams(stubs: Stubs, count: int) -> list[Any]:
    """`count` open streams, each having received one event. A tenant's streams are opened
    together, then its events published until each of them has one (a stream that starts
    after an event sees the next); one tenant at a time, as clients arrive, not all at once:
    every event wakes each of its tenant's streams, and each reads from the database."""
    calls: list[Any] = []
    for first in range(0, count, PER_TENANT):
        tenant = f"idle-{first // PER_TENANT:03d}"
        request = feed_pb2.StreamEventsRequest(tenant_id=tenant, from_latest=True)
        opened = [stubs.feed.StreamEvents(request) for _ in range(min(PER_TENANT, count - first))]
        firsts = [asyncio.ensure_future(_first_event(call)) for call in opened]
        while not all(task.done() for task in firsts):
            event = event_request(0)
            event.tenant_id = tenant
            await stubs.events.PublishEvent(event)
            await asyncio.wait(firsts, timeout=0.5)
        for task in firsts:
            task.result()
        calls += opened
    return calls


async def _first_event(call: Any) -> None:
    async for message in call:
        if message.events:
            return


async def idle_stream(cluster: Cluster) -> dict[str, float]:
    truncate(cluster.database_url)
    server = cluster.server()
    count = scenarios.scaled(STREAMS)
    stubs = Stubs(cluster.target)
    try:
        for call in await _open_streams(stubs, count):  # warm-up
            call.cancel()
        await asyncio.sleep(0.5)
        before = server.rss_kb()
        calls = await _open_streams(stubs, count)
        await asyncio.sleep(0.5)
        after = server.rss_kb()
        for call in calls:
            call.cancel()
    finally:
        await stubs.close()
    return {"idle_stream_kb": (after - before) / count, "idle_stream_count": float(count)}
