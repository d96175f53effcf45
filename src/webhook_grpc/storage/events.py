"""Event rows: inserting a published batch, and reading them back by id, key or feed position."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import Event, StoredEvent

from . import deliveries as delivery_store
from . import driver
from .tables import EventRow
from .tables.base import table_of

E = table_of(EventRow)


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


async def insert_with_deliveries(
    conn: AsyncConnection, events: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]]
) -> dict[str, FeedPosition]:
    """Insert events and the deliveries of those inserted; an event whose (tenant_id,
    idempotency_key) exists already is skipped with its deliveries. One atomic statement on
    PostgreSQL; on SQLite, two in the caller's transaction.

    Returns the feed position of each inserted event by id."""
    if not events:
        return {}
    if conn.dialect.name == "postgresql":
        batch = driver.json_document({"events": events, "deliveries": deliveries})
        rows = await driver.fetch_all(conn, _PUBLISH_POSTGRES, {"batch": batch})
        return {event_id: FeedPosition(tx, seq) for event_id, tx, seq in rows}
    positions = await _insert_events_sqlite(conn, events)
    await delivery_store.insert_many(conn, [d for d in deliveries if d["event_id"] in positions])
    return positions


async def _insert_events_sqlite(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> dict[str, FeedPosition]:
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


# Events and their deliveries in one statement (a data-modifying CTE): atomic by itself, so
# publishing needs no BEGIN and COMMIT round trips. Joining on the inserted events drops the
# deliveries of an event skipped as an idempotent repeat. The batch travels as one JSON
# document: the statement text is the same for every batch size (prepared once), and one
# json.dumps costs far less than adapting a parameter per column and row.
_PUBLISH_POSTGRES = """
    WITH batch AS (SELECT CAST(%(batch)s AS json) AS doc),
    inserted AS (
        INSERT INTO events (id, tenant_id, type, entity_id, data, previous, occurred_at,
                            published_at, idempotency_key)
        SELECT e.id, e.tenant_id, e.type, e.entity_id, e.data, e.previous, e.occurred_at,
               e.published_at, e.idempotency_key
        FROM batch, json_to_recordset(batch.doc -> 'events')
             AS e(id text, tenant_id text, type text, entity_id text, data json, previous json,
                  occurred_at timestamptz, published_at timestamptz, idempotency_key text)
        ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, tx, seq
    ), delivered AS (
        INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, event_type, status,
                                attempt_count, next_attempt_at, lease_token, created_at,
                                updated_at)
        SELECT d.id, d.tenant_id, d.event_id, d.subscription_id, d.event_type, d.status,
               d.attempt_count, d.next_attempt_at, d.lease_token, d.created_at, d.updated_at
        FROM batch, json_to_recordset(batch.doc -> 'deliveries')
             AS d(id text, tenant_id text, event_id text, subscription_id text,
                  event_type text, status text, attempt_count int,
                  next_attempt_at timestamptz, lease_token text, created_at timestamptz,
                  updated_at timestamptz)
        JOIN inserted ON inserted.id = d.event_id
    )
    SELECT id, tx, seq FROM inserted
"""


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


def from_postgres_row(row: Sequence[Any]) -> StoredEvent:
    """A StoredEvent from the values of EVENT_COLUMNS, in that order, as psycopg reads them
    (the psycopg fast path, where no column type turns timestamps into UTC)."""
    event_id, tenant_id, type_, entity_id, data, previous, occurred, published, tx, seq = row
    event = Event(
        event_id,
        tenant_id,
        type_,
        entity_id,
        data,
        previous,
        occurred.astimezone(UTC),
        published.astimezone(UTC),
    )
    return StoredEvent(event, FeedPosition(tx, seq))


def published_before(cutoff: datetime) -> Any:
    return E.c.published_at < cutoff
