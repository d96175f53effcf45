"""Event rows: inserting a published batch, and reading them back by id, key or feed position."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import Event

from .tables import EventRow
from .tables.base import table_of

E = table_of(EventRow)


@dataclass(frozen=True)
class StoredEvent:
    """An event row with its feed position (the cursor is made from it by the service)."""

    event: Event
    position: FeedPosition


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
        ),
        FeedPosition(m["tx"], m["seq"]),
    )


async def insert_new(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> dict[str, FeedPosition]:
    """Insert events; a row whose (tenant_id, idempotency_key) exists already is skipped.

    Returns the feed position of each inserted event by id."""
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        columns = {key: [row[key] for row in rows] for key in _INSERT_COLUMNS}
        for key in ("data", "previous"):
            columns[key] = [None if v is None else json.dumps(v) for v in columns[key]]
        result = await conn.execute(_INSERT_POSTGRES, columns)
        return {row.id: FeedPosition(row.tx, row.seq) for row in result}
    statement = (
        sqlite.insert(E)
        .on_conflict_do_nothing(
            index_elements=[E.c.tenant_id, E.c.idempotency_key],
            index_where=E.c.idempotency_key.is_not(None),
        )
        .returning(E.c.id, E.c.tx, E.c.seq)
    )
    result = await conn.execute(statement, list(rows))
    return {row.id: FeedPosition(row.tx, row.seq) for row in result}


_INSERT_COLUMNS = (
    "id",
    "tenant_id",
    "type",
    "entity_id",
    "data",
    "previous",
    "occurred_at",
    "published_at",
    "idempotency_key",
)
# PostgreSQL: the batch as arrays in one short statement. A multi-row VALUES statement is
# different text for every batch size and long enough that psycopg re-parses it each time.
_INSERT_POSTGRES = text(
    """
    INSERT INTO events (id, tenant_id, type, entity_id, data, previous, occurred_at,
                        published_at, idempotency_key)
    SELECT id, tenant_id, type, entity_id, CAST(data AS json), CAST(previous AS json),
           occurred_at, published_at, idempotency_key
    FROM unnest(CAST(:id AS text[]), CAST(:tenant_id AS text[]), CAST(:type AS text[]),
                CAST(:entity_id AS text[]), CAST(:data AS text[]), CAST(:previous AS text[]),
                CAST(:occurred_at AS timestamptz[]), CAST(:published_at AS timestamptz[]),
                CAST(:idempotency_key AS text[]))
         AS b(id, tenant_id, type, entity_id, data, previous, occurred_at, published_at,
              idempotency_key)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, tx, seq
    """
)


async def by_idempotency_keys(
    conn: AsyncConnection, tenant_id: str, keys: Sequence[str]
) -> dict[str, StoredEvent]:
    if not keys:
        return {}
    query = select(*EVENT_COLUMNS, E.c.idempotency_key).where(
        E.c.tenant_id == tenant_id, E.c.idempotency_key.in_(sorted(set(keys)))
    )
    return {row.idempotency_key: to_stored(row) for row in await conn.execute(query)}


async def by_id(conn: AsyncConnection, event_id: str) -> StoredEvent | None:
    row = (await conn.execute(select(*EVENT_COLUMNS).where(E.c.id == event_id))).first()
    return to_stored(row) if row else None


async def by_ids(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
    if not event_ids:
        return {}
    query = select(*EVENT_COLUMNS).where(E.c.id.in_(sorted(set(event_ids))))
    return {row.id: to_stored(row) for row in await conn.execute(query)}


def published_before(cutoff: datetime) -> Any:
    return E.c.published_at < cutoff
