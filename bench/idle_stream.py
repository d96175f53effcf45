"""The `idle_stream` scenario: server memory per open, idle StreamEvents call (issue 20).

Opens STREAMS feed streams (from the latest event, 20 per tenant: `max_streams_per_tenant`),
proves each open by its first heartbeat, then reads the server's resident memory: (RSS with
the streams - RSS before) / STREAMS. A warm-up round of streams is opened and closed first, so
that the code paths' first use (imports, caches, the allocator's first arenas) is not counted
as the streams' cost."""

from __future__ import annotations

import asyncio
from typing import Any

from webhook_grpc._gen.webhooks.v1 import feed_pb2

from . import scenarios
from .harness import Cluster, Stubs, truncate

STREAMS = 100
"""Each idle stream reads the database once a `poll_interval`: with a few hundred, a server on
this loaded 2-core machine ran out of pooled connections (docs/SCALING.md)."""
PER_TENANT = 20


async def _open_streams(stubs: Stubs, count: int) -> list[Any]:
    """`count` open streams, each having received its first heartbeat (nothing is published:
    every event would wake every stream of the process, and each would read)."""
    calls: list[Any] = []
    for first in range(0, count, PER_TENANT):  # a tenant's streams at a time
        request = feed_pb2.StreamEventsRequest(
            tenant_id=f"idle-{first // PER_TENANT:03d}", from_latest=True
        )
        opened = [stubs.feed.StreamEvents(request) for _ in range(min(PER_TENANT, count - first))]
        await asyncio.gather(*(call.read() for call in opened))
        calls += opened
    return calls


async def idle_stream(cluster: Cluster) -> dict[str, float]:
    """idle_stream_kb, and the CPU an idle stream costs: each reads the database every
    `poll_interval` (and at each wake-up, i.e. each event published to any tenant). On a server
    of its own with the default poll_interval (1 s; the bench's servers poll every 200 ms) and
    a heartbeat every second, which proves a stream open without publishing."""
    truncate(cluster.database_url)
    count = scenarios.scaled(STREAMS)
    server, target, _ = cluster.start_another_server(
        "idle_streams", serve_dispatcher=False, poll_interval="1s", feed_heartbeat="1s"
    )
    stubs = Stubs(target)
    try:
        for call in await _open_streams(stubs, count):  # warm-up
            call.cancel()
        await asyncio.sleep(scenarios.scaled_seconds(1.0))
        before = server.rss_kb()
        calls = await _open_streams(stubs, count)
        await asyncio.sleep(scenarios.scaled_seconds(1.0))
        after = server.rss_kb()
        idle_from = server.usage()
        await asyncio.sleep(scenarios.DURATION / 2)
        idle_cpu = (server.usage() - idle_from).cpu
        for call in calls:
            call.cancel()
    finally:
        await stubs.close()
        server.stop()
    return {
        "idle_stream_kb": (after - before) / count,
        "idle_stream_cpu_us_per_s": idle_cpu * 1e6 / count / (scenarios.DURATION / 2),
        "idle_stream_count": float(count),
    }
