"""PostgreSQL's locks (advisory, per transaction) and the feed's visibility horizon."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, text

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import StoredEvent

from ..common.events import E
from ..common.feed import CoreFeed
from ..common.retention import CoreRetention
from ..common.subscriptions import CoreSubscriptions
from . import feed
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
