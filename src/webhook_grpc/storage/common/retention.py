"""Purging events past retention, and the per-tenant watermark that makes old cursors fail.
The drivers add the lock that lets one purger run at a time.

The foreign keys' ON DELETE CASCADE takes the purged events' deliveries and attempts. On
PostgreSQL `seq IN (SELECT ... LIMIT n)` let the planner scan the whole events table for large
n: its driver runs the batch as a statement of its own."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition

from ..tables.deliveries import LEASED
from .deliveries import D, E
from .state import CoreState


def _watermark_name(tenant_id: str) -> str:
    return f"purged_through:{tenant_id}"


class CoreRetention(ABC):
    def __init__(self, conn: AsyncConnection, state: CoreState) -> None:
        self._conn = conn
        self._state = state

    @abstractmethod
    async def try_lock(self) -> bool: ...

    async def purge_batch(self, cutoff: datetime, limit: int) -> int:
        count, highest = await self._delete_oldest(cutoff, limit)
        for tenant_id, position in sorted(highest.items()):
            current = await self.purged_through(tenant_id)
            if current is None or current < position:
                await self._state.put(_watermark_name(tenant_id), f"{position.tx}:{position.seq}")
        return count

    async def _delete_oldest(
        self, cutoff: datetime, limit: int
    ) -> tuple[int, dict[str, FeedPosition]]:
        """Delete up to `limit` of the oldest events published before `cutoff` whose
        deliveries are not leased now (an attempt in flight is recorded first), and with them
        their deliveries and attempts: how many, and each tenant's highest position among
        them."""
        leased = select(D.c.event_id).where(text(LEASED))
        oldest = (
            select(E.c.seq)
            .where(E.c.published_at < cutoff, E.c.id.not_in(leased))
            .order_by(E.c.published_at)
            .limit(limit)
        )
        result = await self._conn.execute(
            delete(E).where(E.c.seq.in_(oldest)).returning(E.c.tenant_id, E.c.tx, E.c.seq)
        )
        highest: dict[str, FeedPosition] = {}
        count = 0
        for tenant_id, tx, seq in result:
            count += 1
            position = FeedPosition(tx, seq)
            if tenant_id not in highest or highest[tenant_id] < position:
                highest[tenant_id] = position
        return count, highest

    async def purged_through(self, tenant_id: str) -> FeedPosition | None:
        value = await self._state.get(_watermark_name(tenant_id))
        if value is None:
            return None
        tx, _, seq = value.partition(":")
        return FeedPosition(int(tx), int(seq))

    async def oldest_published_at(self, tenant_id: str) -> datetime | None:
        query = select(func.min(E.c.published_at)).where(E.c.tenant_id == tenant_id)
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return value if isinstance(value, datetime) else None
