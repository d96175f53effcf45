"""SendTestEvent: a `webhook.test` event delivered to one subscription like any other event."""

from __future__ import annotations

from webhook_grpc.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from webhook_grpc.domain.models import Event, SubscriptionStatus
from webhook_grpc.storage.ports import Storage

from .publishing import EventDraft, Publisher

TEST_EVENT_TYPE = "webhook.test"


class ProbeService:
    """Sends SendTestEvent's probe: proof to an operator that a subscription's endpoint answers."""

    def __init__(self, storage: Storage, publisher: Publisher) -> None:
        self._storage = storage
        self._publisher = publisher

    async def send(self, subscription_id: str, tenant_id: str | None) -> tuple[Event, str]:
        if not subscription_id:
            raise InvalidArgument("id", "is required")
        async with self._storage.transaction() as unit:
            subscription = await unit.subscriptions.get(subscription_id, tenant_id)
            if subscription is None:
                raise NotFound(f"subscription {subscription_id!r} not found")
            if subscription.status is not SubscriptionStatus.ACTIVE:
                raise FailedPrecondition(
                    f"subscription {subscription_id!r} is disabled; activate it first"
                )
            draft = EventDraft(
                tenant_id=subscription.tenant_id,
                type=TEST_EVENT_TYPE,
                entity_id=subscription.id,
                data={
                    "id": subscription.id,
                    "message": "A test event from webhook-grpc",
                    "subscription_id": subscription.id,
                },
            )
            [published] = await self._publisher.publish_in(
                unit, [draft], only_subscription=subscription
            )
        self._publisher.published.labels(TEST_EVENT_TYPE).inc()
        return published.event, published.delivery_ids[0]
