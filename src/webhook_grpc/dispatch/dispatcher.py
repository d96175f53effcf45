"""The dispatcher: lease due deliveries, POST them, record the outcome, reschedule.

Each subscription has a lane in this process: its leased deliveries wait there for one of the
lane's workers. How much a lane and the process may hold, and when to lease more, is the
policy of `capacity.py`.

Wake-ups: new work wakes the lease loop through the notifier; work due later wakes it with a
timer set for the earliest due time this process knows of, so poll_interval is only a fallback.
It knows the due time of each retry its recorder commits (backoff or Retry-After), and, before
sleeping, looks up the next due time in the table: a retry another process recorded, or a lease
that expires (a crashed dispatcher's work). Only a lease that expires while this process has no
room for more work waits for a wake-up or the poll."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime

from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import Counter

from webhook_grpc import tracing
from webhook_grpc.config import DeliverySettings
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import DeliveryStatus, Event, PayloadMode
from webhook_grpc.domain.patterns import entity_of
from webhook_grpc.domain.projection import project_event
from webhook_grpc.domain.retry import RetryPolicy, next_attempt_after_failure
from webhook_grpc.domain.signing import SigningKeys, delivery_headers
from webhook_grpc.domain.subscriptions import DeliveryTarget
from webhook_grpc.encryption import SealedSecretError, SecretBox, open_signing_keys
from webhook_grpc.metrics import Metrics
from webhook_grpc.storage.ports import (
    LeasedWork,
    LeaseRequest,
    Storage,
    UnitOfWork,
    Wakeups,
    wait_for_wake,
)
from webhook_grpc.tracing import Tracing

from .bodies import BodyCache
from .capacity import DispatchCapacity
from .pacing import SlotPacer
from .recorder import AttemptRecorder
from .transport import HttpOutcome, HttpTransport

log = logging.getLogger(__name__)
LEASE_BATCH = 200
# Subscriptions whose opened signing keys are kept (see `OpenedKeys`).
OPENED_KEYS = 10_000


@dataclass
class _Batch:
    """What one lease brought: events (re-projected now) and their subscriptions."""

    events: dict[str, Event]
    targets: dict[str, DeliveryTarget]
    unsignable: set[str] = field(default_factory=set)
    """Subscriptions whose keys no configured key opens: their deliveries wait for the lease to
    expire (and the configuration to be fixed), neither attempted nor cancelled."""
    bodies: BodyCache = field(default_factory=BodyCache)

    def body(self, event: Event, mode: PayloadMode) -> bytes:
        return self.bodies.body(event, mode)

    def deliverable(self, delivery: LeasedDelivery) -> bool:
        target = self.targets.get(delivery.subscription_id)
        return target is not None and target.active and delivery.event_id in self.events


class OpenedKeys:
    """Signing keys opened (decrypted) once per subscription and sealed value, not once per
    lease: with many subscriptions each seeing little work, nearly every lease would open keys
    again. Keyed by the sealed values, which change (a new nonce) whenever the secret does, so
    a rotated or replaced secret is opened anew. Holds up to OPENED_KEYS subscriptions, the
    oldest forgotten first; opened keys live as long in this process's memory as they would in
    a lease batch held for a long attempt."""

    def __init__(self, box: SecretBox, size: int = OPENED_KEYS) -> None:
        self._box = box
        self._size = size
        self._opened: dict[tuple[str, SigningKeys], SigningKeys] = {}

    def open(self, subscription_id: str, sealed: SigningKeys) -> SigningKeys:
        key = (subscription_id, sealed)
        opened = self._opened.get(key)
        if opened is None:
            opened = open_signing_keys(self._box, subscription_id, sealed)
            if len(self._opened) >= self._size:
                del self._opened[next(iter(self._opened))]
            self._opened[key] = opened
        return opened


@dataclass
class _Lane:
    """One subscription's leased work: deliveries waiting for a worker, and the workers with
    the delivery each is attempting."""

    waiting: deque[tuple[LeasedDelivery, _Batch]] = field(default_factory=deque)
    attempting: dict[asyncio.Task[None], LeasedDelivery] = field(default_factory=dict)
    workers: set[asyncio.Task[None]] = field(default_factory=set)


class Dispatcher:
    def __init__(
        self,
        storage: Storage,
        settings: DeliverySettings,
        notifier: Wakeups,
        transport: HttpTransport,
        recorder: AttemptRecorder,
        box: SecretBox,
        metrics: Metrics,
        clock: Clock = system_clock,
        tracing: Tracing = tracing.OFF,
    ) -> None:
        self._tracing = tracing
        self._storage = storage
        self._metrics = metrics
        self._keys = OpenedKeys(box)
        self._settings = settings
        self._notifier = notifier
        self._transport = transport
        self._recorder = recorder
        self._clock = clock
        self._policy = RetryPolicy(settings.backoff_schedule, settings.max_retry_attempts)
        self._lanes: dict[str, _Lane] = {}
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self._wake = notifier.waiter()
        self._capacity = DispatchCapacity(
            settings.dispatcher_concurrency, settings.endpoint_concurrency, self._wake.set
        )
        recorder.on_committed(self._capacity.committed)
        # One timer, for the earliest due time known; when it fires, the loop looks up the next.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: datetime | None = None
        self._look_ahead = False
        self._leased_at = clock()
        recorder.on_retry_scheduled(self.wake_at)
        # A FIFO subscription's next delivery can be leased once its head's attempt is
        # committed: the lease loop is woken then rather than by the poll.
        self._ordered_unrecorded = False
        recorder.on_committed(self._after_commit)
        # Rate-limited subscriptions: when their attempts may start (see `_wait_for_slot`).
        self._pacer = SlotPacer()
        self._counters = _Counters(metrics)
        self._bodies = BodyCache()

    async def run(self) -> None:
        """Deliver until `stop` is called."""
        self._running = asyncio.current_task()
        delay = 0.05
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                leased, lease_again = await self._lease_and_start()
                delay = 0.05
            except Exception as error:
                log.warning("dispatcher cannot lease, retrying in %.2fs: %s", delay, error)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if lease_again:
                continue
            if self._capacity.room() <= 0:
                # Attempts handed to the recorder hold room until it commits them.
                self._capacity.wake_on_commit()
            elif not leased or self._look_ahead:
                # Work was leased: lanes running low wake us. Nothing, or a due time just
                # passed: the timer is set for the next due time after this lease.
                self._look_ahead = False
                await self._expect_next_due()
            await self._sleep(self._settings.poll_interval.total_seconds())

    async def stop(self, grace: float) -> None:
        """Stop leasing and hand back what waits at once; let attempts in flight finish for
        up to `grace` seconds, then cancel the rest and hand their leases back too, so another
        dispatcher takes them at once. When it returns, this process holds no lease (but for
        attempts it handed to the recorder, which commits them)."""
        deadline = asyncio.get_running_loop().time() + grace
        self._stopping.set()
        self._wake.set()
        if self._timer is not None:
            self._timer.cancel()
        await self._end_run_loop(grace)
        # No lease starts or lands any more: the lanes hold all this process leased.
        lanes = list(self._lanes.values())
        await self._release([d for lane in lanes for d, _ in lane.waiting])
        for subscription_id, lane in self._lanes.items():
            if lane.waiting:
                self._capacity.released(subscription_id, len(lane.waiting))
                lane.waiting.clear()
        workers = [worker for lane in lanes for worker in lane.workers]
        if workers:
            await asyncio.wait(
                workers, timeout=max(deadline - asyncio.get_running_loop().time(), 0)
            )
        unfinished = [(w, d) for lane in lanes for w, d in lane.attempting.items() if not w.done()]
        for worker, _ in unfinished:
            worker.cancel()
        if unfinished:
            await asyncio.wait([worker for worker, _ in unfinished])
            await self._release([delivery for _, delivery in unfinished])
        self._notifier.forget(self._wake)

    async def _end_run_loop(self, grace: float) -> None:
        """Wait for the run loop to end: a lease under way when stopping began (a slow or
        blocked statement) may still bring work, which must land in the lanes to be handed
        back. A lease still running after `grace` is cancelled, and its statement with it (if
        that had already leased rows, they wait for their lease to expire)."""
        running = self._running
        if running is None or running.done():
            return
        ended, _ = await asyncio.wait([running], timeout=grace)
        if not ended:
            log.warning("lease still running after %.1fs, cancelling it", grace)
            running.cancel()
            await asyncio.wait([running])

    def wake_at(self, due: datetime) -> None:
        """Lease again at `due` (at once if it has passed), unless the timer is set earlier:
        when it fires, the loop looks up what falls due after it."""
        if self._stopping.is_set() or (self._timer_due is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = (due - self._clock()).total_seconds()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self._due)

    def _after_commit(self, _count: int) -> None:
        if self._ordered_unrecorded:
            self._ordered_unrecorded = False
            self._wake.set()

    def _due(self) -> None:
        self._timer = self._timer_due = None
        self._look_ahead = True
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return self._capacity.in_flight

    async def _release(self, leased: list[LeasedDelivery]) -> None:
        by_token: dict[str, list[str]] = {}
        for delivery in leased:
            by_token.setdefault(delivery.lease_token, []).append(delivery.id)
        if not by_token:
            return
        try:
            async with self._storage.transaction() as unit:
                for token, ids in by_token.items():
                    await unit.deliveries.release(token, ids, self._clock())
        except Exception as error:  # the leases will expire by themselves
            log.warning("could not release %d leases: %s", len(leased), error)

    async def _lease_and_start(self) -> tuple[int, bool]:
        """Lease due work into the lanes: how many deliveries, and whether to lease again at
        once. Again when the lease was full, and also when it filled a lane: the lease looks
        at the oldest due rows only, so a lane with a large backlog (a slow endpoint) can fill
        that window, and other subscriptions' due rows are reached by the next lease, which
        leaves the now full lane out."""
        capacity = self._capacity
        free = capacity.room()
        if free <= 0:
            return 0, False
        wanted = min(free, LEASE_BATCH)
        now = self._leased_at = self._clock()
        token = new_id("lease")
        async with self._storage.autocommit() as unit:
            request = LeaseRequest(
                now,
                now + self._settings.lease_duration,
                token,
                wanted,
                capacity.lane_limit,
                capacity.lane_room(),
            )
            work = await unit.deliveries.lease_work(request)
            if not work.deliveries:
                return 0, False
            leased = work.deliveries
            batch = await self._batch(unit, work)
            await self._cancel_undeliverable(unit, leased, batch)
        for delivery in leased:
            if batch.deliverable(delivery):
                self._enqueue(delivery, batch)
        filled = capacity.any_full(d.subscription_id for d in leased)
        return len(leased), len(leased) == wanted or filled

    async def _batch(self, unit: UnitOfWork, work: LeasedWork) -> _Batch:
        schemas = work.schemas
        if schemas is None:
            schemas = await unit.registry.entity_fields(
                {entity_of(s.event.type) for s in work.events.values()}
            )
        # Projected again with today's schema: a field reclassified since publishing is gone.
        events = {
            event_id: project_event(item.event, schemas[entity_of(item.event.type)])
            for event_id, item in work.events.items()
        }
        batch = _Batch(events, {}, bodies=self._bodies)
        # Opened once per subscription and sealed value (`OpenedKeys`), not per attempt.
        for subscription_id, target in work.targets.items():
            if not target.active:
                batch.targets[subscription_id] = target
                continue
            try:
                keys = self._keys.open(subscription_id, target.keys)
            except SealedSecretError as error:
                # One bad row must not stop the others, nor lose its deliveries.
                log.error("cannot sign for %s, retried after the lease: %s", subscription_id, error)
                batch.unsignable.add(subscription_id)
                continue
            batch.targets[subscription_id] = replace(target, keys=keys)
        return batch

    async def _cancel_undeliverable(
        self, unit: UnitOfWork, leased: list[LeasedDelivery], batch: _Batch
    ) -> None:
        """Deliveries of a subscription gone or no longer active, or of a purged event."""
        ids = [
            d.id
            for d in leased
            if not batch.deliverable(d) and d.subscription_id not in batch.unsignable
        ]
        if ids:
            await unit.deliveries.cancel(ids, self._clock())
            self._metrics.deliveries_finished.labels(DeliveryStatus.CANCELLED.value).inc(len(ids))

    def _enqueue(self, delivery: LeasedDelivery, batch: _Batch) -> None:
        lane = self._lanes.get(delivery.subscription_id)
        if lane is None:
            lane = self._lanes[delivery.subscription_id] = _Lane()
        lane.waiting.append((delivery, batch))
        self._capacity.leased(delivery.subscription_id)
        if len(lane.workers) < self._settings.endpoint_concurrency:
            worker = asyncio.create_task(self._work(delivery.subscription_id, lane))
            lane.workers.add(worker)

    async def _work(self, subscription_id: str, lane: _Lane) -> None:
        """A worker of one lane: attempt its waiting deliveries one after another."""
        worker = asyncio.current_task()
        assert worker is not None
        try:
            while lane.waiting and not self._stopping.is_set():
                delivery, batch = lane.waiting.popleft()
                lane.attempting[worker] = delivery
                self._capacity.attempt_started(subscription_id)
                recorded = False
                try:
                    if await self._wait_for_slot(delivery):
                        await self._attempt(delivery, batch)
                        recorded = True
                    else:
                        await self._release([delivery])
                except Exception:
                    log.exception("attempt of %s failed unexpectedly", delivery.id)
                finally:
                    del lane.attempting[worker]
                    self._capacity.attempt_finished(subscription_id, recorded=recorded)
        finally:
            lane.workers.discard(worker)
            if not lane.workers and not lane.waiting:
                self._lanes.pop(subscription_id, None)

    async def _wait_for_slot(self, delivery: LeasedDelivery) -> bool:
        """Wait for the slot the subscription's rate limit reserved (SPEC §11); False when it
        was missed, and the delivery is to be handed back for a new slot (see pacing.py)."""
        if delivery.not_before is None:
            return True  # no rate limit: nothing to wait for (nor a clock to read)
        while (start := self._pacer.start_at(delivery)) is not None:
            wait = (start - self._clock()).total_seconds()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        return self._pacer.take(delivery, self._clock())

    async def _attempt(self, delivery: LeasedDelivery, batch: _Batch) -> None:
        """Attempt the delivery and hand the outcome to the recorder (its last step)."""
        if not self._tracing.enabled:
            await self._attempt_and_submit(delivery, batch, None)
            return
        event = batch.events[delivery.event_id]
        # A child of the publisher's context as stored with the event: the POST, and the
        # receiver's spans after it, join the publisher's trace, whichever process delivers.
        with self._tracing.tracer.start_as_current_span(
            "deliver",
            context=tracing.parent(event.trace_context),
            attributes={
                "webhook.event_type": event.type,
                "webhook.event_id": event.id,
                "webhook.delivery_id": delivery.id,
                "webhook.subscription_id": delivery.subscription_id,
                "webhook.attempt": delivery.attempt_count + 1,
            },
            record_exception=False,
        ) as span:
            await self._attempt_and_submit(delivery, batch, span)

    async def _attempt_and_submit(
        self, delivery: LeasedDelivery, batch: _Batch, span: Span | None
    ) -> None:
        attempted_at, outcome = await self._send(delivery, batch)
        attempt_number = delivery.attempt_count + 1
        if outcome.succeeded:
            status, next_at = DeliveryStatus.SUCCEEDED, None
        else:
            next_at = next_attempt_after_failure(
                self._policy,
                attempt_number,
                outcome.status_code,
                outcome.retry_after,
                self._clock(),
            )
            status = DeliveryStatus.FAILED if next_at is None else DeliveryStatus.PENDING
        _observe(self._counters, self._metrics, delivery, outcome, status)
        if span is not None:
            _describe(span, outcome, status)
        self._ordered_unrecorded = self._ordered_unrecorded or delivery.ordered
        self._recorder.submit(
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
            ),
            urgent=delivery.ordered,
        )

    async def _send(self, delivery: LeasedDelivery, batch: _Batch) -> tuple[datetime, HttpOutcome]:
        target = batch.targets[delivery.subscription_id]
        event = batch.events[delivery.event_id]
        body = batch.body(event, target.payload_mode)
        attempted_at = self._clock()
        timestamp = int(attempted_at.timestamp())
        headers = delivery_headers(
            target.keys.active(attempted_at), event.id, event.type, timestamp, body
        )
        if event.trace_context is not None and not self._tracing.enabled:
            # Tracing off: the publisher's context goes on as it came (with tracing on, the
            # transport's POST span is sent instead, a descendant of it).
            headers.update(event.trace_context.headers())
        outcome = await self._transport.post(target.url, body, headers, target.headers)
        return attempted_at, outcome

    async def _expect_next_due(self) -> None:
        """Set the timer for the next due time after the last lease. Rows already due that
        the lease left belong to full lanes, whose attempts wake the loop as they finish."""
        try:
            async with self._storage.read() as unit:
                due = await unit.deliveries.next_due_after(self._leased_at)
        except Exception:
            return  # the poll is the fallback
        if due is not None:
            self.wake_at(due)

    async def _sleep(self, seconds: float) -> None:
        await wait_for_wake(self._wake, seconds)


def _describe(span: Span, outcome: HttpOutcome, status: DeliveryStatus) -> None:
    if outcome.status_code is not None:
        span.set_attribute("http.response.status_code", outcome.status_code)
    span.set_attribute("webhook.delivery_status", status.value)
    if outcome.error is not None:
        span.set_attribute("error.type", outcome.error.value)
        span.set_status(Status(StatusCode.ERROR))


class _Counters:
    """The labelled counters of attempts and finished deliveries, each looked up once: `labels`
    takes a lock and builds a key on every call, and every attempt counts in both."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._attempts: dict[str, Counter] = {}
        self._finished: dict[str, Counter] = {}

    def attempt(self, result: str) -> Counter:
        counter = self._attempts.get(result)
        if counter is None:
            counter = self._attempts[result] = self._metrics.attempts.labels(result)
        return counter

    def finished(self, status: str) -> Counter:
        counter = self._finished.get(status)
        if counter is None:
            counter = self._finished[status] = self._metrics.deliveries_finished.labels(status)
        return counter


def _observe(
    counters: _Counters,
    metrics: Metrics,
    delivery: LeasedDelivery,
    outcome: HttpOutcome,
    status: DeliveryStatus,
) -> None:
    result = outcome.error.value if outcome.error else "success"
    counters.attempt(result).inc()
    metrics.attempt_latency.observe(outcome.latency.total_seconds())
    if status is not DeliveryStatus.PENDING:
        counters.finished(status.value).inc()
    # A failed attempt is what an operator looks for (WARNING, with its error); a successful one
    # is routine (DEBUG).
    level = logging.DEBUG if outcome.error is None else logging.WARNING
    if log.isEnabledFor(level):
        log.log(
            level,
            "delivery attempt" if outcome.error is None else "delivery attempt failed",
            extra={
                "delivery_id": delivery.id,
                "event_id": delivery.event_id,
                "subscription_id": delivery.subscription_id,
                "attempt": delivery.attempt_count + 1,
                "result": result,
                "status_code": outcome.status_code,
                "error": outcome.error_message or None,
                "latency_ms": round(outcome.latency.total_seconds() * 1000, 2),
                "delivery_status": status.value,
            },
        )
