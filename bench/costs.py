"""Per-unit costs for the capacity model of docs/SCALING.md: `python -m bench.costs [SECONDS]`.

CPU seconds per PublishEvent (server process, one and two workers), per delivery (dispatcher
process) and per feed event (server, catching up), each with the CPU of the PostgreSQL backends
serving this run's database and the rows and commits PostgreSQL counted for it
(pg_stat_database), all read over the same interval. Absolute figures move with the machine's
load; the CPU per unit moves much less than the rates do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from webhook_grpc._gen.webhooks.v1 import feed_pb2

from . import scenarios
from .harness import ADMIN_URL, Cluster, Process, Stubs, analyze, fresh_database, truncate
from .workers import _publish_rate


@dataclass
class Database:
    """CPU of the PostgreSQL backends of one database, and its row and commit counters."""

    url: str
    name: str

    def snapshot(self) -> dict[str, float]:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            pids = [
                row[0]
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)
                )
            ]
            row = conn.execute(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, blks_hit + blks_read,"
                " sessions"
                " FROM pg_stat_database WHERE datname = %s",
                (self.name,),
            ).fetchone()
        assert row is not None
        cpu = {pid: _cpu_seconds(pid) for pid in pids}
        return {
            **{f"pid{pid}": seconds for pid, seconds in cpu.items()},
            "commits": row[0],
            "inserted": row[1],
            "updated": row[2],
            "deleted": row[3],
            "blocks": row[4],
            "sessions": row[5],
        }

    def delta(self, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        # Backends present at both ends (the pools are warm by then).
        cpu = sum(after[k] - before[k] for k in after if k.startswith("pid") and k in before)
        counters = ("commits", "inserted", "updated", "deleted", "blocks", "sessions")
        return {"pg_cpu": cpu, **{k: after[k] - before[k] for k in counters}}


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measured(
    database: Database, process: Process, units: Any
) -> tuple[float, dict[str, float], float]:
    """Run `units()` (returns how many units it did) and read the process tree's CPU and the
    database's costs around it; PostgreSQL flushes its counters within a second."""
    await asyncio.sleep(1.5)
    db_before, cpu_before = database.snapshot(), process.tree_usage().cpu
    done = await units()
    await asyncio.sleep(1.5)
    db = database.delta(db_before, database.snapshot())
    return done, db, process.tree_usage().cpu - cpu_before


def _per_unit(prefix: str, done: float, db: dict[str, float], cpu: float) -> dict[str, float]:
    unit = max(done, 1)
    return {
        f"{prefix}_units": done,
        f"{prefix}_process_cpu_us": cpu * 1e6 / unit,
        f"{prefix}_pg_cpu_us": db["pg_cpu"] * 1e6 / unit,
        f"{prefix}_pg_commits": db["commits"] / unit,
        f"{prefix}_pg_rows_written": (db["inserted"] + db["updated"] + db["deleted"]) / unit,
        f"{prefix}_pg_blocks_touched": db["blocks"] / unit,
        f"{prefix}_pg_connections_opened": db["sessions"] / unit,
    }


async def costs(cluster: Cluster, duration: float) -> dict[str, float]:
    database = Database(cluster.database_url, cluster.database_url.rsplit("/", 1)[1])
    figures: dict[str, float] = {}
    stubs = Stubs(cluster.target)
    try:
        # Publishing: one subscription matches, so each event is one event and one delivery row.
        await stubs.subscribe(cluster.receiver_url("costs"), ["product.*"])
        server = cluster.server()

        async def publish_one() -> int:
            done, _ = await _publish_rate(cluster.target, server, duration)
            return done

        await publish_one()  # warm-up
        figures |= _per_unit("publish", *await _measured(database, server, publish_one))
        pooled, target, _ = cluster.start_another_server(
            "workers2", serve_dispatcher=False, workers=2
        )

        async def publish_two() -> int:
            done, _ = await _publish_rate(target, pooled, duration)
            return done

        await publish_two()
        figures |= _per_unit("publish_workers2", *await _measured(database, pooled, publish_two))
        pooled.stop()

        # Delivery: a backlog over 4 endpoints (the warm-up one among them) drained by one
        # dispatcher, started and warm before (its start-up is no delivery's cost) and stopped
        # (SIGSTOP) while the backlog is published, so that the interval holds only the
        # delivering. Nothing may TRUNCATE while it is stopped: it may hold a transaction open.
        truncate(cluster.database_url)
        await scenarios._reset_receiver(cluster)
        dispatcher = cluster.start_dispatcher()
        await stubs.subscribe(cluster.receiver_url("warm"), ["product.*"])
        await scenarios._warm_up(cluster, stubs, "warm")
        dispatcher.popen.send_signal(signal.SIGSTOP)
        names = ["warm", "d1", "d2", "d3"]
        for name in names[1:]:
            await stubs.subscribe(cluster.receiver_url(name), ["product.*"])
        await stubs.publish_backlog(5000)
        analyze(cluster.database_url)

        async def drain() -> int:
            dispatcher.popen.send_signal(signal.SIGCONT)
            await scenarios._drain_rate(cluster, names, 4 * 5000, timeout=600)
            return sum([(await cluster.receiver_stats(n))["unique"] for n in names])

        figures |= _per_unit("delivery", *await _measured(database, dispatcher, drain))
        dispatcher.stop()

        # Feed catch-up: one stream reading 50,000 events from the start.
        truncate(cluster.database_url)
        await stubs.publish_backlog(50_000)
        analyze(cluster.database_url)

        async def read_feed() -> int:
            seen = 0
            call = stubs.feed.StreamEvents(feed_pb2.StreamEventsRequest(tenant_id="bench"))
            async for message in call:
                seen += len(message.events)
                if seen >= 50_000:
                    break
            call.cancel()
            return seen

        figures |= _per_unit("feed", *await _measured(database, server, read_feed))
    finally:
        await stubs.close()
    return figures


async def main(duration: float) -> None:
    began = time.time()
    with fresh_database() as database_url:
        cluster = Cluster(database_url)
        try:
            cluster.start_receiver()
            cluster.start_server(serve_dispatcher=False)
            figures = await costs(cluster, duration)
        finally:
            cluster.close()
    figures["load_average_1m"] = os.getloadavg()[0]
    figures["seconds"] = time.time() - began
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
