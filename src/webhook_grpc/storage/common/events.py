"""Event rows read back by id or idempotency key (the same SQL on every engine)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import DeliveryStatus, Event, StoredEvent
from webhook_grpc.domain.trace_context import TraceContext

from ..ports import NewDelivery, NewEvent, PublishContext
from ..tables import DeliveryRow, EventRow
from ..tables.base import table_of

E = table_of(EventRow)
D = table_of(DeliveryRow)
# What keeps an event from being replayed to a subscription: a delivery that reached it, or one
# that still may (replaying that would send the event twice).
DELIVERED_OR_UNDER_WAY = (DeliveryStatus.SUCCEEDED.value, DeliveryStatus.PENDING.value)


EVENT_COLUMNS = (
    E.c.id,
    E.c.tenant_id,
    E.c.type,
    E.c.entity_id,
    E.c.data,
    E.c.previous,
    E.c.occurred_at,
    E.c.published_at,
    E.c.tx,
    E.c.seq,
    E.c.trace_context,
    E.c.rules_version,
)


def to_stored(row: Row[*tuple[Any, ...]]) -> StoredEvent:
    m = row._mapping
    return StoredEvent(
        Event(
            id=m["id"],
            tenant_id=m["tenant_id"],
            type=m["type"],
            entity_id=m["entity_id"],
            data=m["data"],
            previous=m["previous"],
            occurred_at=m["occurred_at"],
            published_at=m["published_at"],
            trace_context=TraceContext.from_text(m["trace_context"]),
        ),
        FeedPosition(m["tx"], m["seq"]),
        m["rules_version"],
    )


async def by_ids(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
    if not event_ids:
        return {}
    query = select(*EVENT_COLUMNS).where(E.c.id.in_(sorted(set(event_ids))))
    return {row.id: to_stored(row) for row in await conn.execute(query)}


class CoreEvents(ABC):
    """What a driver adds is abstract here."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @abstractmethod
    async def publish_context(
        self, event_types: set[str], tenant_ids: set[str]
    ) -> PublishContext: ...

    @abstractmethod
    async def insert_with_deliveries(
        self,
        events: Sequence[NewEvent],
        deliveries: Sequence[NewDelivery],
        context: PublishContext | None = None,
    ) -> dict[str, FeedPosition]: ...

    async def by_idempotency_keys(
        self, tenant_id: str, keys: Sequence[str]
    ) -> dict[str, StoredEvent]:
        if not keys:
            return {}
        query = select(*EVENT_COLUMNS, E.c.idempotency_key).where(
            E.c.tenant_id == tenant_id, E.c.idempotency_key.in_(sorted(set(keys)))
        )
        return {row.idempotency_key: to_stored(row) for row in await self._conn.execute(query)}

    async def by_ids(self, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        return await by_ids(self._conn, event_ids)

    async def not_delivered_to(
        self,
        tenant_id: str,
        subscription_id: str,
        since: datetime,
        until: datetime | None,
        *,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[StoredEvent]:
        delivered = exists().where(
            D.c.event_id == E.c.id,
            D.c.subscription_id == subscription_id,
            D.c.status.in_(DELIVERED_OR_UNDER_WAY),
        )
        query = (
            select(*EVENT_COLUMNS)
            .where(
                E.c.tenant_id == tenant_id,
                E.c.published_at >= since,
                ~delivered,
            )
            .order_by(E.c.published_at, E.c.seq)
            .limit(limit)
        )
        if until is not None:
            query = query.where(E.c.published_at < until)
        if after is not None:
            query = query.where(tuple_(E.c.published_at, E.c.seq) > tuple_(*after))
        return [to_stored(row) for row in await self._conn.execute(query)]
