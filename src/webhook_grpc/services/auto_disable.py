"""Automatic disabling: the failure-rate rule and 410 Gone (SPEC §4), with the feed event."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from webhook_grpc.config import AutoDisableSettings
from webhook_grpc.domain.models import DisabledReason
from webhook_grpc.domain.payload import iso_millis
from webhook_grpc.metrics import Metrics
from webhook_grpc.storage.ports import UnitOfWork

from .publishing import EventDraft, Publisher

DISABLED_EVENT_TYPE = "webhook.subscription_disabled"
log = logging.getLogger(__name__)


def exceeds_failure_rate(settings: AutoDisableSettings, total: int, failed: int) -> bool:
    """At least `min_deliveries_for_disable` attempts and more than `failure_threshold` failed."""
    return (
        total >= settings.min_deliveries_for_disable and failed > settings.failure_threshold * total
    )


class AutoDisabler:
    def __init__(
        self, settings: AutoDisableSettings, publisher: Publisher, metrics: Metrics
    ) -> None:
        self._settings = settings
        self._disabled = metrics.auto_disables
        self._publisher = publisher

    async def check_failure_rate(
        self, unit: UnitOfWork, subscription_id: str, now: datetime
    ) -> bool:
        """Disable the subscription if its recent attempts fail too often; True if it did."""
        window_start = await unit.subscriptions.failure_window_start(subscription_id)
        if window_start is None:
            return False
        since = max(now - self._settings.failure_window, window_start)
        total, failed = await unit.deliveries.failure_figures(subscription_id, since)
        if not exceeds_failure_rate(self._settings, total, failed):
            return False
        return await self.disable(
            unit, subscription_id, DisabledReason.FAILURE_RATE, now, total=total, failed=failed
        )

    async def disable(
        self,
        unit: UnitOfWork,
        subscription_id: str,
        reason: DisabledReason,
        now: datetime,
        *,
        total: int = 0,
        failed: int = 0,
    ) -> bool:
        """Disable, cancel pending deliveries and tell the tenant's feed why pushes stopped
        (its streams are woken once `unit` commits)."""
        if not await unit.subscriptions.disable_if_active(subscription_id, reason, now):
            return False
        await unit.deliveries.cancel_pending(subscription_id, now)
        subscription = await unit.subscriptions.get(subscription_id, None)
        assert subscription is not None
        self._disabled.labels(reason.value).inc()
        log.warning(
            "subscription disabled automatically",
            extra={
                "subscription_id": subscription_id,
                "tenant_id": subscription.tenant_id,
                "reason": reason.value,
                "failed_attempts": failed,
                "total_attempts": total,
            },
        )
        data: dict[str, Any] = {
            "id": subscription_id,
            "subscription_id": subscription_id,
            "reason": reason.value,
            "disabled_at": iso_millis(now),
        }
        if reason is DisabledReason.FAILURE_RATE:
            data |= {
                "failure_rate": failed / total if total else 0.0,
                "failed_attempts": failed,
                "total_attempts": total,
                "window_seconds": self._settings.failure_window.total_seconds(),
            }
        await self._publisher.publish_in(
            unit,
            [
                EventDraft(
                    tenant_id=subscription.tenant_id,
                    type=DISABLED_EVENT_TYPE,
                    entity_id=subscription_id,
                    data=data,
                )
            ],
        )
        return True
