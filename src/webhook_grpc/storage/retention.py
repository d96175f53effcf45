"""Purging events past retention, and the per-tenant watermark that makes old cursors fail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition

from . import state
from .events import E

_LOCK_KEY = "webhook_grpc:retention"


def _watermark_name(tenant_id: str) -> str:
    return f"purged_through:{tenant_id}"


async def try_lock(conn: AsyncConnection) -> bool:
    """One purger at a time across processes (PostgreSQL); held until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return True
    result = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": _LOCK_KEY}
    )
    return bool(result.scalar_one())


async def purge_batch(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` events published before `cutoff` (deliveries and attempts cascade)
    and raise each affected tenant's watermark. Returns how many events were deleted."""
    oldest = (
        select(E.c.seq).where(E.c.published_at < cutoff).order_by(E.c.published_at).limit(limit)
    )
    result = await conn.execute(
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
        current = await purged_through(conn, tenant_id)
        if current is None or current < position:
            await state.put(conn, _watermark_name(tenant_id), f"{position.tx}:{position.seq}")
    return count


async def purged_through(conn: AsyncConnection, tenant_id: str) -> FeedPosition | None:
    value = await state.get(conn, _watermark_name(tenant_id))
    if value is None:
        return None
    tx, _, seq = value.partition(":")
    return FeedPosition(int(tx), int(seq))


async def oldest_published_at(conn: AsyncConnection, tenant_id: str) -> datetime | None:
    query = select(func.min(E.c.published_at)).where(E.c.tenant_id == tenant_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None
