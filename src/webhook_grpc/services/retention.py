"""Retention: purge events older than `retention_days`, in batches bounded by time, one runner
at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from webhook_grpc.config import RetentionSettings
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.storage.ports import Storage

log = logging.getLogger(__name__)
FIRST_BATCH = 1000
MIN_BATCH = 100
MAX_BATCH = 20_000
# How long one purge transaction should take. Publishing goes on meanwhile: on SQLite a batch
# holds the one writer for that long; on PostgreSQL short transactions keep the purge's locks,
# WAL bursts and the rows vacuum cannot yet reclaim small.
BATCH_SECONDS = 0.1


def next_batch(limit: int, elapsed: float, budget: float = BATCH_SECONDS) -> int:
    """The size of the next batch after one of `limit` events took `elapsed` seconds: as many
    as fit in `budget` at that pace, at most twice as many as before, within the bounds."""
    fitting = limit * budget / max(elapsed, 1e-6)
    return max(MIN_BATCH, min(MAX_BATCH, 2 * limit, int(fitting)))


class RetentionService:
    def __init__(
        self,
        storage: Storage,
        settings: RetentionSettings,
        clock: Clock = system_clock,
        *,
        batch_seconds: float = BATCH_SECONDS,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._batch_seconds = batch_seconds
        self._timer = timer

    async def purge(self) -> int:
        """Delete every event past retention; returns how many. Safe to run in many processes:
        each batch runs under an advisory lock, and a process that cannot get it stops. Each
        batch is sized so that its transaction takes about `batch_seconds`."""
        cutoff = self._clock() - timedelta(days=self._settings.retention_days)
        total, limit = 0, FIRST_BATCH
        while True:
            began = self._timer()
            async with self._storage.transaction() as unit:
                if not await unit.retention.try_lock():
                    return total
                deleted = await unit.retention.purge_batch(cutoff, limit)
            total += deleted
            if deleted < limit:
                return total
            limit = next_batch(limit, self._timer() - began, self._batch_seconds)

    async def run(self) -> None:
        """Purge now and then every `retention_interval`, until cancelled."""
        while True:
            try:
                purged = await self.purge()
                if purged:
                    log.info("retention purged %d events", purged)
            except Exception as error:
                log.warning("retention purge failed, will retry: %s", error)
            await asyncio.sleep(self._settings.retention_interval.total_seconds())
