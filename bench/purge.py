"""The `purge` scenario (PostgreSQL): retention purging old rows while publishing goes on.

The bench's database gets OLD_EVENTS month-old events, each with a succeeded delivery and one
attempt (bench/growth.py's fill). PublishEvent runs at a paced rate (open loop) for half the
duration, then again while a separate process runs the service's retention purge
(RetentionService.purge, what `serve` runs every `retention_interval`) over all of them, then
half the duration again. Figures: rows of events, deliveries and attempts removed per second of
purge, and the publish p99 during the purge against the p99 without it (the mean of the phases
before and after) in the same run."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg

from . import scenarios
from .growth import _fill, _subscribe, _subscription_ids
from .harness import Cluster, Stubs, event_request, percentile

OLD_EVENTS = 200_000
RATE = 100.0
# Before the rows filled a month ago, after everything published by the bench.
_OLD = "now() - interval '7 days'"
_COUNT_OLD = f"""
    SELECT (SELECT count(*) FROM events WHERE published_at < {_OLD})
         + (SELECT count(*) FROM deliveries WHERE created_at < {_OLD})
         + (SELECT count(*) FROM attempts WHERE attempted_at < {_OLD})
"""


async def purge(cluster: Cluster) -> dict[str, float]:
    events = scenarios.scaled(OLD_EVENTS)
    await _subscribe(cluster, "pu")
    subscriptions = await asyncio.to_thread(_subscription_ids, cluster.database_url)
    await asyncio.to_thread(_fill, cluster.database_url, events, subscriptions)
    stubs = Stubs(cluster.target)
    counter = iter(range(10**9))
    try:
        await _publish(stubs, counter, scenarios.scaled_seconds(1.0))  # warm-up
        before = await _publish(stubs, counter, scenarios.DURATION / 2)
        old_rows = await asyncio.to_thread(_count_old, cluster.database_url)
        purger = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.purge",
            cluster.database_url,
            stdout=asyncio.subprocess.PIPE,
        )
        latencies = await _publish(stubs, counter, None, until=purger)
        report = json.loads((await purger.communicate())[0])
        during = [ms for began, ms in latencies if report["began"] <= began <= report["ended"]]
        after = await _publish(stubs, counter, scenarios.DURATION / 2)
    finally:
        await stubs.close()
    left = await asyncio.to_thread(_count_old, cluster.database_url)
    seconds = report["ended"] - report["began"]
    without = (_p99(before) + _p99(after)) / 2
    return {
        "purge_old_rows": float(old_rows),
        "purge_rows_per_s": (old_rows - left) / seconds,
        "purge_s": seconds,
        "publish_p99_ms": without,
        "purge_publish_p99_ms": percentile(during, 0.99),
        "purge_publish_p99_ratio": percentile(during, 0.99) / without,
    }


def _p99(latencies: list[tuple[float, float]]) -> float:
    return percentile([ms for _, ms in latencies], 0.99)


async def _publish(
    stubs: Stubs,
    counter: Iterator[int],
    duration: float | None,
    until: asyncio.subprocess.Process | None = None,
) -> list[tuple[float, float]]:
    """PublishEvent at RATE a second (open loop) for `duration`, or until `until` exits; each
    call's start (epoch) and latency in ms."""
    latencies: list[tuple[float, float]] = []
    tasks = []

    async def one(i: int) -> None:
        began, start = time.time(), time.perf_counter()
        await stubs.events.PublishEvent(event_request(i))
        latencies.append((began, (time.perf_counter() - start) * 1000))

    def going() -> bool:
        if until is not None:
            return until.returncode is None
        return time.perf_counter() - begin < (duration or 0.0)

    begin = time.perf_counter()
    sent = 0
    while going():
        tasks.append(asyncio.create_task(one(next(counter))))
        sent += 1
        await asyncio.sleep(max(0.0, begin + sent / RATE - time.perf_counter()))
    await asyncio.gather(*tasks)
    return latencies


def _count_old(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(_COUNT_OLD).fetchone()  # type: ignore[arg-type]
        return int(row[0]) if row else 0


async def _run_purge(database_url: str) -> dict[str, float]:
    """What `serve` runs, in a process of its own: the bench's event loop stays the publisher's."""
    from webhook_grpc.config import RetentionSettings
    from webhook_grpc.services.retention import RetentionService
    from webhook_grpc.storage.factory import open_storage

    storage = open_storage(database_url)
    try:
        settings = RetentionSettings(retention_days=7, retention_interval=timedelta(hours=1))
        service = RetentionService(storage, settings)
        began = time.time()
        events = await service.purge()
        return {"events": events, "began": began, "ended": time.time()}
    finally:
        await storage.dispose()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run_purge(sys.argv[1]))))
