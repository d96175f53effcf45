"""Delivery use cases for the API: list, inspect, retry one, recover a subscription's failures."""

from __future__ import annotations

from datetime import datetime

from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from webhook_grpc.domain.models import Delivery, DeliveryStatus, Page, SubscriptionStatus
from webhook_grpc.domain.page_tokens import decode_page_token, encode_page_token
from webhook_grpc.storage import deliveries as store
from webhook_grpc.storage import subscriptions as subscription_store
from webhook_grpc.storage.database import Database
from webhook_grpc.storage.notifications import Notifier

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


class DeliveryService:
    def __init__(self, db: Database, notifier: Notifier, clock: Clock = system_clock) -> None:
        self._db = db
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
        async with self._db.read() as conn:
            rows = await store.list_page(
                conn,
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
        async with self._db.read() as conn:
            found = await store.get(conn, delivery_id, tenant_id)
        if found is None:
            raise NotFound(f"delivery {delivery_id!r} not found")
        return found

    async def retry(self, delivery_id: str, tenant_id: str | None) -> Delivery:
        found = await self.get(delivery_id, tenant_id)
        if found.status is DeliveryStatus.PENDING:
            raise FailedPrecondition(f"delivery {delivery_id!r} is already pending")
        async with self._db.transaction() as conn:
            await self._require_active(conn, found.subscription_id, tenant_id)
            await store.reschedule(
                conn, self._clock(), delivery_id=delivery_id, from_status=FINISHED
            )
            updated = await store.get(conn, delivery_id, None)
        self._notifier.wake()
        assert updated is not None
        return updated

    async def recover(self, subscription_id: str, tenant_id: str | None, since: datetime) -> int:
        if not subscription_id:
            raise InvalidArgument("subscription_id", "is required")
        async with self._db.transaction() as conn:
            await self._require_active(conn, subscription_id, tenant_id)
            count = await store.reschedule(
                conn,
                self._clock(),
                subscription_id=subscription_id,
                from_status=(DeliveryStatus.FAILED,),
                created_since=since,
            )
        self._notifier.wake()
        return count

    async def _require_active(
        self, conn: object, subscription_id: str, tenant_id: str | None
    ) -> None:
        subscription = await subscription_store.get(conn, subscription_id, tenant_id)  # type: ignore[arg-type]
        if subscription is None:
            raise NotFound(f"subscription {subscription_id!r} not found")
        if subscription.status is not SubscriptionStatus.ACTIVE:
            raise FailedPrecondition(
                f"subscription {subscription_id!r} is disabled; activate it first"
            )
