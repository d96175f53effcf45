"""The `growth` scenario (PostgreSQL): publish and delivery rates on nearly empty tables and with
1,000,000 old delivered rows (their events, deliveries and attempts, a month old, filled with
INSERT ... SELECT generate_series) in the tables, measured in the same run.

Two databases, each with its own API server: one stays nearly empty, the other gets the old rows;
the phases alternate between them. Each phase: 16 concurrent PublishEvent callers for half the
duration (the publish rate), then a backlog of 4 endpoints x 2,500 events drained by one
dispatcher process (the delivery rate). After the fill the tables are vacuumed and analyzed, as
autovacuum would have done long before rows a month old: what is measured is the cost of the
rows being there, not of a fresh bulk load still being vacuumed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from . import scenarios
from .harness import Cluster, Stubs, event_request, fresh_database, truncate

OLD_ROWS = 1_000_000
SMOKE_OLD_ROWS = 1_000
ENDPOINTS = 4

_FILL = [
    """
    INSERT INTO events (id, tenant_id, type, entity_id, data, occurred_at, published_at)
    SELECT 'evt_old_' || g, 'bench', 'product.created', 'p' || g,
           '{"id": "p1", "sku": "SKU-1", "name": "Widget", "selling_price": "19.90"}',
           now() - interval '30 days', now() - interval '30 days'
    FROM generate_series(1, %(rows)s) AS g
    """,
    """
    INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, event_type, status,
                            attempt_count, next_attempt_at, lease_token, created_at, updated_at)
    SELECT 'dlv_old_' || g, 'bench', 'evt_old_' || g,
           (%(subscriptions)s::text[])[1 + g %% cardinality(%(subscriptions)s::text[])],
           'product.created', 'succeeded', 1, NULL, NULL,
           now() - interval '30 days', now() - interval '30 days'
    FROM generate_series(1, %(rows)s) AS g
    """,
    """
    INSERT INTO attempts (delivery_id, subscription_id, attempt_number, attempted_at, succeeded,
                          status_code, latency_ms, error, error_message, response_body)
    SELECT d.id, d.subscription_id, 1, d.created_at, true, 200, 5.0, NULL, '', ''
    FROM deliveries AS d WHERE d.id LIKE 'dlv_old_%%'
    """,
]


async def growth(cluster: Cluster) -> dict[str, float]:
    """The bench's database stays nearly empty; a second one, with its own API server, gets the
    old rows. The phases alternate (empty, grown, grown, empty) so that a shared machine's drift
    falls on both alike."""
    rows = SMOKE_OLD_ROWS if scenarios.SCALE < 1 else OLD_ROWS
    with fresh_database() as grown_url:
        grown = Cluster(grown_url, receiver_port=cluster.receiver_port)
        try:
            grown.start_server(serve_dispatcher=False)
            empty_names = await _subscribe(cluster, "ge")
            grown_names = await _subscribe(grown, "gg")
            began = time.perf_counter()
            subscriptions = await asyncio.to_thread(_subscription_ids, grown_url)
            await asyncio.to_thread(_fill, grown_url, rows, subscriptions)
            fill_s = time.perf_counter() - began
            rates: dict[str, list[dict[str, float]]] = {"empty": [], "grown": []}
            # --smoke only shows that the figures come: one phase each.
            smoke = scenarios.SCALE < 1
            for label in ("empty", "grown") if smoke else ("empty", "grown", "grown", "empty"):
                on, names = (cluster, empty_names) if label == "empty" else (grown, grown_names)
                rates[label].append(await _phase(on, names))
        finally:
            grown.close()
    empty = {k: _mean([r[k] for r in rates["empty"]]) for k in ("publish", "delivery")}
    loaded = {k: _mean([r[k] for r in rates["grown"]]) for k in ("publish", "delivery")}
    return {
        "growth_old_rows": float(rows),
        "growth_fill_s": fill_s,
        "publish_empty_eps": empty["publish"],
        "publish_grown_eps": loaded["publish"],
        "publish_growth_ratio": loaded["publish"] / empty["publish"],
        "delivery_empty_dps": empty["delivery"],
        "delivery_grown_dps": loaded["delivery"],
        "delivery_growth_ratio": loaded["delivery"] / empty["delivery"],
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


async def _subscribe(cluster: Cluster, prefix: str) -> list[str]:
    truncate(cluster.database_url)
    names = [f"{prefix}{i}" for i in range(ENDPOINTS)]
    stubs = Stubs(cluster.target)
    try:
        for name in names:
            await stubs.subscribe(cluster.receiver_url(name), ["product.*"])
    finally:
        await stubs.close()
    return names


def _subscription_ids(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM subscriptions ORDER BY id")]


async def _phase(cluster: Cluster, names: list[str]) -> dict[str, float]:
    stubs = Stubs(cluster.target)
    try:
        return await _rates(cluster, stubs, names)
    finally:
        await stubs.close()


async def _rates(cluster: Cluster, stubs: Stubs, names: list[str]) -> dict[str, float]:
    counter = iter(range(10**9))

    async def call() -> None:
        await stubs.events.PublishEvent(event_request(next(counter)))

    await scenarios._closed_loop(16, scenarios.scaled_seconds(1.0), call)  # warm-up
    done = await scenarios._closed_loop(16, scenarios.DURATION / 2, call)
    publish = done / (scenarios.DURATION / 2)
    # Forget what that published (no dispatcher ran), then a backlog of known size.
    await asyncio.to_thread(
        _sql,
        cluster.database_url,
        "DELETE FROM events WHERE id IN (SELECT event_id FROM deliveries WHERE status = 'pending')",
    )
    await asyncio.to_thread(_maintain, cluster.database_url)
    await scenarios._reset_receiver(cluster)
    events = scenarios.scaled(2500)
    await stubs.publish_backlog(events)
    await asyncio.to_thread(_maintain, cluster.database_url)
    dispatcher = cluster.start_dispatcher()
    try:
        delivery = await scenarios._drain_rate(cluster, names, ENDPOINTS * events, timeout=120)
    finally:
        dispatcher.stop()
    await asyncio.to_thread(
        _sql, cluster.database_url, "DELETE FROM deliveries WHERE status = 'pending'"
    )
    return {"publish": publish, "delivery": delivery}


def _sql(database_url: str, statement: str, params: dict[str, Any] | None = None) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def _maintain(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("events", "deliveries", "attempts"):
            conn.execute(f"VACUUM (ANALYZE) {table}")  # type: ignore[arg-type]


def _fill(database_url: str, rows: int, subscriptions: list[str]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in _FILL:
            conn.execute(statement, {"rows": rows, "subscriptions": subscriptions})  # type: ignore[arg-type]
    _maintain(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
