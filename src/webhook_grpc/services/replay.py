"""ReplayEvents: queue deliveries of stored events to one subscription (SPEC §11).

Backfill for a new endpoint, or catch-up after an outage: the events of a window that match the
subscription (its patterns and filter, and the request's patterns) and were not delivered to it.
An event whose delivery succeeded, or is still pending, is skipped, so replaying twice queues
nothing new; one whose deliveries all failed (or were cancelled, as disabling does) gets a new
delivery, the earlier ones staying as they were, with their attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from webhook_grpc.domain.filters import EventFilter, check_filter
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import DeliveryStatus, StoredEvent, Subscription, SubscriptionStatus
from webhook_grpc.domain.patterns import entity_of, matches_any, validate_patterns
from webhook_grpc.domain.projection import project_event
from webhook_grpc.storage.ports import NewDelivery, Storage, UnitOfWork, Wakeups

from .probe import TEST_EVENT_TYPE

MAX_EXAMINED = 10_000
"""Events one call looks at (and so queues at most); the rest is for the next call."""
PAGE = 500
# A test event belongs to the one subscription it was sent to; it is never replayed to another.
NEVER_REPLAYED = frozenset({TEST_EVENT_TYPE})


@dataclass(frozen=True)
class ReplayWindow:
    """Events published in [since, until); None means the oldest retained event / the latest."""

    since: datetime | None = None
    until: datetime | None = None
    event_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replayed:
    queued: int
    next_since: datetime | None
    """Where the next call continues (set when the call stopped before the window's end)."""

    @property
    def has_more(self) -> bool:
        return self.next_since is not None


class EventReplay:
    def __init__(
        self,
        storage: Storage,
        notifier: Wakeups,
        retention: timedelta,
        clock: Clock = system_clock,
        max_examined: int = MAX_EXAMINED,
    ) -> None:
        self._storage = storage
        self._notifier = notifier
        self._retention = retention
        self._clock = clock
        self._max_examined = max_examined

    async def replay(
        self, subscription_id: str, tenant_id: str | None, window: ReplayWindow
    ) -> Replayed:
        if not subscription_id:
            raise InvalidArgument("subscription_id", "is required")
        now = self._clock()
        oldest = now - self._retention
        since = max(window.since or oldest, oldest)
        until = window.until
        if window.since and until and window.since >= until:
            raise InvalidArgument("until", "must be later than since")
        async with self._storage.transaction() as unit:
            subscription = await _active(unit, subscription_id, tenant_id)
            narrowing = await _narrowing(unit, window.event_patterns)
            # One replay of a tenant at a time: two at once could queue the same event twice.
            await unit.subscriptions.lock_tenant(subscription.tenant_id)
            selection = _Selection(subscription, narrowing)
            replayed = await self._queue(unit, selection, since, until, now)
            if replayed.queued:
                unit.on_commit(self._notifier.wake)
        return replayed

    async def _queue(
        self,
        unit: UnitOfWork,
        selection: _Selection,
        since: datetime,
        until: datetime | None,
        now: datetime,
    ) -> Replayed:
        subscription = selection.subscription
        queued = examined = 0
        after: tuple[datetime, int] | None = None
        while examined < self._max_examined:
            page = await unit.events.not_delivered_to(
                subscription.tenant_id,
                subscription.id,
                since,
                until,
                after=after,
                limit=min(PAGE, self._max_examined - examined),
            )
            if not page:
                return Replayed(queued, None)
            examined += len(page)
            after = (page[-1].event.published_at, page[-1].position.seq)
            chosen = await selection.matching(unit, page)
            await unit.deliveries.insert([_delivery(item, subscription.id, now) for item in chosen])
            queued += len(chosen)
        following = await unit.events.not_delivered_to(
            subscription.tenant_id, subscription.id, since, until, after=after, limit=1
        )
        return Replayed(queued, following[0].event.published_at if following else None)


class _Selection:
    """Which stored events go to the subscription: its patterns, the request's, its filter,
    on the event projected with today's schema (as the dispatcher will send it)."""

    def __init__(self, subscription: Subscription, narrowing: Sequence[str]) -> None:
        self.subscription = subscription
        self._narrowing = narrowing
        self._filter: EventFilter | None = (
            check_filter(subscription.filter) if subscription.filter else None
        )

    def wants_type(self, event_type: str) -> bool:
        return (
            event_type not in NEVER_REPLAYED
            and matches_any(self.subscription.event_patterns, event_type)
            and (not self._narrowing or matches_any(self._narrowing, event_type))
        )

    async def matching(self, unit: UnitOfWork, page: list[StoredEvent]) -> list[StoredEvent]:
        wanted = [item for item in page if self.wants_type(item.event.type)]
        if self._filter is None or not wanted:
            return wanted
        schemas = await unit.registry.entity_fields({entity_of(i.event.type) for i in wanted})
        return [
            item
            for item in wanted
            if self._filter.matches(
                project_event(item.event, schemas.get(entity_of(item.event.type), {}))
            )
        ]


async def _active(unit: UnitOfWork, subscription_id: str, tenant_id: str | None) -> Subscription:
    subscription = await unit.subscriptions.get(subscription_id, tenant_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id!r} not found")
    if subscription.status is not SubscriptionStatus.ACTIVE:
        raise FailedPrecondition(f"subscription {subscription_id!r} is disabled; activate it first")
    return subscription


async def _narrowing(unit: UnitOfWork, patterns: Sequence[str]) -> list[str]:
    if not patterns:
        return []
    return validate_patterns(patterns, await unit.registry.type_names(), "event_patterns")


def _delivery(item: StoredEvent, subscription_id: str, now: datetime) -> NewDelivery:
    return {
        "id": new_id("dlv"),
        "tenant_id": item.event.tenant_id,
        "event_id": item.event.id,
        "subscription_id": subscription_id,
        "event_type": item.event.type,
        "status": DeliveryStatus.PENDING.value,
        "attempt_count": 0,
        "next_attempt_at": now,
        "lease_token": None,
        "created_at": now,
        "updated_at": now,
    }
