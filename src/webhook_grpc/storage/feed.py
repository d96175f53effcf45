"""Feed reads: events of one tenant in (tx, seq) order, never past the visibility horizon.

On PostgreSQL a row is served only when its writing transaction id is below the oldest
transaction of this database still running: every transaction that could still commit a row
sorts after everything served so far, so a reader never skips a late commit. See
docs/FEED_ORDERING.md. On SQLite writers are serialised, so rowid order is commit order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    cast,
    false,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import StoredEvent

from .events import EVENT_COLUMNS, E, to_stored

# The oldest transaction of *this* database that may still commit: the snapshot's in-progress
# ids, less those that pg_stat_activity shows running in another database, else the snapshot's
# xmax (every id from there on is invisible to the snapshot anyway). The cluster-wide
# pg_snapshot_xmin would let any write transaction anywhere on the server (a CREATE DATABASE,
# another application's batch job) hold this feed back. An id that ended between the snapshot
# and the pg_stat_activity read is not attributed elsewhere, so it counts: the error is only
# ever towards waiting. backend_xid is 32 bits; it is compared with the id's low 32 bits.
_HORIZON = text(
    """(SELECT coalesce(
        (SELECT min(xip::text::bigint) FROM pg_snapshot_xip(s.snap) AS xip
         WHERE NOT EXISTS (
             SELECT 1 FROM pg_stat_activity AS a
             WHERE a.backend_xid::text::bigint = xip::text::bigint % 4294967296
               AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
        pg_snapshot_xmax(s.snap)::text::bigint)
     FROM (SELECT pg_current_snapshot() AS snap) AS s)"""
)


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


async def read_page(
    conn: AsyncConnection,
    tenant_id: str,
    after: FeedPosition,
    limit: int,
    patterns: Sequence[str] = (),
    entity_id: str = "",
) -> list[StoredEvent]:
    query = _page(conn, select(*EVENT_COLUMNS), tenant_id, after, patterns, entity_id)
    return [to_stored(row) for row in await conn.execute(query.limit(limit))]


async def read_sized(
    conn: AsyncConnection,
    tenant_id: str,
    after: FeedPosition,
    limit: int,
    patterns: Sequence[str] = (),
    entity_id: str = "",
) -> list[tuple[StoredEvent, int]]:
    """Like `read_page`, each event with the length of its stored JSON (data and previous),
    which is what it weighs in memory and on the wire, to a small factor."""
    size = func.length(cast(E.c.data, Text)) + func.coalesce(
        func.length(cast(E.c.previous, Text)), 0
    )
    query = _page(
        conn, select(*EVENT_COLUMNS, size.label("size")), tenant_id, after, patterns, entity_id
    )
    return [(to_stored(row), int(row.size)) for row in await conn.execute(query.limit(limit))]


def _page(
    conn: AsyncConnection,
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
    if conn.dialect.name == "postgresql":
        query = query.where(E.c.tx < _HORIZON)
    return query.order_by(E.c.tx, E.c.seq)


async def head(conn: AsyncConnection) -> FeedPosition:
    """A position after every event a reader may already have seen, before every later one."""
    if conn.dialect.name == "postgresql":
        return FeedPosition(int((await conn.execute(select(_HORIZON))).scalar_one()), 0)
    return FeedPosition(
        0, int((await conn.execute(select(func.coalesce(func.max(E.c.seq), 0)))).scalar_one())
    )
