"""Purging events past retention, and the per-tenant watermark that makes old cursors fail.
The drivers add the lock that lets one purger run at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition

from .events import E
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
        oldest = (
            select(E.c.seq).where(E.c.published_at < cutoff).order_by(E.c.published_at).limit(limit)
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
        for tenant_id, position in sorted(highest.items()):
            current = await self.purged_through(tenant_id)
            if current is None or current < position:
                await self._state.put(_watermark_name(tenant_id), f"{position.tx}:{position.seq}")
        return count

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
