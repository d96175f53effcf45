"""The `publish_unary` scenario: PublishEvent with one server process and with `serve --workers
2`, against raw psycopg transactions, in one run (issue 20).

SO_REUSEPORT spreads connections, not calls, over the workers: the callers use several
channels (each its own connection), the same for both, so that the two figures differ only by
the number of server processes."""

from __future__ import annotations

import asyncio
import itertools

import grpc

from webhook_grpc._gen.webhooks.v1 import events_pb2_grpc

from . import scenarios
from .harness import Cluster, Process, Stubs, Usage, event_request

CALLERS = 16
CHANNELS = 8
ROUNDS = 2
"""Alternating rounds of each configuration, against the drift of a shared machine."""


async def _publish_rate(target: str, server: Process, duration: float) -> tuple[int, Usage]:
    """PublishEvent calls completed by CALLERS callers over CHANNELS connections in `duration`
    seconds, and the server's CPU (every process of it) meanwhile."""
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CHANNELS)
    ]
    stubs = itertools.cycle([events_pb2_grpc.EventServiceStub(c) for c in channels])
    counter = itertools.count()
    try:
        callers = [next(stubs) for _ in range(CALLERS)]
        # Connect every channel first: a connection's set-up is not a publish.
        await asyncio.gather(*(c.channel_ready() for c in channels))
        before = server.tree_usage()
        done = 0
        deadline = asyncio.get_running_loop().time() + duration

        async def loop(stub: events_pb2_grpc.EventServiceStub) -> None:
            nonlocal done
            while asyncio.get_running_loop().time() < deadline:
                await stub.PublishEvent(event_request(next(counter)))
                done += 1

        await asyncio.gather(*(loop(stub) for stub in callers))
        return done, server.tree_usage() - before
    finally:
        for channel in channels:
            await channel.close()


async def publish_unary(cluster: Cluster) -> dict[str, float]:
    stubs = Stubs(cluster.target)
    try:
        await stubs.subscribe(cluster.receiver_url("unary"), ["product.*"])
    finally:
        await stubs.close()
    pooled, pooled_target, _ = cluster.start_another_server(
        "server_workers2", serve_dispatcher=False, workers=2
    )
    servers = {1: (cluster.server(), cluster.target), 2: (pooled, pooled_target)}
    done = {1: 0, 2: 0}
    used = {1: Usage(), 2: Usage()}
    try:
        for server, target in servers.values():  # warm-up
            await _publish_rate(target, server, scenarios.scaled_seconds(2.0))
        for _ in range(ROUNDS):
            for workers, (server, target) in servers.items():
                calls, cpu = await _publish_rate(target, server, scenarios.DURATION / ROUNDS)
                done[workers] += calls
                used[workers] += cpu
    finally:
        pooled.stop()
    duration = scenarios.DURATION
    raw = await scenarios.raw_publish_txns(cluster.database_url, CALLERS, duration)
    return {
        "publish_unary_eps": done[1] / duration,
        "publish_unary_raw_tps": raw,
        "publish_unary_ratio": done[1] / duration / raw,
        "publish_workers2_eps": done[2] / duration,
        "publish_workers2_ratio": done[2] / duration / raw,
        "publish_unary_cpu_ms": used[1].cpu * 1000 / max(done[1], 1),
        "publish_workers2_cpu_ms": used[2].cpu * 1000 / max(done[2], 1),
    }
