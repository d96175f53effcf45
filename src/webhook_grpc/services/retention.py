"""Retention: purge events older than `retention_days`, in bounded batches, one runner at a time."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from webhook_grpc.config import RetentionSettings
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.storage.ports import Storage

log = logging.getLogger(__name__)
BATCH = 1000


class RetentionService:
    def __init__(
        self, storage: Storage, settings: RetentionSettings, clock: Clock = system_clock
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock

    async def purge(self) -> int:
        """Delete every event past retention; returns how many. Safe to run in many processes:
        each batch runs under an advisory lock, and a process that cannot get it stops."""
        cutoff = self._clock() - timedelta(days=self._settings.retention_days)
        total = 0
        while True:
            async with self._storage.transaction() as unit:
                if not await unit.retention.try_lock():
                    return total
                deleted = await unit.retention.purge_batch(cutoff, BATCH)
            total += deleted
            if deleted < BATCH:
                return total

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
