"""The event feed: pages and live streams of a tenant's events, projected at read time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from webhook_grpc.config import FeedSettings
from webhook_grpc.domain.cursors import CursorCodec, FeedPosition
from webhook_grpc.domain.errors import InvalidArgument, OutOfRange
from webhook_grpc.domain.models import Event, StoredEvent
from webhook_grpc.domain.patterns import entity_of, validate_patterns
from webhook_grpc.domain.projection import project_stored, rules_version
from webhook_grpc.metrics import Metrics
from webhook_grpc.storage.ports import Storage, UnitOfWork, Wakeups, wait_for_wake

from .stream_slots import StreamSlots

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
STREAM_BATCH = 500
# A stream keeps the batch it is sending in memory (rows, events, protobuf) until its client
# has taken it, so the bytes of a batch, not its event count, bound what a stream whose client
# reads nothing costs the server. The first batch is small since sizes are not known yet.
STREAM_BATCH_BYTES = 128 * 1024
FIRST_STREAM_BATCH = 16
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


Send = Callable[[StreamMessage], Awaitable[None]]
"""Hands a message to the stream's client; returns once the transport has taken it."""


class FeedService:
    def __init__(
        self,
        storage: Storage,
        settings: FeedSettings,
        cursors: CursorCodec,
        notifier: Wakeups,
        metrics: Metrics,
        slots: StreamSlots | None = None,
    ) -> None:
        self._storage = storage
        self._open_streams = metrics.feed_streams
        self._wakeups = metrics.feed_stream_wakeups
        self._settings = settings
        self._cursors = cursors
        self._notifier = notifier
        self.slots = slots or StreamSlots(settings.max_streams_per_tenant, settings.max_streams)

    async def page(self, query: FeedQuery, page_size: int) -> FeedPage:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        patterns = await self._validated(query)
        async with self._storage.read() as unit:
            after = await self._start(unit, query, from_latest=False)
            events, _ = await self._read(unit, query, after, size + 1, patterns)
        page = events[:size]
        last = page[-1].cursor if page else self._cursors.encode(query.tenant_id, after)
        return FeedPage(page, last, has_more=len(events) > size)

    async def stream(self, query: FeedQuery, from_latest: bool, send: Send) -> None:
        """Send the backlog after the start, then live events, and a heartbeat after each idle
        `feed_heartbeat`; runs until cancelled. Each batch is read only once `send` has
        returned for the one before, so a client that stops reading holds one batch of the
        server's memory, not its backlog. Raises OutOfRange as soon as events this stream has
        not sent yet are purged, instead of jumping over them."""
        with self.slots.hold(query.tenant_id):
            patterns = await self._validated(query)
            waiter = self._notifier.waiter(query.tenant_id)
            self._open_streams.inc()
            try:
                await self._follow(query, from_latest, patterns, waiter, send)
            finally:
                self._open_streams.dec()
                self._notifier.forget(waiter)

    async def _follow(
        self,
        query: FeedQuery,
        from_latest: bool,
        patterns: Sequence[str],
        waiter: asyncio.Event,
        send: Send,
    ) -> None:
        async with self._storage.read() as unit:
            position = await self._start(unit, query, from_latest)
            floor = await unit.retention.purged_through(query.tenant_id)
        # From an empty cursor the stream owes its client the earliest events retained when it
        # reads them: until it has sent one, a purge moves its start rather than skipping.
        moving_start = not query.after_cursor and not from_latest
        limit = FIRST_STREAM_BATCH
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        recheck: timedelta | None = None
        while True:
            # A wake-up, even one that came while the last read ran, announces a commit the
            # next read may not see yet (below the horizon): look again soon until the next
            # wake-up, also after reads that return older events.
            if waiter.is_set() and self._storage.wakeup_precedes_visibility:
                recheck = RECHECK_FIRST
            waiter.clear()
            async with self._storage.read() as unit:
                sized = await unit.feed.read_sized(
                    query.tenant_id, position, limit, patterns, query.entity_id
                )
                # After the read, in its transaction: a purge that committed before the read
                # (so that the read jumped over purged events) shows here. One that commits
                # later shows at the next batch, before anything past it is sent.
                purged = await unit.retention.purged_through(query.tenant_id)
                if _purged_past(position, purged, floor):
                    if not moving_start:
                        raise await self._purged(unit, query)
                    floor = purged
                batch = _within_bytes(sized, STREAM_BATCH_BYTES)
                events = await self.present(unit, [stored for stored, _ in batch])
            if events:
                position = batch[-1][0].position
                moving_start = False
                limit = _next_limit(batch)
                await send(StreamMessage(events, events[-1].cursor))
                idle_since = loop.time()
                continue
            now = loop.time()
            heartbeat_in = self._settings.feed_heartbeat.total_seconds() - (now - idle_since)
            if heartbeat_in <= 0:
                await send(StreamMessage([], self._cursors.encode(query.tenant_id, position)))
                idle_since = now
                continue
            timeout = self._settings.poll_interval.total_seconds()
            if recheck is not None:
                timeout = recheck.total_seconds()
                recheck = min(recheck * 2, self._settings.poll_interval)
            if await wait_for_wake(waiter, min(timeout, heartbeat_in)):
                self._wakeups.inc()

    async def _validated(self, query: FeedQuery) -> tuple[str, ...]:
        if not query.tenant_id:
            raise InvalidArgument("tenant_id", "is required")
        if not query.patterns:
            return ()
        async with self._storage.read() as unit:
            known = await unit.registry.type_names()
        return tuple(validate_patterns(query.patterns, known, "event_patterns"))

    async def _start(self, unit: UnitOfWork, query: FeedQuery, from_latest: bool) -> FeedPosition:
        if query.after_cursor:
            position = self._cursors.decode(query.tenant_id, query.after_cursor, "after_cursor")
            purged = await unit.retention.purged_through(query.tenant_id)
            if purged is not None and position < purged:
                raise await self._purged(unit, query)
            return position
        if from_latest:
            return await unit.feed.head()
        return FeedPosition(0, 0)

    async def _purged(self, unit: UnitOfWork, query: FeedQuery) -> OutOfRange:
        oldest = await unit.retention.oldest_published_at(query.tenant_id)
        reach = (
            f"the feed now starts at {oldest.isoformat()}" if oldest else "no events are retained"
        )
        return OutOfRange(
            f"events after this cursor were purged (retention is "
            f"{self._settings.retention_days} days); {reach}; restart from an empty cursor"
        )

    async def _read(
        self,
        unit: UnitOfWork,
        query: FeedQuery,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str],
    ) -> tuple[list[Event], FeedPosition | None]:
        stored = await unit.feed.read_page(query.tenant_id, after, limit, patterns, query.entity_id)
        return await self.present(unit, stored), stored[-1].position if stored else None

    async def present(self, unit: UnitOfWork, stored: Sequence[StoredEvent]) -> list[Event]:
        """Events as a consumer may see them: re-projected with the current schema (a field
        reclassified as confidential since publishing disappears; events stored under the
        current rules are left as they are) and with their cursor."""
        # Per type, not per event: a batch holds hundreds of events of a few types.
        entities = {type: entity_of(type) for type in {s.event.type for s in stored}}
        schemas = await unit.registry.entity_fields(set(entities.values()))
        versions = {entity: rules_version(rules) for entity, rules in schemas.items()}
        encode = self._cursors.encode
        events = []
        for item in stored:
            entity = entities[item.event.type]
            cursor = encode(item.event.tenant_id, item.position)
            events.append(project_stored(item, schemas[entity], versions[entity], cursor))
        return events


def _purged_past(
    position: FeedPosition, purged: FeedPosition | None, floor: FeedPosition | None
) -> bool:
    """Whether a purge removed an event after `position` since the stream started, when the
    purge watermark stood at `floor`. Events at or below the watermark are gone, so a watermark
    past the stream's position means it would skip; one that has not moved since the start
    only covers events the stream was never owed (its start is after them)."""
    return purged is not None and purged > position and (floor is None or purged > floor)


def _within_bytes(
    sized: list[tuple[StoredEvent, int]], budget: int
) -> list[tuple[StoredEvent, int]]:
    """The leading events whose sizes fit in `budget`, and always the first."""
    total = 0
    for index, (_, size) in enumerate(sized):
        total += size
        if total > budget and index:
            return sized[:index]
    return sized


def _next_limit(batch: list[tuple[StoredEvent, int]]) -> int:
    """How many events to read next: about STREAM_BATCH_BYTES' worth at the sizes just seen."""
    average = max(1, sum(size for _, size in batch) // len(batch))
    return max(1, min(STREAM_BATCH, STREAM_BATCH_BYTES // average))
