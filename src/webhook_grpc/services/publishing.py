"""Publishing: validate, project (privacy allowlist), store the event and its deliveries at once."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span, SpanKind

from webhook_grpc import tracing
from webhook_grpc.config import PublishingSettings
from webhook_grpc.domain.access import check_tenant_id
from webhook_grpc.domain.builtin_types import SERVICE_ENTITY, is_service_type
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.cursors import CursorCodec, FeedPosition
from webhook_grpc.domain.errors import (
    InvalidArgument,
    LimitExceeded,
    PermissionDenied,
    StorageUnavailable,
)
from webhook_grpc.domain.filters import FilterInput, compile_filter
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import DeliveryStatus, Event, StoredEvent, Subscription
from webhook_grpc.domain.patterns import entity_of, matches_any
from webhook_grpc.domain.projection import (
    Classification,
    hides_every_change,
    project,
    rules_version,
)
from webhook_grpc.domain.subscriptions import Recipient
from webhook_grpc.domain.trace_context import TraceContext
from webhook_grpc.metrics import Metrics
from webhook_grpc.storage.ports import (
    NewDelivery,
    NewEvent,
    PublishContext,
    StaleContext,
    Storage,
    UnitOfWork,
    Wakeups,
)
from webhook_grpc.tracing import Tracing

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_ENTITY_ID = 256
MAX_IDEMPOTENCY_KEY = 256
CONTEXT_READS = 3
"""How often a publish reads its context when subscriptions or field rules keep changing under
it (each read is answered by the insert that follows with StaleContext)."""


@dataclass(frozen=True)
class EventDraft:
    """One event as a publisher sent it, before validation and projection."""

    tenant_id: str
    type: str
    entity_id: str
    data: dict[str, Any]
    previous: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    idempotency_key: str = ""


@dataclass(frozen=True)
class Published:
    """`stored` is false for an event whose every change is to unshareable fields: it is
    answered (projected, without a cursor) but neither stored nor delivered."""

    event: Event
    duplicate: bool
    delivery_ids: tuple[str, ...] = ()
    stored: bool = True


class Publisher:
    def __init__(
        self,
        storage: Storage,
        settings: PublishingSettings,
        cursors: CursorCodec,
        notifier: Wakeups,
        metrics: Metrics,
        clock: Clock = system_clock,
        tracing: Tracing = tracing.OFF,
    ) -> None:
        self._storage = storage
        self.published = metrics.events_published
        """Counts events stored by callers (not the service's own `webhook.*` events)."""
        self._settings = settings
        self._cursors = cursors
        self._notifier = notifier
        self._clock = clock
        self._tracing = tracing

    async def publish(
        self,
        drafts: Sequence[EventDraft],
        *,
        batch: bool = False,
        trace_parent: TraceContext | None = None,
    ) -> list[Published]:
        """Publish callers' events atomically: all are stored with their deliveries, or none
        is. The service's own `webhook.*` types are refused here. `trace_parent` is the
        caller's trace context: stored with the events (with tracing on, the `publish` span's,
        its child), each delivery carries it on."""
        if not self._tracing.enabled:
            return await self._publish(drafts, batch, trace_parent)
        with self._tracing.tracer.start_as_current_span(
            "publish", context=tracing.parent(trace_parent) if trace_parent else None
        ) as span:
            published = await self._publish(drafts, batch, tracing.current())
            _describe(span, published)
            return published

    async def _publish(
        self, drafts: Sequence[EventDraft], batch: bool, trace_context: TraceContext | None
    ) -> list[Published]:
        if batch and not drafts:
            raise InvalidArgument("events", "at least one event is required")
        if len(drafts) > MAX_BATCH:
            raise LimitExceeded(f"at most {MAX_BATCH} events per batch, got {len(drafts)}")
        for index, draft in enumerate(drafts):
            self._validate(draft, f"events[{index}]." if batch else "")
        # Publishing writes with one atomic call, so it needs no transaction around it; its
        # reads see everything committed before it began. Where writes queue for one writer
        # (SQLite) they are read before joining the queue.
        context = None
        if self._storage.serialises_writes:
            async with self._storage.read() as reader:
                context = await _context(reader, drafts)
        async with self._storage.autocommit() as unit:
            published = await self.publish_in(
                unit,
                drafts,
                field_prefix="events[{}]." if batch else "",
                trace_context=trace_context,
                context=context,
            )
        for item in published:
            if item.stored and not item.duplicate:
                self.published.labels(item.event.type).inc()
        return published

    async def publish_in(
        self,
        unit: UnitOfWork,
        drafts: Sequence[EventDraft],
        *,
        field_prefix: str = "",
        only_subscription: Subscription | None = None,
        trace_context: TraceContext | None = None,
        context: PublishContext | None = None,
    ) -> list[Published]:
        """Publish in `unit` (the caller's, or an autocommit one); the dispatchers and feed
        streams are woken once it commits. `only_subscription` delivers to that one
        subscription instead of every matching one (SendTestEvent). The events keep
        `trace_context`, or the current span's (tracing on). `context`: the types, schemas and
        recipients if already read."""
        now = self._clock()
        if trace_context is None and self._tracing.enabled:
            trace_context = tracing.current()
        stored_context = trace_context.text() if trace_context else None
        for attempt in range(1, CONTEXT_READS + 1):
            if context is None:
                context = await _context(unit, drafts)
            for index, draft in enumerate(drafts):
                if draft.type not in context.known_types:
                    raise InvalidArgument(
                        f"{field_prefix.format(index)}type",
                        f"event type {draft.type!r} is not registered; register it with "
                        "RegisterEventType first",
                    )
            versions = {e: rules_version(rules) for e, rules in context.schemas.items()}
            events = [
                self._event_row(draft, context.schemas, versions, now, stored_context)
                for draft in drafts
            ]
            hidden = {
                row["id"]
                for draft, row in zip(drafts, events, strict=True)
                if hides_every_change(draft.previous, row["previous"])
            }
            stored = [row for row in events if row["id"] not in hidden]
            deliveries = {
                row["id"]: self._delivery_rows(row, context.recipients, only_subscription, now)
                for row in stored
            }
            try:
                positions = await self._insert(unit, stored, deliveries, context)
                break
            except StaleContext:
                # A subscription or field rule changed since the storage kept the context:
                # nothing was inserted; read it again and remake the rows.
                if attempt == CONTEXT_READS:
                    raise StorageUnavailable(
                        "subscriptions or field rules kept changing during the publish"
                    ) from None
                context = None
        if positions:
            tenant_ids = {row["tenant_id"] for row in stored}
            unit.on_commit(lambda: self._notifier.wake(tenant_ids))
        earlier = await self._earlier_events(unit, stored, positions)
        results: list[Published] = []
        for row in events:
            if row["id"] in hidden:
                unshared = _event(row, now, cursor="")
                results.append(Published(unshared, duplicate=False, stored=False))
                continue
            if row["id"] not in positions:
                found = earlier[(row["tenant_id"], row["idempotency_key"])]
                results.append(Published(self._with_cursor(found), duplicate=True))
                continue
            event = _event(
                row, now, cursor=self._cursors.encode(row["tenant_id"], positions[row["id"]])
            )
            ids = tuple(d["id"] for d in deliveries[row["id"]])
            results.append(Published(event, duplicate=False, delivery_ids=ids))
        return results

    async def _insert(
        self,
        unit: UnitOfWork,
        events: list[NewEvent],
        deliveries: dict[str, list[NewDelivery]],
        context: PublishContext,
    ) -> dict[str, FeedPosition]:
        rows = [d for each in deliveries.values() for d in each]
        if not self._tracing.enabled:
            return await unit.events.insert_with_deliveries(events, rows, context)
        with self._tracing.tracer.start_as_current_span(
            "INSERT events", kind=SpanKind.CLIENT, attributes={"db.operation.name": "INSERT"}
        ) as span:
            span.set_attribute("db.collection.name", "events")
            span.set_attribute("webhook.delivery_count", len(rows))
            return await unit.events.insert_with_deliveries(events, rows, context)

    @staticmethod
    def _event_row(
        draft: EventDraft,
        schemas: dict[str, dict[str, Classification]],
        versions: dict[str, int],
        now: datetime,
        trace_context: str | None,
    ) -> NewEvent:
        entity = entity_of(draft.type)
        rules = schemas[entity]
        return {
            "id": new_id("evt"),
            "tenant_id": draft.tenant_id,
            "type": draft.type,
            "entity_id": draft.entity_id,
            "data": project(draft.data, rules),
            "previous": project(draft.previous, rules) if draft.previous is not None else None,
            "occurred_at": draft.occurred_at or now,
            "published_at": now,
            "idempotency_key": draft.idempotency_key or None,
            "trace_context": trace_context,
            "rules_version": versions[entity],
        }

    def _delivery_rows(
        self,
        event: NewEvent,
        recipients: dict[str, list[Recipient]],
        only: Subscription | None,
        now: datetime,
    ) -> list[NewDelivery]:
        """One pending delivery per subscription the event goes to (stored only if the event
        is, i.e. is not an idempotent repeat)."""
        if only is not None:
            targets = [only.id] if only.tenant_id == event["tenant_id"] else []
        else:
            targets = _matching(recipients[event["tenant_id"]], event, now)
        return [
            {
                "id": new_id("dlv"),
                "tenant_id": event["tenant_id"],
                "event_id": event["id"],
                "subscription_id": subscription_id,
                "event_type": event["type"],
                "status": DeliveryStatus.PENDING.value,
                "attempt_count": 0,
                "next_attempt_at": now + self._settings.first_attempt_delay,
                "lease_token": None,
                "created_at": now,
                "updated_at": now,
            }
            for subscription_id in targets
        ]

    def _validate(self, draft: EventDraft, prefix: str) -> None:
        if not draft.tenant_id:
            raise InvalidArgument(f"{prefix}tenant_id", "is required")
        check_tenant_id(draft.tenant_id, f"{prefix}tenant_id")
        if not draft.type:
            raise InvalidArgument(f"{prefix}type", "is required")
        if is_service_type(draft.type):
            # Callers go through here; the service's own events through `publish_in`.
            raise PermissionDenied(
                f"{prefix}type: {draft.type!r} is one of the service's own event types; only "
                f"webhook-grpc itself publishes {SERVICE_ENTITY}.* events"
            )
        if not draft.entity_id:
            raise InvalidArgument(f"{prefix}entity_id", "is required")
        if len(draft.entity_id) > MAX_ENTITY_ID:
            raise InvalidArgument(f"{prefix}entity_id", f"at most {MAX_ENTITY_ID} characters")
        if len(draft.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument(
                f"{prefix}idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters"
            )
        limit = self._settings.max_payload_bytes
        for name, value in (("data", draft.data), ("previous", draft.previous)):
            if value is not None and _json_size(value) > limit:
                raise InvalidArgument(
                    f"{prefix}{name}", f"is larger than max_payload_bytes ({limit} bytes)"
                )

    async def _earlier_events(
        self,
        unit: UnitOfWork,
        rows: list[NewEvent],
        positions: dict[str, Any],
    ) -> dict[tuple[str, str | None], StoredEvent]:
        skipped: dict[str, list[str]] = {}
        for row in rows:
            if row["id"] not in positions:
                key = row["idempotency_key"]
                assert key is not None  # only a repeated key skips an event
                skipped.setdefault(row["tenant_id"], []).append(key)
        found: dict[tuple[str, str | None], StoredEvent] = {}
        for tenant_id, keys in skipped.items():
            for key, stored in (await unit.events.by_idempotency_keys(tenant_id, keys)).items():
                found[(tenant_id, key)] = stored
        return found

    def _with_cursor(self, stored: StoredEvent) -> Event:
        return replace(
            stored.event, cursor=self._cursors.encode(stored.event.tenant_id, stored.position)
        )


async def _context(unit: UnitOfWork, drafts: Sequence[EventDraft]) -> PublishContext:
    return await unit.events.publish_context(
        {d.type for d in drafts}, {d.tenant_id for d in drafts}
    )


def _matching(recipients: list[Recipient], event: NewEvent, now: datetime) -> list[str]:
    """The subscriptions the (projected) event goes to: its type matches their patterns, and
    their filter, if any, passes. The event is converted for the filters at most once."""
    variables: FilterInput | None = None
    targets: list[str] = []
    for recipient in recipients:
        if not matches_any(recipient.event_patterns, event["type"]):
            continue
        if recipient.filter:
            if variables is None:
                variables = FilterInput(_event(event, now, cursor=""))
            if not _passes(recipient, variables):
                continue
        targets.append(recipient.id)
    return targets


def _passes(recipient: Recipient, variables: FilterInput) -> bool:
    # Checked when it was stored and compiled once per text (the domain's cache). A stored
    # filter that no longer compiles (a library upgrade) matches nothing rather than failing
    # every publish of its tenant.
    try:
        event_filter = compile_filter(recipient.filter)
    except InvalidArgument:
        log.warning("subscription %s has a filter that no longer compiles", recipient.id)
        return False
    return event_filter.matches(variables)


def _event(row: NewEvent, published_at: datetime, cursor: str) -> Event:
    return Event(
        id=row["id"],
        tenant_id=row["tenant_id"],
        type=row["type"],
        entity_id=row["entity_id"],
        data=row["data"],
        previous=row["previous"],
        occurred_at=row["occurred_at"],
        published_at=published_at,
        cursor=cursor,
    )


def _describe(span: Span, published: list[Published]) -> None:
    """What a publish span tells: the types, counts and ids (never data: it may be personal)."""
    types = sorted({p.event.type for p in published})
    span.set_attribute("webhook.event_types", types)
    span.set_attribute("webhook.event_count", len(published))
    if len(published) == 1:
        [only] = published
        span.set_attribute("webhook.event_id", only.event.id)
        span.set_attribute("webhook.duplicate", only.duplicate)
    span.set_attribute("webhook.delivery_count", sum(len(p.delivery_ids) for p in published))


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
