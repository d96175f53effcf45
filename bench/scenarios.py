"""Benchmark scenarios (issue 7). Each returns its figures and the raw baseline measured in the
same run, so the ratio holds on a noisy shared machine even when absolute numbers move."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psycopg
from google.protobuf import json_format
from psycopg.types.json import Json

from webhook_grpc._gen.webhooks.v1 import events_pb2, feed_pb2, subscriptions_pb2

from .harness import Cluster, Stubs, Usage, analyze, event_request, percentile, truncate
from .idle_stream import idle_stream
from .signing import signing_figures
from .tenants import tenants_latency
from .workers import publish_unary

DURATION = 10.0
SCALE = 1.0
"""Multiplies every backlog size and warm-up: `python -m bench --smoke` shrinks it so that every
scenario runs for a moment and only shows that it still produces its figures."""


def scaled(count: int) -> int:
    return max(1, round(count * SCALE))


def scaled_seconds(seconds: float) -> float:
    return seconds * SCALE


async def _closed_loop(workers: int, duration: float, call: Any) -> int:
    """Run `call()` from `workers` concurrent loops for `duration` seconds; count completions."""
    done = 0
    deadline = time.perf_counter() + duration

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    await asyncio.gather(*(loop() for _ in range(workers)))
    return done


async def raw_publish_txns(database_url: str, workers: int, duration: float) -> float:
    """Baseline: psycopg transactions inserting one event row and one delivery row each."""
    connections = [await psycopg.AsyncConnection.connect(database_url) for _ in range(workers)]
    now = datetime.now(UTC)
    queue = iter(range(10**9))

    async def worker(conn: psycopg.AsyncConnection[Any]) -> int:
        count = 0
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            i = next(queue)
            event_id = f"evt_raw_{uuid.uuid4().hex}"
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO events (id, tenant_id, type, entity_id, data, occurred_at,"
                    " published_at) VALUES (%s, 'raw', 'product.created', %s, %s, %s, %s)",
                    (event_id, f"p{i}", Json({"id": f"p{i}", "sku": "A"}), now, now),
                )
                await conn.execute(
                    "INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, event_type,"
                    " status, attempt_count, next_attempt_at, created_at, updated_at)"
                    " VALUES (%s, 'raw', %s, 'sub_raw', 'product.created', 'done', 0, %s, %s, %s)",
                    (f"dlv_raw_{uuid.uuid4().hex}", event_id, now, now, now),
                )
            count += 1
        return count

    try:
        counts = await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for conn in connections:
            await conn.close()
    return sum(counts) / duration


async def publish_batch(cluster: Cluster) -> dict[str, float]:
    stubs = Stubs(cluster.target)
    batch = events_pb2.PublishEventsRequest(events=[event_request(i) for i in range(500)])
    try:

        async def call() -> None:
            await stubs.events.PublishEvents(batch)

        done = await _closed_loop(4, DURATION, call)
    finally:
        await stubs.close()
    return {"publish_batch_eps": done * 500 / DURATION}


async def raw_posts(url: str, concurrency: int, duration: float) -> float:
    """Baseline: aiohttp client POSTs of a delivery-sized body to the same receiver."""
    body = b'{"id":"evt_raw","type":"product.created","data":{"id":"p1","sku":"A"}}' * 2
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> None:
            async with session.post(url, data=body, headers={"webhook-id": "raw"}) as response:
                await response.read()

        done = await _closed_loop(concurrency, duration, call)
    return done / duration


async def _drain_rate(cluster: Cluster, names: list[str], total: int, timeout: float) -> float:
    """Deliveries per second while the receiver fills up to `total` (first to last arrival)."""
    start = time.perf_counter()
    first_seen: float | None = None
    seen = 0
    while time.perf_counter() - start < timeout:
        seen = sum([(await cluster.receiver_stats(n))["unique"] for n in names])
        if seen and first_seen is None:
            first_seen = time.perf_counter()
        if seen >= total:
            break
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - (first_seen or start)
    return seen / max(elapsed, 1e-9)


async def _backlog(
    cluster: Cluster,
    endpoints: int,
    events: int,
    algorithm: subscriptions_pb2.SigningAlgorithm.ValueType = (
        subscriptions_pb2.SIGNING_ALGORITHM_HMAC_SHA256
    ),
) -> list[str]:
    truncate(cluster.database_url)
    await _reset_receiver(cluster)
    names = [f"d{i}" for i in range(endpoints)]
    stubs = Stubs(cluster.target)
    try:
        for name in names:
            await stubs.subscribe(cluster.receiver_url(name), ["product.*"], algorithm=algorithm)
        await stubs.publish_backlog(events)
    finally:
        await stubs.close()
    analyze(cluster.database_url)
    return names


async def delivery(
    cluster: Cluster,
    algorithm: subscriptions_pb2.SigningAlgorithm.ValueType = (
        subscriptions_pb2.SIGNING_ALGORITHM_HMAC_SHA256
    ),
) -> dict[str, float]:
    """Sustained deliveries: a backlog drained by one dispatcher process, against raw POSTs.
    Secrets are encrypted at rest: the dispatcher decrypts them once per lease batch."""
    endpoints, events = 4, scaled(5000)
    names = await _backlog(cluster, endpoints, events, algorithm)
    dispatcher = cluster.start_dispatcher()
    try:
        dps = await _drain_rate(cluster, names, endpoints * events, timeout=120)
    finally:
        dispatcher.stop()
    concurrency = endpoints * 16  # endpoint_concurrency per subscription
    raw = await raw_posts(cluster.receiver_url("raw"), concurrency, DURATION / 2)
    return {"delivery_dps": dps, "delivery_raw_posts_per_s": raw, "delivery_ratio": dps / raw}


async def fifo(cluster: Cluster) -> dict[str, float]:
    """Deliveries per second to one FIFO endpoint answering at once: one attempt at a time,
    each after the previous one is recorded (SPEC §11), so bounded by the round trips."""
    events = scaled(2000)
    truncate(cluster.database_url)
    await _reset_receiver(cluster)
    stubs = Stubs(cluster.target)
    try:
        await stubs.subscribe(
            cluster.receiver_url("fifo"), ["product.*"], ordering=subscriptions_pb2.ORDERING_FIFO
        )
        await stubs.publish_backlog(events)
    finally:
        await stubs.close()
    analyze(cluster.database_url)
    dispatcher = cluster.start_dispatcher()
    try:
        dps = await _drain_rate(cluster, ["fifo"], events, timeout=120)
    finally:
        dispatcher.stop()
    return {"fifo_dps": dps}


async def scaleout(cluster: Cluster) -> dict[str, float]:
    endpoints, events = 8, scaled(2500)
    rates = []
    for processes in (1, 2):
        names = await _backlog(cluster, endpoints, events)
        workers = [cluster.start_dispatcher() for _ in range(processes)]
        try:
            rates.append(await _drain_rate(cluster, names, endpoints * events, timeout=120))
        finally:
            for worker in workers:
                worker.stop()
        await _reset_receiver(cluster)
    return {
        "scaleout_1_dps": rates[0],
        "scaleout_2_dps": rates[1],
        "scaleout_ratio": rates[1] / rates[0],
    }


# A simple filter every benchmark event matches (selling_price is "19.90"), so both runs make
# the same deliveries and differ only by evaluating it.
SIMPLE_FILTER = 'type == "product.created" && double(data.selling_price) > 10.0'


async def _publish_and_deliver(cluster: Cluster, filter: str) -> float:
    """Deliveries per second from the first publish to the last arrival, with a dispatcher
    running, to endpoints whose subscriptions all have `filter` (evaluated when publishing)."""
    endpoints, events = 4, scaled(1000)
    truncate(cluster.database_url)
    await _reset_receiver(cluster)
    names = [f"f{i}" for i in range(endpoints)]
    stubs = Stubs(cluster.target)
    cluster.live_dispatcher()
    try:
        for name in names:
            await stubs.subscribe(cluster.receiver_url(name), ["product.*"], filter=filter)
        # A warm-up event, awaited at every endpoint and then forgotten (waiting for the first
        # one only and resetting raced the others' arrivals: 60 s lost per run when it hit).
        await stubs.events.PublishEvent(event_request(-1, "product.created"))
        await _drain_rate(cluster, names, len(names), timeout=60)
        await _reset_receiver(cluster)
        began = time.perf_counter()
        await stubs.publish_backlog(events)
        await _drain_rate(cluster, names, endpoints * events, timeout=120)
        delivered = sum([(await cluster.receiver_stats(n))["unique"] for n in names])
        return delivered / (time.perf_counter() - began)
    finally:
        await stubs.close()


async def filters(cluster: Cluster) -> dict[str, float]:
    """filter_overhead_ratio: publish-to-delivery rate with a simple filter on every
    subscription / without, in the same run (runs interleaved A B B A against drift)."""
    without, with_filter = [], []
    for filter in ("", SIMPLE_FILTER, SIMPLE_FILTER, ""):
        rate = await _publish_and_deliver(cluster, filter)
        (with_filter if filter else without).append(rate)
    plain, filtered = sum(without) / 2, sum(with_filter) / 2
    return {
        "filter_dps": filtered,
        "filter_unfiltered_dps": plain,
        "filter_overhead_ratio": filtered / plain,
    }


async def _reset_receiver(cluster: Cluster) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{cluster.receiver_port}/reset") as response,
    ):
        await response.read()


async def _warm_up(cluster: Cluster, stubs: Stubs, endpoint: str) -> None:
    """Wait until a just-started dispatcher delivers: its start-up (interpreter, imports,
    connections) takes about a second here, and events published meanwhile would measure it
    instead of delivery latency. Forgets the warm-up delivery afterwards."""
    await stubs.events.PublishEvent(event_request(-1, "product.created"))
    deadline = time.perf_counter() + 60
    while (await cluster.receiver_stats(endpoint))["count"] == 0:
        if time.perf_counter() > deadline:
            raise RuntimeError("the dispatcher did not deliver within 60 s")
        await asyncio.sleep(0.05)
    await _reset_receiver(cluster)


async def _settle(cluster: Cluster, endpoint: str, expected: int, timeout: float) -> None:
    """Wait until `endpoint` has received `expected` events, or `timeout` seconds; later ones
    count as not delivered."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if (await cluster.receiver_stats(endpoint))["unique"] >= expected:
            return
        await asyncio.sleep(0.05)


async def _paced_publish(
    stubs: Stubs,
    rate: float,
    duration: float,
    event_type: str,
    make: Callable[[int], events_pb2.PublishEventRequest] | None = None,
) -> dict[str, float]:
    """Publish at `rate` events/s (open loop) the events `make(i)` (default: `event_request`);
    returns publish start time (epoch) by event id."""
    started: dict[str, float] = {}
    interval = 1 / rate
    begin = time.perf_counter()
    tasks = []

    async def one(i: int) -> None:
        sent = time.time()
        response = await stubs.events.PublishEvent(
            make(i) if make else event_request(i, event_type)
        )
        started[response.event.id] = sent

    i = 0
    while time.perf_counter() - begin < duration:
        tasks.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(max(0.0, begin + i * interval - time.perf_counter()))
    await asyncio.gather(*tasks)
    return started


async def latency(cluster: Cluster) -> dict[str, float]:
    """Publish → receiver, at 200 events/s, with the dispatcher running."""
    truncate(cluster.database_url)
    await _reset_receiver(cluster)
    stubs = Stubs(cluster.target)
    cluster.live_dispatcher()
    try:
        await stubs.subscribe(cluster.receiver_url("latency"), ["product.*"])
        await _warm_up(cluster, stubs, "latency")
        started = await _paced_publish(stubs, 200, DURATION, "product.created")
        await _settle(cluster, "latency", len(started), timeout=2.0)
        arrivals = (await cluster.receiver_stats("latency", arrivals=True))["arrivals"]
    finally:
        await stubs.close()
    latencies = [(arrivals[i] - t) * 1000 for i, t in started.items() if i in arrivals]
    return {
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_delivered_fraction": len(latencies) / max(len(started), 1),
    }


async def feed_catchup(cluster: Cluster) -> dict[str, float]:
    truncate(cluster.database_url)
    stubs = Stubs(cluster.target)
    total = scaled(100_000)
    try:
        await stubs.publish_backlog(total)
        analyze(cluster.database_url)
        begin = time.perf_counter()
        seen = 0
        call = stubs.feed.StreamEvents(feed_pb2.StreamEventsRequest(tenant_id="bench"))
        async for message in call:
            seen += len(message.events)
            if seen >= total:
                break
        elapsed = time.perf_counter() - begin
        call.cancel()
    finally:
        await stubs.close()
    return {"feed_catchup_eps": seen / elapsed}


async def feed_tail(cluster: Cluster) -> dict[str, float]:
    truncate(cluster.database_url)
    stubs = Stubs(cluster.target)
    received: dict[str, float] = {}
    try:
        call = stubs.feed.StreamEvents(
            feed_pb2.StreamEventsRequest(tenant_id="bench", from_latest=True)
        )

        async def read() -> None:
            async for message in call:
                now = time.time()
                for event in message.events:
                    received[event.id] = now

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        started = await _paced_publish(stubs, 200, DURATION, "product.created")
        await asyncio.sleep(1.0)
        call.cancel()
        reader.cancel()
    finally:
        await stubs.close()
    latencies = [(received[i] - t) * 1000 for i, t in started.items() if i in received]
    return {
        "feed_tail_p50_ms": percentile(latencies, 0.5),
        "feed_tail_p99_ms": percentile(latencies, 0.99),
    }


async def isolation(cluster: Cluster) -> dict[str, float]:
    """A healthy endpoint's p99 alone, then beside one that hangs to the delivery timeout.
    One dispatcher serves both runs (the hanging endpoint comes only in the second)."""
    p99 = []
    dispatcher = cluster.start_dispatcher(delivery_timeout="2s", lease_duration="10s")
    try:
        for hanging in (False, True):
            truncate(cluster.database_url)
            await _reset_receiver(cluster)
            stubs = Stubs(cluster.target)
            try:
                await stubs.subscribe(cluster.receiver_url("healthy"), ["product.*"])
                await _warm_up(cluster, stubs, "healthy")
                if hanging:
                    await stubs.subscribe(cluster.receiver_url("hang", seconds="5"), ["product.*"])
                started = await _paced_publish(stubs, 100, DURATION, "product.created")
                await _settle(cluster, "healthy", len(started), timeout=2.0)
                arrivals = (await cluster.receiver_stats("healthy", arrivals=True))["arrivals"]
            finally:
                await stubs.close()
            p99.append(
                percentile(
                    [(arrivals[i] - t) * 1000 for i, t in started.items() if i in arrivals],
                    0.99,
                )
            )
    finally:
        dispatcher.stop(timeout=10)
    return {
        "isolation_p99_alone_ms": p99[0],
        "isolation_p99_beside_hang_ms": p99[1],
        "isolation_ratio": p99[1] / p99[0],
    }


async def dispatcher_rss(cluster: Cluster) -> dict[str, float]:
    """Peak RSS of a dispatcher process working through a 200,000-delivery backlog."""
    truncate(cluster.database_url)
    await _reset_receiver(cluster)
    stubs = Stubs(cluster.target)
    try:
        for i in range(4):
            await stubs.subscribe(cluster.receiver_url(f"rss{i}"), ["product.*"])
        await stubs.publish_backlog(scaled(50_000))
    finally:
        await stubs.close()
    analyze(cluster.database_url)
    dispatcher = cluster.start_dispatcher()
    peak = 0.0
    try:
        for _ in range(max(1, int(DURATION * 2))):
            await asyncio.sleep(0.5)
            peak = max(peak, dispatcher.peak_rss_mb())
    finally:
        dispatcher.stop()
    return {"dispatcher_rss_mb": peak}


async def rest(cluster: Cluster) -> dict[str, float]:
    """REST against gRPC in the same run: PublishEvent at the same concurrency, and paging
    through the feed with ListEvents (1000 a page)."""
    stubs = Stubs(cluster.target)
    server = cluster.server()
    counter = iter(range(10**9))
    url = f"{cluster.http}/api/v1/webhooks"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await stubs.subscribe(cluster.receiver_url("rest"), ["product.*"])

            async def grpc_call() -> None:
                await stubs.events.PublishEvent(event_request(next(counter)))

            async def rest_call() -> None:
                body = json_format.MessageToJson(event_request(next(counter)), indent=None)
                async with session.post(
                    f"{url}/events", data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    assert response.status == 201, await response.text()

            await _closed_loop(16, scaled_seconds(2.0), grpc_call)  # warm-up
            await _closed_loop(16, scaled_seconds(2.0), rest_call)
            # Alternating rounds, so that the load of a shared machine falls on both alike.
            # The server's CPU per call tells cost from waiting: on a loaded machine the rates
            # move with the CPU the kernel grants the server's event loop thread, and the share
            # of time that thread waited for a CPU while it had work shows how much.
            rounds, done, used = 5, {"grpc": 0, "rest": 0}, {"grpc": Usage(), "rest": Usage()}
            for _ in range(rounds):
                for name, call in (("grpc", grpc_call), ("rest", rest_call)):
                    before = server.usage()
                    done[name] += await _closed_loop(16, DURATION / rounds, call)
                    used[name] += server.usage() - before
            grpc_done, rest_done = done["grpc"], done["rest"]
            grpc_eps, rest_eps = grpc_done / DURATION, rest_done / DURATION

            truncate(cluster.database_url)
            total = scaled(50_000)
            await stubs.publish_backlog(total)
            analyze(cluster.database_url)

            async def grpc_page(after: str) -> tuple[int, str, bool]:
                page = await stubs.feed.ListEvents(
                    feed_pb2.ListEventsRequest(
                        tenant_id="bench", after_cursor=after, page_size=1000
                    )
                )
                return len(page.events), page.next_cursor, page.has_more

            async def rest_page(after: str) -> tuple[int, str, bool]:
                query = {"tenant_id": "bench", "after_cursor": after, "page_size": "1000"}
                async with session.get(f"{url}/events", params=query) as response:
                    page = await response.json()
                return len(page["events"]), page["next_cursor"], page["has_more"]

            grpc_list = await _page_rate(grpc_page)
            rest_list = await _page_rate(rest_page)
    finally:
        await stubs.close()
    return {
        "rest_publish_eps": rest_eps,
        "grpc_publish_eps": grpc_eps,
        "rest_publish_ratio": rest_eps / grpc_eps,
        "rest_publish_cpu_ms": used["rest"].cpu * 1000 / max(rest_done, 1),
        "grpc_publish_cpu_ms": used["grpc"].cpu * 1000 / max(grpc_done, 1),
        "rest_publish_loop_waiting": used["rest"].loop_waiting / DURATION,
        "grpc_publish_loop_waiting": used["grpc"].loop_waiting / DURATION,
        "rest_list_events_eps": rest_list,
        "grpc_list_events_eps": grpc_list,
    }


async def _page_rate(page: Any) -> float:
    """Events per second reading the whole feed from the start, a page at a time."""
    begin = time.perf_counter()
    seen, cursor, more = 0, "", True
    while more:
        count, cursor, more = await page(cursor)
        seen += count
    return seen / (time.perf_counter() - begin)


async def delivery_ed25519(cluster: Cluster) -> dict[str, float]:
    """`delivery` with Ed25519 subscriptions (v1a signatures instead of HMAC)."""
    figures = await delivery(cluster, subscriptions_pb2.SIGNING_ALGORITHM_ED25519)
    return {
        "delivery_ed25519_dps": figures["delivery_dps"],
        "delivery_ed25519_ratio": figures["delivery_ratio"],
    }


async def signing(_cluster: Cluster) -> dict[str, float]:
    """µs per delivery signature (HMAC, Ed25519) and per secret decryption (in this process)."""
    return signing_figures(scaled(20_000))


SCENARIOS = {
    "publish_unary": publish_unary,
    "publish_batch": publish_batch,
    "delivery": delivery,
    "feed_catchup": feed_catchup,
    "feed_tail": feed_tail,
    "isolation": isolation,
    "scaleout": scaleout,
    "fifo": fifo,
    "dispatcher_rss": dispatcher_rss,
    "rest": rest,
    "delivery_ed25519": delivery_ed25519,
    "signing": signing,
    # These three share one running dispatcher (Cluster.live_dispatcher), so they run together.
    "latency": latency,
    "tenants": tenants_latency,
    "filters": filters,
    "idle_stream": idle_stream,
}
LIVE_DISPATCHER = frozenset({"latency", "tenants", "filters"})
"""Scenarios that need a dispatcher running and nothing more: they share one (`python -m
bench` stops it before any other scenario, whose events it would deliver)."""

# Scenarios in modules of their own (which read DURATION and SCALE from here at run time).
from .growth import growth  # noqa: E402
from .purge import purge  # noqa: E402
from .sqlite import sqlite  # noqa: E402

SCENARIOS["sqlite"] = sqlite
SCENARIOS["growth"] = growth
SCENARIOS["purge"] = purge
