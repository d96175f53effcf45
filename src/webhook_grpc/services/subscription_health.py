"""Subscription health for reads: attempts and failures in the failure window, last attempt."""

from __future__ import annotations

from collections.abc import Sequence

from webhook_grpc.config import AutoDisableSettings
from webhook_grpc.domain.clock import Clock
from webhook_grpc.domain.models import Subscription
from webhook_grpc.domain.subscription_health import SubscriptionHealth
from webhook_grpc.storage.ports import Storage


class SubscriptionHealthService:
    def __init__(self, storage: Storage, settings: AutoDisableSettings, clock: Clock) -> None:
        self._storage = storage
        self._window = settings.failure_window
        self._clock = clock

    async def of(self, subscriptions: Sequence[Subscription]) -> dict[str, SubscriptionHealth]:
        """The health of each of `subscriptions` (already read, so already tenant-checked)."""
        if not subscriptions:
            return {}
        ids = [s.id for s in subscriptions]
        async with self._storage.read() as unit:
            figures = await unit.deliveries.window_figures(ids, self._clock() - self._window)
            last = await unit.deliveries.last_attempts(ids)
        return {
            id_: SubscriptionHealth(
                self._window, *figures.get(id_, (0, 0)), last_attempt=last.get(id_)
            )
            for id_ in ids
        }
