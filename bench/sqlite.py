"""The `sqlite` scenario: PublishEvent from 16 concurrent callers against `serve` on a SQLite
file (the embedded default, dispatcher in the same process), and a raw baseline in the same run:
one stdlib sqlite3 connection committing one event row and one delivery row per transaction on
the same file, with the server's pragmas, once the server has stopped."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from . import scenarios
from .harness import Cluster, Process, Stubs, Usage, event_request, percentile

PUBLISHERS = 16


async def sqlite(cluster: Cluster) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as directory:
        path = Path(directory) / "bench.db"
        embedded = Cluster(f"sqlite:///{path}", receiver_port=cluster.receiver_port)
        try:
            embedded.start_server()
            server = embedded.server()
            latencies, eps, used = await _publishers(embedded, server)
        finally:
            embedded.close()
        raw = await asyncio.to_thread(raw_sqlite_tps, path, scenarios.DURATION / 2)
    return {
        "sqlite_publish_eps": eps,
        "sqlite_publish_p50_ms": percentile(latencies, 0.5),
        "sqlite_publish_p99_ms": percentile(latencies, 0.99),
        "sqlite_publish_cpu_ms": used.cpu * 1000 / max(eps * scenarios.DURATION, 1),
        "sqlite_publish_loop_waiting": used.loop_waiting / scenarios.DURATION,
        "sqlite_raw_tps": raw,
        "sqlite_publish_ratio": eps / raw,
    }


async def _publishers(cluster: Cluster, server: Process) -> tuple[list[float], float, Usage]:
    """Latencies (ms) of every PublishEvent in the measured window, the rate, and the server's
    CPU time and its event loop's wait for a CPU over the window."""
    stubs = Stubs(cluster.target)
    latencies: list[float] = []
    counter = iter(range(10**9))
    try:
        await stubs.subscribe(cluster.receiver_url("sqlite"), ["product.*"])

        async def call() -> None:
            began = time.perf_counter()
            await stubs.events.PublishEvent(event_request(next(counter)))
            latencies.append((time.perf_counter() - began) * 1000)

        await scenarios._closed_loop(PUBLISHERS, scenarios.scaled_seconds(2.0), call)
        latencies.clear()
        before = server.usage()
        done = await scenarios._closed_loop(PUBLISHERS, scenarios.DURATION, call)
        used = server.usage() - before
    finally:
        await stubs.close()
    return latencies, done / scenarios.DURATION, used


def raw_sqlite_tps(path: Path, duration: float) -> float:
    """Transactions per second of one connection inserting an event and a delivery each."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    now = datetime.now(UTC).isoformat()
    count = 0
    deadline = time.perf_counter() + duration
    try:
        while time.perf_counter() < deadline:
            event_id = f"evt_raw_{uuid.uuid4().hex}"
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO events (id, tenant_id, type, entity_id, data, occurred_at,"
                " published_at) VALUES (?, 'raw', 'product.created', ?, ?, ?, ?)",
                (event_id, f"p{count}", '{"id": "p1", "sku": "A"}', now, now),
            )
            conn.execute(
                "INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, event_type,"
                " status, attempt_count, next_attempt_at, created_at, updated_at)"
                " VALUES (?, 'raw', ?, 'sub_raw', 'product.created', 'done', 0, ?, ?, ?)",
                (f"dlv_raw_{uuid.uuid4().hex}", event_id, now, now, now),
            )
            conn.execute("COMMIT")
            count += 1
    finally:
        conn.close()
    return count / duration
