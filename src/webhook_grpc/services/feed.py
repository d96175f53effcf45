"""The event feed: pages and live streams of a tenant's events, projected at read time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc import metrics
from webhook_grpc.config import Settings
from webhook_grpc.domain.cursors import CursorCodec, FeedPosition
from webhook_grpc.domain.errors import InvalidArgument, OutOfRange
from webhook_grpc.domain.models import Event
from webhook_grpc.domain.patterns import entity_of, validate_patterns
from webhook_grpc.domain.projection import project_event
from webhook_grpc.storage import feed as feed_store
from webhook_grpc.storage import registry as registry_store
from webhook_grpc.storage import retention as retention_store
from webhook_grpc.storage.database import Database
from webhook_grpc.storage.events import StoredEvent
from webhook_grpc.storage.notifications import Notifier

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
STREAM_BATCH = 500
# After a wake-up that found nothing visible yet (a transaction below the horizon is still
# open), look again soon rather than at the next poll.
RECHECK_FIRST = timedelta(milliseconds=5)


@dataclass(frozen=True)
class FeedQuery:
    tenant_id: str
    after_cursor: str = ""
    patterns: tuple[str, ...] = ()
    entity_id: str = ""


@dataclass(frozen=True)
class FeedPage:
    events: list[Event]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class StreamMessage:
    """A batch of events, or (events empty) an idle heartbeat; `cursor` resumes after it."""

    events: list[Event]
    cursor: str


class FeedService:
    def __init__(
        self, db: Database, settings: Settings, cursors: CursorCodec, notifier: Notifier
    ) -> None:
        self._db = db
        self._settings = settings
        self._cursors = cursors
        self._notifier = notifier

    async def page(self, query: FeedQuery, page_size: int) -> FeedPage:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        patterns = await self._validated(query)
        async with self._db.read() as conn:
            after = await self._start(conn, query, from_latest=False)
            events, _ = await self._read(conn, query, after, size + 1, patterns)
        page = events[:size]
        last = page[-1].cursor if page else self._cursors.encode(query.tenant_id, after)
        return FeedPage(page, last, has_more=len(events) > size)

    async def stream(self, query: FeedQuery, from_latest: bool) -> AsyncIterator[StreamMessage]:
        """The backlog after the start, then live events; a heartbeat after each idle
        `feed_heartbeat`. Runs until the caller stops iterating."""
        patterns = await self._validated(query)
        waiter = self._notifier.waiter()
        metrics.FEED_STREAMS.inc()
        try:
            async with self._db.read() as conn:
                position = await self._start(conn, query, from_latest)
            idle_since = asyncio.get_running_loop().time()
            recheck: timedelta | None = None
            while True:
                # A wake-up, even one that came while the last read ran, announces a commit
                # the next read may not see yet (below the horizon): look again soon until the
                # next wake-up, also after reads that return older events.
                if waiter.is_set() and self._db.is_postgres:
                    recheck = RECHECK_FIRST
                waiter.clear()
                async with self._db.read() as conn:
                    batch, last = await self._read(conn, query, position, STREAM_BATCH, patterns)
                if batch and last is not None:
                    position = last
                    yield StreamMessage(batch, batch[-1].cursor)
                    idle_since = asyncio.get_running_loop().time()
                    continue
                now = asyncio.get_running_loop().time()
                heartbeat_in = self._settings.feed_heartbeat.total_seconds() - (now - idle_since)
                if heartbeat_in <= 0:
                    yield StreamMessage([], self._cursors.encode(query.tenant_id, position))
                    idle_since = now
                    continue
                timeout = self._settings.poll_interval.total_seconds()
                if recheck is not None:
                    timeout = recheck.total_seconds()
                    recheck = min(recheck * 2, self._settings.poll_interval)
                await _wait(waiter, min(timeout, heartbeat_in))
        finally:
            metrics.FEED_STREAMS.dec()
            self._notifier.forget(waiter)

    async def _validated(self, query: FeedQuery) -> tuple[str, ...]:
        if not query.tenant_id:
            raise InvalidArgument("tenant_id", "is required")
        if not query.patterns:
            return ()
        async with self._db.read() as conn:
            known = await registry_store.type_names(conn)
        return tuple(validate_patterns(query.patterns, known, "event_patterns"))

    async def _start(
        self, conn: AsyncConnection, query: FeedQuery, from_latest: bool
    ) -> FeedPosition:
        if query.after_cursor:
            position = self._cursors.decode(query.tenant_id, query.after_cursor, "after_cursor")
            purged = await retention_store.purged_through(conn, query.tenant_id)
            if purged is not None and position < purged:
                oldest = await retention_store.oldest_published_at(conn, query.tenant_id)
                reach = (
                    f"the feed now starts at {oldest.isoformat()}"
                    if oldest
                    else "no events are retained"
                )
                raise OutOfRange(
                    f"events after this cursor were purged (retention is "
                    f"{self._settings.retention_days} days); {reach}; restart from an empty cursor"
                )
            return position
        if from_latest:
            return await feed_store.head(conn)
        return FeedPosition(0, 0)

    async def _read(
        self,
        conn: AsyncConnection,
        query: FeedQuery,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str],
    ) -> tuple[list[Event], FeedPosition | None]:
        stored = await feed_store.read_page(
            conn, query.tenant_id, after, limit, patterns, query.entity_id
        )
        return await self.present(conn, stored), stored[-1].position if stored else None

    async def present(self, conn: AsyncConnection, stored: Sequence[StoredEvent]) -> list[Event]:
        """Events as a consumer may see them: re-projected with the current schema (a field
        reclassified as confidential since publishing disappears) and with their cursor."""
        schemas = await registry_store.entity_fields(
            conn, {entity_of(s.event.type) for s in stored}
        )
        return [
            project_event(
                item.event,
                schemas[entity_of(item.event.type)],
                cursor=self._cursors.encode(item.event.tenant_id, item.position),
            )
            for item in stored
        ]


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(timeout, 0.001))
        return True
    return False
