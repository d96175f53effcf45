"""Records finished attempts in batches: one transaction for many attempts, not one each.

Callers hand an attempt over and move on; `stop` lets the recorder commit what is queued. A
failed commit (database down) is retried with backoff; nothing is dropped. If the process dies
first, or the database stays away past the grace of `stop`, the deliveries' leases expire and
another dispatcher attempts them again (at-least-once). An attempt whose delivery was purged by
retention while in flight has nothing left to record: it is counted
(`webhook_attempts_of_purged_deliveries`), and the rest of its batch is recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from webhook_grpc.domain.clock import Clock
from webhook_grpc.domain.deliveries import AttemptRecord
from webhook_grpc.domain.errors import StorageUnavailable
from webhook_grpc.domain.models import DeliveryStatus, DisabledReason
from webhook_grpc.domain.retry import GONE
from webhook_grpc.metrics import Metrics
from webhook_grpc.services.auto_disable import AutoDisabler
from webhook_grpc.storage.ports import Storage

log = logging.getLogger(__name__)
MAX_BATCH = 500
# Gather attempts that finish close together into one transaction; an attempt's endpoint slot
# is already free while it waits here, so this costs throughput nothing.
GATHER_SECONDS = 0.02


class AttemptRecorder:
    def __init__(
        self, storage: Storage, disabler: AutoDisabler, clock: Clock, metrics: Metrics | None = None
    ) -> None:
        self._storage = storage
        self._disabler = disabler
        self._clock = clock
        self._metrics = metrics
        self._queue: list[AttemptRecord] = []
        self._committed: list[Callable[[int], None]] = []
        self._retry_scheduled: list[Callable[[datetime], None]] = []
        self._ready = asyncio.Event()
        self._urgent = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="attempt-recorder")

    async def stop(self, grace: float) -> None:
        """Commit what is queued, for up to `grace` seconds, then stop. The recorder's own
        task does it: a second committer would record the batch it is committing twice."""
        if self._task is None:
            return
        self._stopping = True
        self._ready.set()
        ended, _ = await asyncio.wait([self._task], timeout=grace)
        if not ended:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue:
            log.warning(
                "%d attempts not recorded at stop: attempted again when their leases expire",
                len(self._queue),
            )

    def on_committed(self, callback: Callable[[int], None]) -> None:
        """Call `callback` with the number of attempts of each batch the recorder is done with
        (committed, or dropped as unrecordable): until then they hold the dispatcher's room."""
        self._committed.append(callback)

    def on_retry_scheduled(self, callback: Callable[[datetime], None]) -> None:
        """Call `callback` with the earliest retry of each committed batch that schedules
        some: only the recording process learns of it at once, and only after the commit is
        the row there to lease."""
        self._retry_scheduled.append(callback)

    def submit(self, record: AttemptRecord, *, urgent: bool = False) -> None:
        """Queue `record`; `urgent` when work waits for its commit (a FIFO subscription's next
        delivery), so the batch is committed without gathering more first."""
        self._queue.append(record)
        self._urgent = self._urgent or urgent
        self._ready.set()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            await self._ready.wait()
            if len(self._queue) < MAX_BATCH and not self._stopping and not self._urgent:
                await asyncio.sleep(GATHER_SECONDS)
            self._ready.clear()
            self._urgent = False
            while self._queue:
                try:
                    await self._flush_once()
                    delay = 0.05
                except StorageUnavailable as error:
                    log.warning("cannot record attempts, retrying in %.2fs: %s", delay, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            if self._stopping:
                return

    async def _flush_once(self) -> None:
        batch = self._queue[:MAX_BATCH]
        try:
            await self._commit(batch)
            self._tell_retry_due(batch)
        except StorageUnavailable:
            raise
        except Exception:
            # Not retryable (a bug): drop the batch, keep the recorder alive. The leases of
            # these deliveries expire, so they are attempted again (at-least-once).
            log.exception("recording %d attempts failed", len(batch))
        del self._queue[: len(batch)]
        for callback in self._committed:
            callback(len(batch))

    def _tell_retry_due(self, records: list[AttemptRecord]) -> None:
        retries = [
            r.next_attempt_at
            for r in records
            if r.next_status is DeliveryStatus.PENDING and r.next_attempt_at is not None
        ]
        if retries:
            earliest = min(retries)
            for callback in self._retry_scheduled:
                callback(earliest)

    async def _commit(self, records: list[AttemptRecord]) -> None:
        now = self._clock()
        async with self._storage.transaction() as unit:
            gone_deliveries = await unit.deliveries.record_attempts(records)
            gone = {r.subscription_id for r in records if r.status_code == GONE}
            for subscription_id in sorted(gone):
                await self._disabler.disable(
                    unit, subscription_id, DisabledReason.ENDPOINT_GONE, now
                )
            failing = {
                r.subscription_id
                for r in records
                if not r.succeeded and r.subscription_id not in gone
            }
            for subscription_id in sorted(failing):
                await self._disabler.check_failure_rate(unit, subscription_id, now)
        if gone_deliveries:
            log.info("%d attempts not recorded: their deliveries were purged", gone_deliveries)
            if self._metrics is not None:
                self._metrics.attempts_of_purged_deliveries.inc(gone_deliveries)
