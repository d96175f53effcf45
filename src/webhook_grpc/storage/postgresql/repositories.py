"""PostgreSQL's locks (advisory, per transaction), the feed's visibility horizon and the
retention purge in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, text

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import StoredEvent

from ..common.events import E
from ..common.feed import CoreFeed
from ..common.retention import CoreRetention
from ..common.subscriptions import CoreSubscriptions
from ..tables.deliveries import LEASED
from . import feed, psycopg_path
from .horizon import HORIZON_SQL as HORIZON_SQL  # deliveries.py imports it from here

_RETENTION_LOCK_KEY = "webhook_grpc:retention"

_HORIZON = text(HORIZON_SQL)


class PostgresSubscriptions(CoreSubscriptions):
    async def lock_tenant(self, tenant_id: str) -> None:
        await self._conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"subscriptions:{tenant_id}"},
        )


class PostgresFeed(CoreFeed):
    """A row is served only when its writing transaction id is below the oldest transaction
    of this database still running: every transaction that could still commit a row sorts
    after everything served so far, so a reader never skips a late commit."""

    async def head(self) -> FeedPosition:
        return FeedPosition(int((await self._conn.execute(select(_HORIZON))).scalar_one()), 0)

    def _visible(self, query: Select[Any]) -> Select[Any]:
        return query.where(E.c.tx < _HORIZON)

    async def read_page(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[StoredEvent]:
        sized = await feed.read_sized(self._conn, tenant_id, after, limit, patterns, entity_id)
        return [stored for stored, _ in sized]

    async def read_sized(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[tuple[StoredEvent, int]]:
        return await feed.read_sized(self._conn, tenant_id, after, limit, patterns, entity_id)


class PostgresRetention(CoreRetention):
    async def try_lock(self) -> bool:
        result = await self._conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": _RETENTION_LOCK_KEY},
        )
        return bool(result.scalar_one())

    async def _delete_oldest(
        self, cutoff: datetime, limit: int
    ) -> tuple[int, dict[str, FeedPosition]]:
        """One statement (`_PURGE`), committed without waiting for the WAL flush: a purge
        lost in a crash is done again by the next run."""
        rows = await psycopg_path.fetch_all(self._conn, _PURGE, {"cutoff": cutoff, "limit": limit})
        highest = {row.tenant_id: FeedPosition(row.tx, row.seq) for row in rows}
        return (rows[0].purged if rows else 0), highest


# The oldest events past the cutoff, chosen once and deleted by key; the foreign keys' ON DELETE
# CASCADE removes their deliveries and attempts (through the indexes on deliveries.event_id and
# attempts.delivery_id). Deleting the children first by key was measured too: the cascade
# triggers still run and find nothing, 5.5-6.0 us of backend CPU per row against 4.5-4.7
# (docs/PERFORMANCE.md, purge). The keys travel as an array (`= ANY(ARRAY(...))`) so that events
# is reached through its primary key whatever the planner estimates: `seq IN (SELECT ...
# LIMIT n)` and joins to a CTE got a hash join over a full scan. The result: each tenant's
# highest purged position, and the count on every row.
_PURGE = f"""
    WITH relaxed AS (
        SELECT set_config('synchronous_commit', 'off', true)
    ), doomed AS MATERIALIZED (
        SELECT seq FROM events
        WHERE published_at < %(cutoff)s
          AND id NOT IN (SELECT event_id FROM deliveries WHERE {LEASED})
        ORDER BY published_at
        LIMIT %(limit)s
    ), events_gone AS (
        DELETE FROM events WHERE seq = ANY(ARRAY(SELECT seq FROM doomed))
        RETURNING tenant_id, tx, seq
    )
    SELECT DISTINCT ON (tenant_id) tenant_id, tx, seq, count(*) OVER () AS purged
    FROM events_gone, relaxed
    ORDER BY tenant_id, tx DESC, seq DESC
"""
