"""Feed reads: events of one tenant in (tx, seq) order. Each driver says which rows are
visible yet (`_visible`) and where the head is; see docs/FEED_ORDERING.md."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, false, func, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import StoredEvent

from .events import EVENT_COLUMNS, E, to_stored


def _type_filter(patterns: Sequence[str]) -> ColumnElement[bool]:
    if not patterns or "*" in patterns:
        return true()
    exact = [p for p in patterns if not p.endswith(".*")]
    clauses: list[ColumnElement[bool]] = [
        E.c.type.startswith(p[:-1], autoescape=True) for p in patterns if p.endswith(".*")
    ]
    if exact:
        clauses.append(E.c.type.in_(exact))
    return or_(false(), *clauses)


class CoreFeed(ABC):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def read_page(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[StoredEvent]:
        query = self._page(select(*EVENT_COLUMNS), tenant_id, after, patterns, entity_id)
        return [to_stored(row) for row in await self._conn.execute(query.limit(limit))]

    async def read_sized(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[tuple[StoredEvent, int]]:
        # The length of the stored JSON (data and previous) is what an event weighs in memory
        # and on the wire, to a small factor.
        size = func.length(cast(E.c.data, Text)) + func.coalesce(
            func.length(cast(E.c.previous, Text)), 0
        )
        query = self._page(
            select(*EVENT_COLUMNS, size.label("size")), tenant_id, after, patterns, entity_id
        )
        rows = await self._conn.execute(query.limit(limit))
        return [(to_stored(row), int(row.size)) for row in rows]

    @abstractmethod
    async def head(self) -> FeedPosition: ...

    @abstractmethod
    def _visible(self, query: Select[Any]) -> Select[Any]:
        """`query` limited to the rows a reader may be served now."""

    def _page(
        self,
        query: Select[Any],
        tenant_id: str,
        after: FeedPosition,
        patterns: Sequence[str],
        entity_id: str,
    ) -> Select[Any]:
        query = query.where(
            E.c.tenant_id == tenant_id,
            tuple_(E.c.tx, E.c.seq) > tuple_(after.tx, after.seq),
            _type_filter(patterns),
        )
        if entity_id:
            query = query.where(E.c.entity_id == entity_id)
        return self._visible(query).order_by(E.c.tx, E.c.seq)
