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
    """`count` open streams, each having received one event (published once all are open)."""
    tenants = [f"idle-{i // PER_TENANT:03d}" for i in range(count)]
    calls = [
        stubs.feed.StreamEvents(feed_pb2.StreamEventsRequest(tenant_id=t, from_latest=True))
        for t in tenants
    ]
    # The call starts when its first message is asked for: ask, then publish for each tenant
    # until every stream has an event (a stream opened after its tenant's event sees the next).
    firsts = [asyncio.ensure_future(_first_event(call)) for call in calls]
    while not all(first.done() for first in firsts):
        for tenant in sorted(set(tenants)):
            request = event_request(0)
            request.tenant_id = tenant
            await stubs.events.PublishEvent(request)
        await asyncio.wait(firsts, timeout=0.5)
    for first in firsts:
        first.result()
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
