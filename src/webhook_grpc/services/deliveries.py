"""Delivery use cases for the API: list, inspect, retry one, recover a subscription's failures."""

from __future__ import annotations

from datetime import datetime

from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from webhook_grpc.domain.models import Delivery, DeliveryStatus, Page, SubscriptionStatus
from webhook_grpc.domain.page_tokens import decode_page_token, encode_page_token
from webhook_grpc.storage.ports import Storage, UnitOfWork, Wakeups

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


class DeliveryService:
    def __init__(self, storage: Storage, notifier: Wakeups, clock: Clock = system_clock) -> None:
        self._storage = storage
        self._notifier = notifier
        self._clock = clock

    async def list(
        self,
        tenant_id: str,
        *,
        subscription_id: str = "",
        status: DeliveryStatus | None = None,
        event_id: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Delivery]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        before = decode_page_token(page_token)
        async with self._storage.read() as unit:
            rows = await unit.deliveries.list_page(
                tenant_id,
                subscription_id=subscription_id,
                status=status,
                event_id=event_id,
                before=before,
                limit=size + 1,
            )
        items = rows[:size]
        token = encode_page_token(items[-1].created_at, items[-1].id) if len(rows) > size else ""
        return Page(items, token)

    async def get(self, delivery_id: str, tenant_id: str | None) -> Delivery:
        if not delivery_id:
            raise InvalidArgument("id", "is required")
        async with self._storage.read() as unit:
            found = await unit.deliveries.get(delivery_id, tenant_id)
        if found is None:
            raise NotFound(f"delivery {delivery_id!r} not found")
        return found

    async def retry(self, delivery_id: str, tenant_id: str | None) -> Delivery:
        found = await self.get(delivery_id, tenant_id)
        if found.status is DeliveryStatus.PENDING:
            raise FailedPrecondition(f"delivery {delivery_id!r} is already pending")
        async with self._storage.transaction() as unit:
            await self._require_active(unit, found.subscription_id, tenant_id)
            await unit.deliveries.reschedule(
                self._clock(), delivery_id=delivery_id, from_status=FINISHED
            )
            updated = await unit.deliveries.get(delivery_id, None)
            unit.on_commit(self._notifier.wake)
        assert updated is not None
        return updated

    async def recover(self, subscription_id: str, tenant_id: str | None, since: datetime) -> int:
        if not subscription_id:
            raise InvalidArgument("subscription_id", "is required")
        async with self._storage.transaction() as unit:
            await self._require_active(unit, subscription_id, tenant_id)
            count = await unit.deliveries.reschedule(
                self._clock(),
                subscription_id=subscription_id,
                from_status=(DeliveryStatus.FAILED,),
                created_since=since,
            )
            unit.on_commit(self._notifier.wake)
        return count

    async def _require_active(
        self, unit: UnitOfWork, subscription_id: str, tenant_id: str | None
    ) -> None:
        subscription = await unit.subscriptions.get(subscription_id, tenant_id)
        if subscription is None:
            raise NotFound(f"subscription {subscription_id!r} not found")
        if subscription.status is not SubscriptionStatus.ACTIVE:
            raise FailedPrecondition(
                f"subscription {subscription_id!r} is disabled; activate it first"
            )
