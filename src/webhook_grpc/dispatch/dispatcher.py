"""The dispatcher: lease due deliveries, POST them, record the outcome, reschedule.

Isolation: at most `endpoint_concurrency` attempts per subscription are in flight in this
process. Each subscription may hold up to twice that in leased work (the rest waits for a slot),
so a slot that frees up is refilled at once instead of after the next lease query; a subscription
holding that much is left out of the next lease, so a slow or dead endpoint holds only its own
slots and never the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc import metrics
from webhook_grpc.config import Settings
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import DeliveryStatus, Event, PayloadMode
from webhook_grpc.domain.patterns import entity_of
from webhook_grpc.domain.payload import encode_body
from webhook_grpc.domain.projection import project_event
from webhook_grpc.domain.retry import RetryPolicy, next_attempt_after_failure
from webhook_grpc.domain.signing import signature_headers
from webhook_grpc.storage import deliveries as delivery_store
from webhook_grpc.storage import events as event_store
from webhook_grpc.storage import registry as registry_store
from webhook_grpc.storage import subscriptions as subscription_store
from webhook_grpc.storage.database import Database
from webhook_grpc.storage.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.storage.notifications import Notifier
from webhook_grpc.storage.subscriptions import DeliveryTarget

from .recorder import AttemptRecorder
from .transport import HttpOutcome, HttpTransport

log = logging.getLogger(__name__)
LEASE_BATCH = 200
# Leased work a subscription may hold, in multiples of endpoint_concurrency.
LEASE_AHEAD = 2


@dataclass
class _Batch:
    """What one lease brought: events (re-projected now) and their subscriptions."""

    events: dict[str, Event]
    targets: dict[str, DeliveryTarget]
    bodies: dict[tuple[str, PayloadMode], bytes] = field(default_factory=dict)

    def body(self, event: Event, mode: PayloadMode) -> bytes:
        key = (event.id, mode)
        if key not in self.bodies:
            self.bodies[key] = encode_body(event, mode)
        return self.bodies[key]


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifier: Notifier,
        transport: HttpTransport,
        recorder: AttemptRecorder,
        clock: Clock = system_clock,
    ) -> None:
        self._db = db
        self._settings = settings
        self._notifier = notifier
        self._transport = transport
        self._recorder = recorder
        self._clock = clock
        self._policy = RetryPolicy(settings.backoff_schedule, settings.max_retry_attempts)
        self._inflight: dict[asyncio.Task[None], LeasedDelivery] = {}
        self._per_subscription: Counter[str] = Counter()
        self._endpoint_slots: dict[str, asyncio.Semaphore] = {}
        self._stopping = asyncio.Event()
        self._wake = notifier.waiter()

    async def run(self) -> None:
        """Deliver until `stop` is called."""
        delay = 0.05
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                leased, wanted = await self._lease_and_start()
                delay = 0.05
            except Exception as error:
                log.warning("dispatcher cannot lease, retrying in %.2fs: %s", delay, error)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if leased and leased == wanted:
                continue
            # Work was leased: finishing attempts wake us. Nothing: sleep until the next is due.
            await self._sleep(
                self._settings.poll_interval.total_seconds()
                if leased
                else await self._idle_timeout()
            )

    async def stop(self, grace: float) -> None:
        """Stop leasing; let in-flight attempts finish for up to `grace` seconds, then cancel
        the rest and hand their leases back so another dispatcher takes them at once."""
        self._stopping.set()
        self._wake.set()
        tasks = list(self._inflight)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        unfinished = {task: self._inflight[task] for task in tasks if not task.done()}
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(list(unfinished))
            by_token: dict[str, list[str]] = {}
            for leased in unfinished.values():
                by_token.setdefault(leased.lease_token, []).append(leased.id)
            try:
                async with self._db.transaction() as conn:
                    for token, ids in by_token.items():
                        await delivery_store.release(conn, token, ids, self._clock())
            except Exception as error:  # the leases will expire by themselves
                log.warning("could not release %d leases: %s", len(unfinished), error)
        self._notifier.forget(self._wake)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def _lease_and_start(self) -> tuple[int, int]:
        free = self._settings.dispatcher_concurrency - len(self._inflight)
        if free <= 0:
            return 0, 0
        wanted = min(free, LEASE_BATCH)
        limit = self._settings.endpoint_concurrency * LEASE_AHEAD
        saturated = {s for s, n in self._per_subscription.items() if n >= limit}
        now = self._clock()
        token = new_id("lease")
        async with self._db.transaction() as conn:
            await delivery_store.relax_durability(conn)
            leased = await delivery_store.lease_due(
                conn,
                now,
                now + self._settings.lease_duration,
                token,
                wanted,
                limit,
                saturated,
            )
            batch = await self._load(conn, leased) if leased else None
        if batch is None:
            return 0, wanted
        for delivery in leased:
            self._per_subscription[delivery.subscription_id] += 1
            task = asyncio.create_task(self._attempt(delivery, batch))
            self._inflight[task] = delivery
            task.add_done_callback(self._finished)
        return len(leased), wanted

    def _finished(self, task: asyncio.Task[None]) -> None:
        delivery = self._inflight.pop(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("attempt of %s failed unexpectedly", delivery.id, exc_info=task.exception())
        self._wake.set()

    def _endpoint_done(self, subscription_id: str) -> None:
        """An attempt's HTTP exchange is over: its endpoint slot is free for the next lease,
        even while the attempt is still being recorded."""
        self._per_subscription[subscription_id] -= 1
        if self._per_subscription[subscription_id] <= 0:
            del self._per_subscription[subscription_id]
            self._endpoint_slots.pop(subscription_id, None)
        self._wake.set()

    async def _load(self, conn: AsyncConnection, leased: list[LeasedDelivery]) -> _Batch:
        stored = await event_store.by_ids(conn, [d.event_id for d in leased])
        targets = await subscription_store.delivery_targets(
            conn, {d.subscription_id for d in leased}
        )
        schemas = await registry_store.entity_fields(
            conn, {entity_of(s.event.type) for s in stored.values()}
        )
        # Projected again with today's schema: a field reclassified since publishing is gone.
        events = {
            event_id: project_event(item.event, schemas[entity_of(item.event.type)])
            for event_id, item in stored.items()
        }
        return _Batch(events, targets)

    async def _attempt(self, delivery: LeasedDelivery, batch: _Batch) -> None:
        try:
            sent = await self._send(delivery, batch)
        finally:
            self._endpoint_done(delivery.subscription_id)
        if sent is None:
            return
        attempted_at, outcome = sent
        attempt_number = delivery.attempt_count + 1
        finished_at = self._clock()
        if outcome.succeeded:
            status, next_at = DeliveryStatus.SUCCEEDED, None
        else:
            next_at = next_attempt_after_failure(
                self._policy, attempt_number, outcome.status_code, outcome.retry_after, finished_at
            )
            status = DeliveryStatus.FAILED if next_at is None else DeliveryStatus.PENDING
        _observe(delivery, outcome, status)
        await self._recorder.record(
            AttemptRecord(
                delivery_id=delivery.id,
                subscription_id=delivery.subscription_id,
                lease_token=delivery.lease_token,
                attempt_number=attempt_number,
                attempted_at=attempted_at,
                succeeded=outcome.succeeded,
                status_code=outcome.status_code,
                latency=outcome.latency,
                error=outcome.error,
                error_message=outcome.error_message[:1024],
                response_body=outcome.response_body,
                next_status=status,
                next_attempt_at=next_at,
            )
        )

    async def _send(
        self, delivery: LeasedDelivery, batch: _Batch
    ) -> tuple[datetime, HttpOutcome] | None:
        """POST the delivery; None when it is no longer deliverable (and now cancelled)."""
        target = batch.targets.get(delivery.subscription_id)
        event = batch.events.get(delivery.event_id)
        if target is None or event is None or not target.active:
            async with self._db.transaction() as conn:
                await delivery_store.cancel(conn, [delivery.id], self._clock())
            metrics.DELIVERIES_FINISHED.labels(DeliveryStatus.CANCELLED.value).inc()
            return None
        slots = self._endpoint_slots.setdefault(
            delivery.subscription_id, asyncio.Semaphore(self._settings.endpoint_concurrency)
        )
        body = batch.body(event, target.payload_mode)
        async with slots:
            attempted_at = self._clock()
            timestamp = int(attempted_at.timestamp())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": event.id,
                "webhook-timestamp": str(timestamp),
                "X-Webhook-Event": event.type,
                **signature_headers(target.keys.active(attempted_at), event.id, timestamp, body),
            }
            return attempted_at, await self._transport.post(target.url, body, headers)

    async def _idle_timeout(self) -> float:
        poll = self._settings.poll_interval.total_seconds()
        try:
            async with self._db.read() as conn:
                due = await delivery_store.next_due_at(conn)
        except Exception:
            return poll
        if due is None:
            return poll
        until_due = (due - self._clock()).total_seconds()
        # Due rows we could not lease belong to saturated endpoints: wait for a free slot.
        return poll if until_due <= 0 else min(poll, until_due)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.001))


def _observe(delivery: LeasedDelivery, outcome: HttpOutcome, status: DeliveryStatus) -> None:
    result = outcome.error.value if outcome.error else "success"
    metrics.ATTEMPTS.labels(result).inc()
    metrics.ATTEMPT_LATENCY.observe(outcome.latency.total_seconds())
    if status is not DeliveryStatus.PENDING:
        metrics.DELIVERIES_FINISHED.labels(status.value).inc()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "delivery attempt",
            extra={
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "subscription_id": delivery.subscription_id,
                "attempt": delivery.attempt_count + 1,
                "result": result,
                "status_code": outcome.status_code,
                "latency_ms": round(outcome.latency.total_seconds() * 1000, 2),
                "delivery_status": status.value,
            },
        )
