"""The `tenants` scenario: publish → receiver latency with many tenants (issue 20).

1,000 tenants with 2 subscriptions each (one to receiver endpoint `tenants_a`, one to
`tenants_b`), 200 events/s spread round-robin over the tenants, one dispatcher: every event
makes two deliveries, each to a subscription that sees one event every 5 s, so the dispatcher
works 2,000 lanes that are nearly always empty instead of one busy one."""

from __future__ import annotations

import asyncio
import time

from webhook_grpc._gen.webhooks.v1 import events_pb2

from . import scenarios
from .harness import Cluster, Stubs, event_request, percentile, truncate

TENANTS = 1000
RATE = 200
ENDPOINTS = ("tenants_a", "tenants_b")


def _tenant(i: int) -> str:
    return f"tenant-{i:04d}"


def _event(i: int, tenants: int) -> events_pb2.PublishEventRequest:
    request = event_request(i)
    request.tenant_id = _tenant(i % tenants)
    return request


async def _subscribe_all(stubs: Stubs, cluster: Cluster, tenants: int) -> None:
    pending = [(_tenant(t), name) for t in range(tenants) for name in ENDPOINTS]

    async def worker() -> None:
        while pending:
            tenant, name = pending.pop()
            await stubs.subscribe(cluster.receiver_url(name), ["product.*"], tenant=tenant)

    await asyncio.gather(*(worker() for _ in range(16)))


async def _arrived(cluster: Cluster) -> int:
    return min([(await cluster.receiver_stats(name))["unique"] for name in ENDPOINTS])


async def tenants_latency(cluster: Cluster) -> dict[str, float]:
    """tenants_1000_latency_p99_ms: publish (start of the call) → arrival at the receiver, over
    both deliveries of every event."""
    tenants = scenarios.scaled(TENANTS)
    truncate(cluster.database_url)
    await scenarios._reset_receiver(cluster)
    stubs = Stubs(cluster.target)
    dispatcher = cluster.live_dispatcher()
    try:
        await _subscribe_all(stubs, cluster, tenants)
        # Wait for the dispatcher's first deliveries (its start-up is not latency), then forget.
        await stubs.events.PublishEvent(_event(-1, tenants))
        deadline = time.perf_counter() + 60
        while await _arrived(cluster) == 0:
            if time.perf_counter() > deadline:
                raise RuntimeError("the dispatcher did not deliver within 60 s")
            await asyncio.sleep(0.05)
        await scenarios._reset_receiver(cluster)

        before = (dispatcher.usage(), cluster.server().usage())
        started = await scenarios._paced_publish(
            stubs, RATE, scenarios.DURATION, "product.created", lambda i: _event(i, tenants)
        )
        for name in ENDPOINTS:
            await scenarios._settle(cluster, name, len(started), timeout=2.0)
        used = (dispatcher.usage() - before[0], cluster.server().usage() - before[1])
        arrivals = [
            (await cluster.receiver_stats(name, arrivals=True))["arrivals"] for name in ENDPOINTS
        ]
    finally:
        await stubs.close()
    latencies = [
        (endpoint[event_id] - sent) * 1000
        for endpoint in arrivals
        for event_id, sent in started.items()
        if event_id in endpoint
    ]
    return {
        "tenants_1000_latency_p50_ms": percentile(latencies, 0.5),
        "tenants_1000_latency_p99_ms": percentile(latencies, 0.99),
        "tenants_1000_delivered_fraction": len(latencies) / max(2 * len(started), 1),
        # Where the time goes: CPU per delivery (dispatcher) and per publish (server), and the
        # share of the interval the dispatcher's loop waited for a CPU while it had work.
        "tenants_dispatcher_cpu_ms": used[0].cpu * 1000 / max(len(latencies), 1),
        "tenants_server_cpu_ms": used[1].cpu * 1000 / max(len(started), 1),
        "tenants_dispatcher_loop_waiting": used[0].loop_waiting / scenarios.DURATION,
    }
