"""PostgreSQL's feed reads as one plain SQL statement: a catch-up reads thousands of rows a
second, and SQLAlchemy's statement and result processing (compilation, mappings, type
decorators) cost as much CPU as the rest of serving them. It still runs through SQLAlchemy's
connection (exec_driver_sql), which cleans up after a read cancelled halfway (a stream's client
going away): psycopg_path's direct use of the driver connection left such connections unclosed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import Event, StoredEvent
from webhook_grpc.domain.trace_context import TraceContext

from .horizon import HORIZON_SQL


async def read_sized(
    conn: AsyncConnection,
    tenant_id: str,
    after: FeedPosition,
    limit: int,
    patterns: Sequence[str],
    entity_id: str,
) -> list[tuple[StoredEvent, int]]:
    """As CoreFeed.read_sized: the visible events after `after`, each with its stored size."""
    exact = [p for p in patterns if not p.endswith(".*")]
    prefixes = [_like_prefix(p[:-1]) for p in patterns if p.endswith(".*")]
    params = {
        "tenant_id": tenant_id,
        "tx": after.tx,
        "seq": after.seq,
        "any_type": not patterns or "*" in patterns,
        "exact": exact,
        "prefixes": prefixes,
        "entity_id": entity_id,
        "limit": limit,
    }
    # Plain rows of the statement's columns, unpacked by position below.
    rows = cast(Iterable[tuple[Any, ...]], await conn.exec_driver_sql(_READ, params))
    read: list[tuple[StoredEvent, int]] = []
    for (
        id,
        tenant,
        type,
        entity,
        data,
        previous,
        occurred_at,
        published_at,
        tx,
        seq,
        trace_context,
        rules_version,
        size,
    ) in rows:
        event = Event(
            id,
            tenant,
            type,
            entity,
            data,
            previous,
            _utc(occurred_at),
            _utc(published_at),
            "",
            TraceContext.from_text(trace_context),
        )
        read.append((StoredEvent(event, FeedPosition(tx, seq), rules_version), size))
    return read


def _utc(value: datetime) -> datetime:
    # Sessions run in UTC (storage.py), so psycopg's datetimes carry datetime.UTC already;
    # converting from another zone costs more per row than the rest of the row.
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix` (LIKE's default escape is \\)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# The patterns as SQLAlchemy's CoreFeed writes them, with the parameters of every query in one
# prepared statement. `%` is doubled for psycopg.
_READ = (
    """
    SELECT id, tenant_id, type, entity_id, data, previous, occurred_at, published_at, tx, seq,
           trace_context, rules_version,
           length(data::text) + coalesce(length(previous::text), 0) AS size
    FROM events
    WHERE tenant_id = %(tenant_id)s
      AND (tx, seq) > (%(tx)s::bigint, %(seq)s::bigint)
      AND (%(any_type)s::boolean OR type = ANY(%(exact)s::text[])
           OR type LIKE ANY(%(prefixes)s::text[]))
      AND (%(entity_id)s::text = '' OR entity_id = %(entity_id)s::text)
      AND tx < """
    + HORIZON_SQL.replace("%", "%%")
    + """
    ORDER BY tx, seq
    LIMIT %(limit)s::bigint
"""
)
