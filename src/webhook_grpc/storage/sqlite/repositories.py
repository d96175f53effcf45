"""SQLite's side of publishing, subscriptions, the feed and retention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import sqlite

from webhook_grpc.domain.cursors import FeedPosition

from ..common.deliveries import D
from ..common.events import CoreEvents, E
from ..common.feed import CoreFeed
from ..common.registry import types_with_schemas
from ..common.retention import CoreRetention
from ..common.subscriptions import CoreSubscriptions, active_recipients, by_tenant
from ..ports import NewDelivery, NewEvent, PublishContext


class SqliteEvents(CoreEvents):
    async def publish_context(self, event_types: set[str], tenant_ids: set[str]) -> PublishContext:
        known, schemas = await types_with_schemas(self._conn, event_types)
        found = await active_recipients(self._conn, tenant_ids)
        return PublishContext(known, schemas, by_tenant(found, tenant_ids))

    async def insert_with_deliveries(
        self,
        events: Sequence[NewEvent],
        deliveries: Sequence[NewDelivery],
        context: PublishContext | None = None,
    ) -> dict[str, FeedPosition]:
        # Two statements in the caller's write transaction. SQLite keeps no contexts: the
        # one given was read for this publish, and is never stale.
        if not events:
            return {}
        statement = (
            sqlite.insert(E)
            .on_conflict_do_nothing(
                index_elements=[E.c.tenant_id, E.c.idempotency_key],
                index_where=E.c.idempotency_key.is_not(None),
            )
            .returning(E.c.id, E.c.tx, E.c.seq)
        )
        result = await self._conn.execute(statement, list(events))
        positions = {row.id: FeedPosition(row.tx, row.seq) for row in result}
        inserted: list[Any] = [
            {
                **d,
                "event_tx": positions[d["event_id"]].tx,
                "event_seq": positions[d["event_id"]].seq,
            }
            for d in deliveries
            if d["event_id"] in positions
        ]
        if inserted:
            await self._conn.execute(D.insert(), inserted)
        return positions


class SqliteSubscriptions(CoreSubscriptions):
    async def lock_tenant(self, tenant_id: str) -> None:
        """Nothing to do: write transactions already hold the database's write lock."""


class SqliteFeed(CoreFeed):
    """Writers are serialised, so rowid (seq) order is commit order: every row is visible."""

    async def head(self) -> FeedPosition:
        query = select(func.coalesce(func.max(E.c.seq), 0))
        return FeedPosition(0, int((await self._conn.execute(query)).scalar_one()))

    def _visible(self, query: Select[Any]) -> Select[Any]:
        return query


class SqliteRetention(CoreRetention):
    async def try_lock(self) -> bool:
        """Always: one process uses a SQLite database (storage/process_lock.py), and its write
        transaction holds the write lock."""
        return True
